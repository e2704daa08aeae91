"""Validate JSON bodies and query strings against a small JSON-Schema subset.

Endpoints declare plain JSON-Schema dicts; the same dict is published in the OpenAPI
description, so the contract and the check cannot drift apart. Domain packages (blacklist)
declare theirs the same way without importing this module.
"""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timezone, tzinfo
from typing import Any
from uuid import UUID

from gate_service.errors import ApiError

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "object": (dict,),
    "array": (list,),
}


def _fail(field: str, message: str, code: str = "validation_failed") -> ApiError:
    return ApiError(422, code, f"字段 {field}: {message}", field=field)


def _type_ok(value: Any, types: list[str]) -> bool:
    for t in types:
        if t == "null" and value is None:
            return True
        if t in ("integer", "number") and isinstance(value, bool):
            continue
        if t in _TYPES and isinstance(value, _TYPES[t]):
            if t == "integer" and isinstance(value, float):
                continue
            return True
    return False


def validate(value: Any, schema: dict[str, Any], field: str = "body") -> Any:
    """Return the value (dates stay ISO strings) or raise a 422 naming the field."""
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else list(types)
        if schema.get("nullable"):
            types.append("null")
        if not _type_ok(value, types):
            raise _fail(field, f"应为 {'/'.join(types)} 类型 / expected {' or '.join(types)}", "wrong_type")
    if value is None:
        return value
    if "enum" in schema and value not in schema["enum"]:
        allowed = ", ".join(str(v) for v in schema["enum"] if v is not None)
        raise _fail(field, f"取值无效 {value!r},可选: {allowed} / unknown value", "unknown_value")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            raise _fail(field, "不能为空 / too short")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            raise _fail(field, f"过长(最多 {schema['maxLength']} 字符)/ too long")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            raise _fail(field, "格式不正确 / does not match the expected format")
        fmt = schema.get("format")
        if fmt == "date":
            try:
                day = date.fromisoformat(value)
            except ValueError:
                raise _fail(field, "应为日期 YYYY-MM-DD / expected a date YYYY-MM-DD") from None
            in_range(day, field)
        elif fmt == "uuid":
            try:
                UUID(value)
            except ValueError:
                raise _fail(field, "应为 UUID / expected a UUID") from None
        elif fmt == "date-time":
            parsed = parse_datetime(value, field)
            if parsed.tzinfo is None:
                raise _fail(field, "时间需带时区偏移 / the time needs a UTC offset, e.g. +08:00")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            raise _fail(field, f"不能小于 {schema['minimum']} / below minimum")
        if "maximum" in schema and value > schema["maximum"]:
            raise _fail(field, f"不能大于 {schema['maximum']} / above maximum")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                raise ApiError(422, "missing_field", f"缺少字段 {name} / missing field {name}", field=name)
        if schema.get("additionalProperties") is False:
            for name in value:
                if name not in props:
                    raise ApiError(422, "unknown_field", f"未知字段 {name} / unknown field {name}", field=name)
        for name, sub in props.items():
            if name in value:
                validate(value[name], sub, name if field == "body" else f"{field}.{name}")
    if isinstance(value, list) and "items" in schema:
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            raise _fail(field, f"最多 {schema['maxItems']} 项 / too many items")
        for i, item in enumerate(value):
            validate(item, schema["items"], f"{field}[{i}]")
    return value


# ---- JSON bodies -----------------------------------------------------------------------------------

# No field of the API needs more; Python's own int() limit (4300 digits) would otherwise surface as a 500.
MAX_INT_DIGITS = 40
# Bodies are a few levels deep; the limit keeps both the C parser and the walk below far from the recursion limit.
MAX_DEPTH = 64


class _Refused:
    """Stands where the parser met a value it must not hand on, so the walk can name the field."""

    def __init__(self, literal: str, why: str) -> None:
        self.literal = literal
        self.why = why


def _float(text: str) -> float | _Refused:
    value = float(text)
    return value if math.isfinite(value) else _Refused(text, "超出范围 / out of range")


