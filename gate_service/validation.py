"""Validate JSON bodies and query strings against a small JSON-Schema subset.

Endpoints declare plain JSON-Schema dicts; the same dict is published in the OpenAPI
description, so the contract and the check cannot drift apart. Domain packages (blacklist)
declare theirs the same way without importing this module.
"""

from __future__ import annotations

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
                date.fromisoformat(value)
            except ValueError:
                raise _fail(field, "应为日期 YYYY-MM-DD / expected a date YYYY-MM-DD") from None
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


def parse_datetime(value: str, field: str = "at") -> datetime:
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _fail(field, "应为 ISO-8601 时间 / expected an ISO-8601 date-time") from None


def moment_or_now(raw: str | None, field: str = "at", *, naive: tzinfo = timezone.utc) -> datetime:
    """The moment ``raw`` names (ISO-8601), or now when it is None; a time without an offset is read in
    ``naive``."""
    moment = parse_datetime(raw, field) if raw is not None else datetime.now(timezone.utc)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=naive)


def parse_date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(field, "应为日期 YYYY-MM-DD / expected a date YYYY-MM-DD", "bad_query") from None


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}
