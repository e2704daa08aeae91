"""The hash chain: canonical content of a passage row and the hash that links it to the previous one.

Pure functions, so the verifier and the writer cannot disagree on what was hashed.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

GENESIS = b"\x00" * 32

# Every column that carries meaning. Adding a column to passages means adding it here, or it is unprotected.
HASHED_FIELDS = (
    "id", "at", "recorded_at", "gate_id", "gate_seq", "enterprise_id", "zone_id", "direction", "plate",
    "plate_color", "source", "read", "vehicle", "registered", "emission_stage", "fuel_type", "vehicle_class",
    "cargo", "tonnes", "decision", "reasons", "rules", "policy_id", "alert_level", "blacklisted", "clean",
    "snapshot_ref", "crop_ref", "video_segment_id", "video_offset_ms", "overrides", "override_reason",
    "token_id", "actor", "client_ref",
)


def _norm(value: Any) -> Any:
    if isinstance(value, datetime):
        # One spelling of a moment, whatever time zone the row was read back in.
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, Decimal):
        return format(value.quantize(Decimal("0.1")), "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _norm(v) for k, v in value.items()}
    return value


def canonical(row: dict[str, Any]) -> bytes:
    content = {name: _norm(row.get(name)) for name in HASHED_FIELDS}
    return json.dumps(content, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")


def link(prev_hash: bytes, row: dict[str, Any]) -> bytes:
    return hashlib.sha256(prev_hash + canonical(row)).digest()
