"""The packet's tables (title, headers, rows), in Chinese, shared by the XLSX and the PDF writer so the two say
the same thing. Pure: rows are plain values (text, numbers, None); images stay in ``data["sample"]``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from gate_service import vocab
from gate_service.inspection.compare import DEFINITIONS
from gate_service.inspection.packet import RECHECKED
from gate_service.policy.model import SHANGHAI

DECISIONS = {"allow": "放行", "deny": "禁止通行"}
ALERT_LEVELS = {"yellow": "黄色", "orange": "橙色", "red": "红色"}
Table = tuple[str, list[str], list[list[Any]]]


def stage(value: Any) -> str:
    return "—" if value is None else f"国{'零一二三四五六'[int(value)]}"


def label(field: str, value: Any) -> str:
    if value is None:
        return "—"
    if field == "emission_stage":
        return stage(value)
    if field == "fuel_type":
        return vocab.FUEL_TYPES.get(value, value)
    if field == "vehicle_class":
        return vocab.VEHICLE_CLASSES.get(value, value)
    return str(value)


def moment(value: str | datetime | None) -> str:
    if not value:
        return "—"
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")


def cover(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    firm = data["enterprise"]
    day = data["sampled_alert_day"]
    return [
        ("企业名称", firm.get("name") or ""),
        ("企业编号", firm["id"]),
        ("行业 / 县(市、区)", f"{vocab.INDUSTRIES.get(firm.get('industry') or '', firm.get('industry') or '')} / "
                          f"{firm.get('county') or '—'}"),
        ("检查期间", f"{data['from']} 至 {data['to']}"),
        ("抽样种子 seed", str(data["seed"])),
        ("抽样条数", f"{len(data['sample'])} 条（要求 {data['n']} 条，期间台账共 {data['population']} 条）"),
        ("抽样摘要 sha256", data["sample_digest"]),
        ("期间橙色/红色预警日", "、".join(x.isoformat() for x in data["alert_days"]) or "无"),
        ("抽查录像日", day.isoformat() if day else "无（期间无橙色/红色预警）"),
        ("生成时间", moment(data["generated_at"])),
        ("复现方法", f"以相同企业、期间和 seed={data['seed']} 重新生成，抽取的记录相同"),
    ]


def sample_table(data: Mapping[str, Any]) -> Table:
    headers = ["序号", "台账位置", "通行时间", "门岗", "门岗序号", "方向", "车牌", "判定", "依据规则",
               *[f"{name}(记录)" for name in RECHECKED.values()], *[f"{name}(现登记)" for name in RECHECKED.values()],
               "复核结果", "差异项", "抓拍", "车牌图"]
    rows = []
    for k, s in enumerate(data["sample"], 1):
        p, c = s["passage"], s["check"]
        rows.append([
            k, s["index"] + 1, moment(p["at"]), p["gate_id"], p["gate_seq"],
            vocab.DIRECTIONS.get(p["direction"], p["direction"]), p["plate"], DECISIONS[p["decision"]],
            "、".join(p["rules"]) or "—",
            *[label(f, c["recorded"][f]) for f in RECHECKED], *[label(f, c["registry_now"][f]) for f in RECHECKED],
            c["status"], "、".join(RECHECKED[f] for f in c["differences"]) or "—",
            "有" if s["snapshot"] else ("缺失" if s["has_snapshot"] else "无"),
            "有" if s["crop"] else ("缺失" if s["has_crop"] else "无"),
        ])
    return "抽样台账记录及排放阶段复核", headers, rows


def comparison_tables(data: Mapping[str, Any]) -> list[Table]:
    c = data["comparison"]
    if c is None:
        return [("预警日对比", ["说明"], [["检查期间内无橙色/红色预警日"]])]
    days = ("预警日车流对比（基准：此前10个普通工作日中位数）",
            ["日期", "星期", "预警", "进厂车次", "出厂车次", "禁止通行", "基准进厂", "基准出厂", "进厂/基准",
             "出厂/基准"],
            [[r["day"], "一二三四五六日"[r["weekday"] - 1], "、".join(ALERT_LEVELS[x] for x in r["alert_levels"]) or "—",
              r["trips_in"], r["trips_out"], r["denied"], r["baseline_in"], r["baseline_out"], r["in_vs_baseline"],
              r["out_vs_baseline"]] for r in c["days"]])
    heavy = ("橙色/红色预警期间放行的国四及以下重型货车（应为零）",
             ["通行时间", "门岗", "门岗序号", "方向", "车牌", "排放阶段", "车型", "是否登记", "来源", "记录编号"],
             [[moment(p["at"]), p["gate_id"], p["gate_seq"], vocab.DIRECTIONS.get(p["direction"], p["direction"]),
               p["plate"], stage(p["emission_stage"]), label("vehicle_class", p["vehicle_class"]),
               "是" if p["registered"] else "否", p["source"], p["passage_id"]] for p in c["heavy_low_stage_admitted"]])
    gates = ("门岗静默与录像缺口",
             ["门岗", "日期", "通行记录", "基准记录数", "无记录", "录像覆盖(分钟)", "录像缺口"],
             [[g["gate_id"], x["day"], x["passages"], x["baseline_passages"], "是" if x["no_passages"] else "否",
               x["video"]["covered_minutes"] if x["video"] else "无录像设备",
               "；".join(f"{moment(v['from'])[11:16]}–{moment(v['to'])[11:16]} ({v['minutes']}分钟)"
                        for v in x["video"]["gaps"]) if x["video"] else "—"]
              for g in c["gates"] for x in g["days"]])
    return [days, heavy, gates]


def overrides_table(data: Mapping[str, Any]) -> Table:
    return ("人工放行记录", ["放行时间", "门岗", "车牌", "放行原因", "操作人", "被放行记录时间", "原判定", "原依据规则", "记录编号"],
            [[moment(p["at"]), p["gate_id"], p["plate"], p.get("override_reason") or "—", p.get("actor") or "—",
              moment(p["overridden"]["at"]), DECISIONS.get(p["overridden"]["decision"] or "", "—"),
              "、".join(p["overridden"]["rules"]) or "—", p["passage_id"]] for p in data["overrides"]])


def denials_table(data: Mapping[str, Any]) -> Table:
    return ("禁止通行记录", ["通行时间", "门岗", "方向", "车牌", "排放阶段", "依据规则", "已人工放行", "记录编号"],
            [[moment(p["at"]), p["gate_id"], vocab.DIRECTIONS.get(p["direction"], p["direction"]), p["plate"],
              stage(p["emission_stage"]), "、".join(p["rules"]) or "—", "是" if p["overridden"] else "否",
              p["passage_id"]] for p in data["denials"]])


def segments_table(data: Mapping[str, Any]) -> Table:
    day = data["sampled_alert_day"]
    title = f"抽查录像日 {day.isoformat()} 的录像段" if day else "抽查录像日的录像段"
    return (title, ["门岗", "开始", "结束", "状态", "帧数", "字节", "sha256"],
            [[s["gate_id"], moment(s["started_at"]), moment(s["ended_at"]), s["status"]
              + ("（已按保留期删除）" if s["deleted"] else ""), s["frames"], s["bytes"], s["sha256"] or "—"]
             for s in data["segments"]])


def definitions() -> list[tuple[str, str]]:
    names = {"ordinary_day": "普通工作日", "baseline": "基准", "trips": "车次", "heavy_low_stage": "重点车辆",
             "silent_gate": "门岗静默"}
    return [(names[k], v) for k, v in DEFINITIONS.items()]
