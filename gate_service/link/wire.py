"""Ledger rows and signed statements as they travel: JSON that decodes back to exactly what was hashed."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from gate_service.ledger.chain import HASHED_FIELDS

# Columns whose Python type JSON does not carry; everything else (text, numbers, jsonb, arrays) is plain JSON.
_MOMENTS = ("at", "recorded_at")
_UUIDS = ("id", "overrides")
_DECIMALS = ("tonnes",)


def _value(v: Any) -> Any:
    if isinstance(v, datetime):
        return v.isoformat()
    if isinstance(v, (UUID, Decimal)):
        return str(v)
    return v


def encode_row(record: Any) -> dict[str, Any]:
    """A passages row (asyncpg Record or dict) → JSON object with its chain fields as hex."""
    row = {name: _value(record[name]) for name in HASHED_FIELDS}
    row["prev_hash"] = bytes(record["prev_hash"]).hex()
    row["hash"] = bytes(record["hash"]).hex()
    return row


class BadRow(ValueError):
    pass


def decode_row(data: Any) -> dict[str, Any]:
    """The inverse of encode_row; BadRow when a field is missing or malformed."""
    if not isinstance(data, dict):
        raise BadRow("a row must be an object")
    try:
        row = {name: data[name] for name in HASHED_FIELDS}
        for name in _MOMENTS:
            row[name] = datetime.fromisoformat(row[name]) if row[name] is not None else None
            if row[name] is not None and row[name].tzinfo is None:
                raise BadRow(f"{name} has no time zone")
        for name in _UUIDS:
            row[name] = UUID(row[name]) if row[name] is not None else None
        for name in _DECIMALS:
            row[name] = Decimal(row[name]) if row[name] is not None else None
        row["prev_hash"] = bytes.fromhex(data["prev_hash"])
        row["hash"] = bytes.fromhex(data["hash"])
    except BadRow:
        raise
    except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
        raise BadRow(f"malformed row: {exc!r}") from None
    if not isinstance(row["gate_seq"], int) or isinstance(row["gate_seq"], bool) or not isinstance(row["gate_id"], str):
        raise BadRow("gate_id must be text and gate_seq an integer")
    return row


def statement_bytes(statement: dict[str, Any]) -> bytes:
    """What a site signs: one canonical spelling of the statement (sorted keys, no spaces, UTF-8)."""
    return json.dumps(statement, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
