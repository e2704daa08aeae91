"""Vehicle registry import from CSV/XLSX: every row is judged on its own, good rows are kept."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from gate_service import vocab
from gate_service.errors import ApiError
from gate_service.registry.schemas import VEHICLE_FIELDS
from gate_service.validation import validate
from plate_reader import plates
from sheets import Row

# Headers as county offices write them in Excel.
ALIASES = {
    "车牌号": "plate", "车牌号码": "plate", "号牌号码": "plate", "车牌": "plate",
    "车牌颜色": "plate_color", "号牌颜色": "plate_color",
    "vin": "vin", "车辆识别代号": "vin", "车架号": "vin",
    "发动机号": "engine_no", "发动机号码": "engine_no",
    "排放阶段": "emission_stage", "排放标准": "emission_stage",
    "燃料类型": "fuel_type", "燃料种类": "fuel_type",
    "车辆类型": "vehicle_class", "车型": "vehicle_class",
    "注册日期": "registered_on", "注册登记日期": "registered_on",
    "车队": "haulier", "运输单位": "haulier", "车队名称": "haulier",
}

_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "Ⅰ": 1, "Ⅱ": 2, "Ⅲ": 3, "Ⅳ": 4, "Ⅴ": 5, "Ⅵ": 6}


def _by_label(table: dict[str, str]) -> dict[str, str]:
    return {label: key for key, label in table.items()}


_LABELS = {
    "plate_color": _by_label(vocab.PLATE_COLORS) | {"蓝": "blue", "黄": "yellow", "绿": "green", "黄绿": "yellow-green",
                                                  "渐变绿": "green", "白": "white", "黑": "black"},
    "fuel_type": _by_label(vocab.FUEL_TYPES) | {"天然气": "gas", "CNG": "gas", "LNG": "gas", "电动": "electric",
                                                "纯电": "electric", "氢能": "hydrogen", "混合动力": "hybrid"},
    "vehicle_class": _by_label(vocab.VEHICLE_CLASSES),
}


class RowError(Exception):
    def __init__(self, code: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.field = code, message, field


def emission_stage(value: str | None) -> int | None:
    """'5', '国5', '国V', 'V', '国六' → a number; '' → None."""
    if value is None:
        return None
    text = value.strip().upper().removeprefix("国").removeprefix("CHINA").strip()
    text = text.translate(str.maketrans("零一二三四五六", "0123456"))
    if re.fullmatch(r"[0-6]", text):
        return int(text)
    if re.fullmatch(r"6[AB]", text):
        return 6
    if text in _ROMAN:
        return _ROMAN[text]
    raise RowError("unknown_value", f"排放阶段无法识别: {value} / unknown emission stage", "emission_stage")


def vehicle_from_row(values: dict[str, str | None]) -> tuple[str, dict[str, Any]]:
    if "__extra__" in values:
        raise RowError("malformed_row", "该行单元格多于表头 / more cells than headers")
    raw_plate = values.get("plate")
    if not raw_plate:
        raise RowError("missing_field", "缺少车牌号 / plate is missing", "plate")
    try:
        plate = plates.parse(raw_plate).text
    except plates.InvalidPlate as exc:
        raise RowError("invalid_plate", str(exc), "plate") from None
    fields: dict[str, Any] = {}
    for name in VEHICLE_FIELDS:
        value = values.get(name)
        if value is None:
            continue
        if name in _LABELS:
            value = _LABELS[name].get(value, value.lower() if value.isascii() else value)
        if name == "emission_stage":
            value = emission_stage(value)
        fields[name] = value
    try:
        validate(fields, {"type": "object", "properties": VEHICLE_FIELDS})
    except ApiError as exc:
        raise RowError(exc.code, exc.message, exc.extra.get("field")) from None
    for required in ("fuel_type", "vehicle_class"):
        if required not in fields:
            raise RowError("missing_field", f"缺少字段 {required} / missing {required}", required)
    return plate, fields


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    rejected_rows: list[dict[str, Any]] = field(default_factory=list)
    duplicates: int = 0

    def reject(self, row: Row, code: str, message: str, fld: str | None = None) -> None:
        self.rejected_rows.append(
            {"line": row.line, "plate": row.values.get("plate"), "code": code, "message": message, "field": fld}
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "created": self.created,
            "updated": self.updated,
            "rejected": len(self.rejected_rows),
            "duplicates": self.duplicates,
            "rejected_rows": self.rejected_rows,
        }


def judge_rows(rows: list[Row]) -> tuple[ImportReport, list[tuple[str, dict[str, Any]]]]:
    """Each row judged on its own; the first of two rows with the same plate is kept."""
    report = ImportReport()
    seen: dict[str, int] = {}
    accepted = []
    for row in rows:
        try:
            plate, fields = vehicle_from_row(row.values)
        except RowError as exc:
            report.reject(row, exc.code, exc.message, exc.field)
            continue
        if plate in seen:
            report.duplicates += 1
            report.reject(row, "duplicate_row", f"与第 {seen[plate]} 行车牌重复,已保留第 {seen[plate]} 行 / "
                          f"duplicate of line {seen[plate]}, which was kept", "plate")
            continue
        seen[plate] = row.line
        accepted.append((plate, fields))
    return report, accepted
