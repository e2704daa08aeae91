"""The bureau's anomaly list (执法检查): enterprises whose records look wrong, each line with its evidence. Pure.

Four rules, each with its thresholds below (named constants, also returned in the API answer as ``thresholds``):

``alert_traffic_drop``
    On an orange/red alert day the enterprise's trips in fell to at most ``DROP_NEAR_ZERO_SHARE`` of its baseline
    (median of the previous 10 ordinary working days, ``days``), the baseline being at least
    ``DROP_MIN_BASELINE`` trips — while the rail + conveyor tonnes it reported for that month did not rise by more
    than ``RAIL_RISE_MIN_SHARE`` over the month before (no report counts as no rise). Trucks vanishing without the
    goods moving to rail means production stopped — or the trucks went through a gate that did not record them.
``clean_ratio_jump``
    A month's clean trip share rose by at least ``CLEAN_JUMP`` (absolute) over the month before, both months having
    at least ``CLEAN_JUMP_MIN_TRIPS`` trips: fleets are not replaced in a month.
``gate_silent``
    A gate active on at least ``GATE_MIN_ACTIVE_DAYS`` of the last ``GATE_ACTIVE_WINDOW_DAYS`` days has recorded
    nothing for ``GATE_SILENT_HOURS`` hours or more.
``ledger_gap``
    A hole in a gate's ``gate_seq`` among the period's rows or just before them, or rows missing at the end of the
    chain (its head is past the ledger's last row): the hash chain makes seq gap-free, so a hole is a removed row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from gate_service.inspection import compare
from gate_service.inspection import days as d
from gate_service.reports.compute import month_end, month_start, months_between

DROP_NEAR_ZERO_SHARE = 0.10
DROP_MIN_BASELINE = 5
RAIL_RISE_MIN_SHARE = 0.10
CLEAN_JUMP = 0.30
CLEAN_JUMP_MIN_TRIPS = 20
GATE_SILENT_HOURS = 48
GATE_ACTIVE_WINDOW_DAYS = 28
GATE_MIN_ACTIVE_DAYS = 5

THRESHOLDS = {
    "drop_near_zero_share": DROP_NEAR_ZERO_SHARE, "drop_min_baseline": DROP_MIN_BASELINE,
    "rail_rise_min_share": RAIL_RISE_MIN_SHARE, "clean_jump": CLEAN_JUMP,
    "clean_jump_min_trips": CLEAN_JUMP_MIN_TRIPS, "gate_silent_hours": GATE_SILENT_HOURS,
    "gate_active_window_days": GATE_ACTIVE_WINDOW_DAYS, "gate_min_active_days": GATE_MIN_ACTIVE_DAYS,
    "baseline_days": d.BASELINE_DAYS, "min_baseline_days": d.MIN_BASELINE_DAYS,
}

TITLES = {
    "alert_traffic_drop": "预警日车流骤降且铁路/皮带运量未增 / alert-day traffic near zero, rail/conveyor not up",
    "clean_ratio_jump": "清洁运输比例异常跃升 / implausible jump of the clean share",
    "gate_silent": "门岗停止上报 / gate stopped reporting",
    "ledger_gap": "台账序号缺失 / missing ledger rows (seq gap)",
}


def _href(path: str, **params: Any) -> str:
    return f"{path}?{urlencode({k: v for k, v in params.items() if v is not None})}"


def _evidence(kind: str, label: str, path: str, **params: Any) -> dict[str, str]:
    return {"kind": kind, "label": label, "href": _href(path, **params)}


def _prev_month(m: date) -> date:
    return month_start(m - timedelta(days=1))


def traffic_drops(
    firms: Sequence[Mapping[str, Any]], first: date, last: date, alerts: Sequence[Mapping[str, Any]],
    enterprise_days: Iterable[tuple[str, date, int]], volumes: Mapping[tuple[str, date], float],
) -> list[dict[str, Any]]:
    severe = sorted(compare.alert_days(alerts, first, last, compare.ALERT_DAY_LEVELS))
    if not severe:
        return []
    any_alert = compare.alert_days(alerts, severe[0] - timedelta(days=d.LOOKBACK_DAYS), severe[-1])
    trips: dict[str, dict[date, int]] = defaultdict(dict)
    for eid, day, n in enterprise_days:
        trips[eid][day] = n
    window = d.days_between(severe[0] - timedelta(days=d.LOOKBACK_DAYS), severe[-1])
    out = []
    for e in firms:
        counts = trips.get(e["id"], {})
        ordinary = d.ordinary_days(window, any_alert, counts.keys())
        hits = []
        for day in severe:
            base, used = d.baseline(day, ordinary, counts)
            n = counts.get(day, 0)
            if base is not None and base >= DROP_MIN_BASELINE and n <= DROP_NEAR_ZERO_SHARE * base:
                m = month_start(day)
                now_t, prev_t = volumes.get((e["id"], m)), volumes.get((e["id"], _prev_month(m)))
                rose = now_t is not None and now_t > (prev_t or 0.0) * (1 + RAIL_RISE_MIN_SHARE)
                if not rose:
                    hits.append({"day": day.isoformat(), "trips_in": n, "baseline_in": base,
                                 "rail_conveyor_tonnes": now_t, "rail_conveyor_tonnes_month_before": prev_t})
        if hits:
            days = ",".join(h["day"] for h in hits)
            out.append({
                "rule": "alert_traffic_drop", "title": TITLES["alert_traffic_drop"], "enterprise_id": e["id"],
                "enterprise_name": e.get("name"), "gate_id": None, "days": hits,
                "detail": f"{len(hits)}个预警日进厂车次≤基准的{DROP_NEAR_ZERO_SHARE:.0%}，铁路/皮带运量未增加",
                "evidence": [
                    _evidence("comparison", "预警日对比 / alert-day comparison", "/api/v1/inspection/comparison",
                              enterprise_id=e["id"], days=days),
                    _evidence("volumes", "非公路运量填报 / reported rail & conveyor tonnes",
                              f"/api/v1/enterprises/{e['id']}/transport-volumes",
                              **{"from": f"{_prev_month(month_start(severe[0])):%Y-%m}", "to": f"{severe[-1]:%Y-%m}"}),
                ],
            })
    return out


def clean_jumps(firms: Sequence[Mapping[str, Any]], first: date, last: date,
                months: Iterable[tuple[str, date, int, int]]) -> list[dict[str, Any]]:
    by: dict[str, dict[date, tuple[int, int]]] = defaultdict(dict)
    for eid, m, trips, clean in months:
        by[eid][m] = (trips, clean)
    out = []
    for e in firms:
        rows = by.get(e["id"], {})
        for m in months_between(first, last):
            cur, prev = rows.get(m), rows.get(_prev_month(m))
            if not cur or not prev or cur[0] < CLEAN_JUMP_MIN_TRIPS or prev[0] < CLEAN_JUMP_MIN_TRIPS:
                continue
            r_cur, r_prev = cur[1] / cur[0], prev[1] / prev[0]
            if r_cur - r_prev >= CLEAN_JUMP - 1e-9:
                pm = _prev_month(m)
                out.append({
                    "rule": "clean_ratio_jump", "title": TITLES["clean_ratio_jump"], "enterprise_id": e["id"],
                    "enterprise_name": e.get("name"), "gate_id": None, "month": f"{m:%Y-%m}",
                    "ratio_trips": round(r_cur, 4), "ratio_trips_month_before": round(r_prev, 4),
                    "trips": cur[0], "trips_month_before": prev[0],
                    "detail": f"{pm:%Y-%m} {r_prev:.1%} → {m:%Y-%m} {r_cur:.1%}",
                    "evidence": [
                        _evidence("report", "两个月的清洁运输统计 / the two months' report",
                                  "/api/v1/reports/clean-transport", enterprise_id=e["id"],
                                  **{"from": pm.isoformat(), "to": month_end(m).isoformat()}, months="true"),
                        _evidence("ledger", "本月台账 / the month's ledger", "/api/v1/passages",
                                  enterprise_id=e["id"], **{"from": m.isoformat(), "to": month_end(m).isoformat()},
                                  limit=1000),
                    ],
                })
    return out


def silent_gates(firms: Sequence[Mapping[str, Any]], gates: Sequence[Mapping[str, Any]],
                 activity: Mapping[str, tuple[datetime | None, int]], until: datetime) -> list[dict[str, Any]]:
    names = {e["id"]: e.get("name") for e in firms}
    out = []
    for g in gates:
        if g["enterprise_id"] not in names:
            continue
        last_at, active = activity.get(g["id"], (None, 0))
        if last_at is None or active < GATE_MIN_ACTIVE_DAYS:
            continue
        hours = (until - last_at).total_seconds() / 3600
        if hours >= GATE_SILENT_HOURS:
            since = last_at.astimezone(compare.SHANGHAI)
            out.append({
                "rule": "gate_silent", "title": TITLES["gate_silent"], "enterprise_id": g["enterprise_id"],
                "enterprise_name": names[g["enterprise_id"]], "gate_id": g["id"], "last_passage_at": since.isoformat(),
                "silent_hours": round(hours, 1), "active_days": active,
                "detail": f"门岗 {g['id']} 自 {since:%Y-%m-%d %H:%M} 起 {hours:.0f} 小时无记录",
                "evidence": [
                    _evidence("ledger", "门岗最近台账 / the gate's last rows", "/api/v1/passages", gate_id=g["id"],
                              **{"to": until.astimezone(compare.SHANGHAI).date().isoformat()}, limit=50),
                    _evidence("video", "门岗录像段 / the gate's video segments", "/api/v1/video/segments",
                              gate_id=g["id"], **{"from": since.isoformat(), "to": until.isoformat()}),
                ],
            })
    return out


def ledger_gaps(firms: Sequence[Mapping[str, Any]], gaps: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    names = {e["id"]: e.get("name") for e in firms}
    out = []
    for g in gaps:
        if g["enterprise_id"] not in names:
            continue
        missing = g["next_seq"] - g["prev_seq"] - 1
        lo = g["prev_at"].astimezone(compare.SHANGHAI)
        tail = g["next_at"] is None  # rows missing after the ledger's last row, up to the chain head
        hi = lo if tail else g["next_at"].astimezone(compare.SHANGHAI)
        detail = (f"门岗 {g['gate_id']} 链头序号为 {g['next_seq'] - 1}，台账最后一条为 {g['prev_seq']}，末尾缺 {missing} 条"
                  if tail else f"门岗 {g['gate_id']} 序号 {g['prev_seq']} 与 {g['next_seq']} 之间缺 {missing} 条")
        out.append({
            "rule": "ledger_gap", "title": TITLES["ledger_gap"], "enterprise_id": g["enterprise_id"],
            "enterprise_name": names[g["enterprise_id"]], "gate_id": g["gate_id"], "prev_seq": g["prev_seq"],
            "next_seq": g["next_seq"], "missing": missing, "at_end": tail, "from": lo.isoformat(),
            "to": None if tail else hi.isoformat(), "detail": detail,
            "evidence": [
                _evidence("ledger", "缺口前后的台账 / rows around the hole", "/api/v1/passages", gate_id=g["gate_id"],
                          **{"from": lo.date().isoformat(), "to": hi.date().isoformat()}, limit=1000),
            ],
        })
    return out


def anomalies(
    firms: Sequence[Mapping[str, Any]], first: date, last: date, *, alerts: Sequence[Mapping[str, Any]],
    enterprise_days: Iterable[tuple[str, date, int]], months: Iterable[tuple[str, date, int, int]],
    volumes: Mapping[tuple[str, date], float], gates: Sequence[Mapping[str, Any]],
    activity: Mapping[str, tuple[datetime | None, int]], seq_gaps: Iterable[Mapping[str, Any]], until: datetime,
) -> list[dict[str, Any]]:
    """Every rule's lines, in rule order then enterprise and gate."""
    lines = (traffic_drops(firms, first, last, alerts, enterprise_days, volumes)
             + clean_jumps(firms, first, last, months)
             + silent_gates(firms, gates, activity, until)
             + ledger_gaps(firms, seq_gaps))
    order = {rule: i for i, rule in enumerate(TITLES)}
    lines.sort(key=lambda x: (order[x["rule"]], x["enterprise_id"], x.get("gate_id") or ""))
    return lines