def _int(text: str) -> int | _Refused:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        return _Refused(text[:12] + "…", f"超过 {MAX_INT_DIGITS} 位 / more than {MAX_INT_DIGITS} digits")
    return int(text)


def _constant(text: str) -> _Refused:
    # Python's json reads NaN/Infinity (not JSON at all); PostgreSQL would store NaN and every sum over it.
    return _Refused(text, "不是有限数值 / not a finite number")


def loads_json(raw: bytes | str) -> Any:
    """Parse a client's JSON: only finite numbers, integers of at most MAX_INT_DIGITS digits, at most
    MAX_DEPTH levels, no NUL in any string. Every route that reads a JSON body goes through here."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, (bytes, bytearray)) else raw
    except UnicodeDecodeError:
        raise ApiError(400, "invalid_encoding", "请求体必须是 UTF-8 / the body must be UTF-8") from None
    try:
        value = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except json.JSONDecodeError as exc:
        raise ApiError(
            400, "invalid_json", f"JSON 格式错误(第 {exc.lineno} 行第 {exc.colno} 列)/ malformed JSON: {exc.msg}"
        ) from None
    except RecursionError:  # the C parser counts its depth and refuses, long before the stack ends
        raise _too_deep() from None
    _check_values(value)
    return value


def _too_deep() -> ApiError:
    return ApiError(400, "json_too_deep", f"JSON 嵌套超过 {MAX_DEPTH} 层 / JSON nested deeper than {MAX_DEPTH} levels")


def _check_values(value: Any) -> None:
    # Iterative: a body nested a few hundred levels (under the parser's limit) must not exhaust the stack here.
    stack: list[tuple[str, Any, int]] = [("body", value, 0)]
    while stack:
        path, item, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _too_deep()
        if isinstance(item, _Refused):
            field = path[5:] if path.startswith("body.") else path
            raise ApiError(422, "invalid_value", f"字段 {field}: {item.literal} {item.why}", field=field)
        if isinstance(item, str) and "\x00" in item:  # PostgreSQL stores no NUL in text or jsonb
            raise ApiError(422, "invalid_character", "请求体中含有空字符 \\u0000 / NUL character (\\u0000) in the body")
        if isinstance(item, dict):
            for k, v in item.items():
                if "\x00" in k:
                    raise ApiError(422, "invalid_character",
                                   "请求体中含有空字符 \\u0000 / NUL character (\\u0000) in the body")
                stack.append((f"{path}.{k}", v, depth + 1))
        elif isinstance(item, list):
            stack.extend((f"{path}[{i}]", v, depth + 1) for i, v in enumerate(item))


# Dates the service can work with: a day or a moment is shifted by a day or by UTC+8 in many places, which
# Python cannot do at year 1 or 9999 (OverflowError, a 500); no passage, plan or report lies outside these.
MIN_YEAR, MAX_YEAR = 1900, 2999


def in_range(value: date, field: str) -> date:
    """``value`` (a date or a datetime), or a 422 date_out_of_range naming the field."""
    if not MIN_YEAR <= value.year <= MAX_YEAR:
        raise _fail(field, f"年份须在 {MIN_YEAR}–{MAX_YEAR} 之间 / the year must be within {MIN_YEAR}–{MAX_YEAR}",
                    "date_out_of_range")
    return value


def parse_datetime(value: str, field: str = "at") -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(field, "应为 ISO-8601 时间 / expected an ISO-8601 date-time") from None
    return in_range(moment, field)


def moment_or_now(raw: str | None, field: str = "at", *, naive: tzinfo = timezone.utc) -> datetime:
    """The moment ``raw`` names (ISO-8601), or now when it is None; a time without an offset is read in
    ``naive``."""
    moment = parse_datetime(raw, field) if raw is not None else datetime.now(timezone.utc)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=naive)


def parse_date(value: str, field: str) -> date:
    try:
        day = date.fromisoformat(value)
    except ValueError:
        raise _fail(field, "应为日期 YYYY-MM-DD / expected a date YYYY-MM-DD", "bad_query") from None
    return in_range(day, field)


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}
