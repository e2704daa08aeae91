"""Campaign lists from road checks (CSV/XLSX): each row judged on its own, in the police's own words."""

from __future__ import annotations

import re
from datetime import date

from blacklist.model import REASONS, BlacklistError
from blacklist.store import Listing
from plate_reader import plates

# Headers as traffic-police spreadsheets write them; the export's own headers are among them, so an exported
# list can be edited and imported back.
ALIASES = {
    "车牌号": "plate", "车牌号码": "plate", "号牌号码": "plate", "车牌": "plate", "号牌": "plate",
    "原因": "reason", "列入原因": "reason", "违法原因": "reason", "违法类型": "reason", "事由": "reason",
    "类型": "reason",
    "有效期至": "valid_until", "有效期": "valid_until", "截止日期": "valid_until", "有效期限": "valid_until",
    "到期日期": "valid_until", "截至": "valid_until",
    "备注": "note", "说明": "note",
    "案件编号": "case_ref", "案号": "case_ref", "决定书编号": "case_ref", "处罚决定书编号": "case_ref",
    "查处地点": "checkpoint", "检查点": "checkpoint", "查处卡口": "checkpoint", "卡口": "checkpoint",
}

LIMITS = {"note": 500, "case_ref": 100, "checkpoint": 200}


def _key(text: str) -> str:
    return re.sub(r"[\s_\-·()（）]+", "", text).lower()


_REASON_WORDS = {_key(code): code for code in REASONS} | {_key(label): code for code, label in REASONS.items()} | {
    _key(w): code
    for code, words in {
        "obd_tampering": ("篡改OBD", "OBD", "OBD作弊", "屏蔽OBD"),
        "device_removed": ("拆除后处理装置", "拆除尾气处理装置", "拆除污染控制装置", "拆除DPF", "拆除SCR"),
        "over_limit": ("超标", "尾气超标", "排放超标"),
        "other": ("其它",),
    }.items()
    for w in words
}


def parse_reason(value: str) -> str:
    code = _REASON_WORDS.get(_key(value))
    if code is None:
        labels = "、".join(f"{label}({code})" for code, label in REASONS.items())
        raise BlacklistError(422, "unknown_reason", f"原因无法识别: {value},可选: {labels} / unknown reason", "reason")
    return code


_DATE = re.compile(r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?(?:[ T]0?0:00(?::00)?)?$")


def parse_date(value: str, field: str = "valid_until") -> date:
    """'2025-03-31', '2025/3/31', '2025.3.31', '2025年3月31日' (Excel dates arrive as ISO already)."""
    match = _DATE.match(value.strip())
    try:
        if match is None:
            raise ValueError(value)
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        raise BlacklistError(
            422, "invalid_date", f"日期无效: {value},应为 YYYY-MM-DD / not a date, expected YYYY-MM-DD", field
        ) from None


def normalise_plate(raw: str, field: str = "plate") -> str:
    try:
        return plates.parse(raw).text
    except plates.InvalidPlate as exc:
        raise BlacklistError(422, "invalid_plate", str(exc), field) from None


def check_valid_until(day: date | None, today: date) -> None:
    if day is not None and day < today:
        raise BlacklistError(
            422, "valid_until_past",
            f"有效期至 {day.isoformat()} 早于今天 {today.isoformat()} / valid_until is in the past", "valid_until",
        )


def listing_from_row(values: dict[str, str | None], today: date) -> Listing:
    if "__extra__" in values:
        raise BlacklistError(422, "malformed_row", "该行单元格多于表头 / more cells than headers")
    raw_plate = values.get("plate")
    if not raw_plate:
        raise BlacklistError(422, "missing_field", "缺少车牌号 / plate is missing", "plate")
    plate = normalise_plate(raw_plate)
    raw_reason = values.get("reason")
    if not raw_reason:
        raise BlacklistError(422, "missing_field", "缺少列入原因 / reason is missing", "reason")
    reason = parse_reason(raw_reason)
    raw_until = values.get("valid_until")
    valid_until = parse_date(raw_until) if raw_until else None
    check_valid_until(valid_until, today)
    extra: dict[str, str | None] = {}
    for name, limit in LIMITS.items():
        text = values.get(name)
        if text is not None and len(text) > limit:
            raise BlacklistError(422, "too_long", f"{name} 过长(最多 {limit} 字符)/ too long", name)
        extra[name] = text
    return Listing(plate, reason, valid_until, extra["note"], extra["case_ref"], extra["checkpoint"])
