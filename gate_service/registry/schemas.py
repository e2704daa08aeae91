"""JSON schemas of the registry bodies (API.md). Published as-is in the OpenAPI description."""

from __future__ import annotations

from gate_service import vocab

ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
_DATE = {"type": "string", "format": "date"}

ENTERPRISE = {
    "type": "object",
    "required": ["name", "industry"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "industry": {"type": "string", "enum": list(vocab.INDUSTRIES)},
        "county": {"type": "string", "maxLength": 50, "nullable": True},
        "zone_id": {"type": "string", "enum": list(vocab.ZONES), "nullable": True},
        "retrofit_completed_on": {**_DATE, "nullable": True},
        "grade": {"type": "string", "enum": list(vocab.GRADES), "nullable": True},
    },
}

GATE = {
    "type": "object",
    "required": ["name", "zone_id"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "enterprise_id": {"type": "string", "pattern": ID_PATTERN, "nullable": True},
        "zone_id": {"type": "string", "enum": list(vocab.ZONES)},
    },
}

VEHICLE_FIELDS = {
    "plate_color": {"type": "string", "enum": list(vocab.PLATE_COLORS), "nullable": True},
    "vin": {"type": "string", "pattern": r"^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$", "nullable": True},
    "engine_no": {"type": "string", "maxLength": 40, "nullable": True},
    "emission_stage": {"type": "integer", "minimum": 0, "maximum": 6, "nullable": True},
    "fuel_type": {"type": "string", "enum": list(vocab.FUEL_TYPES), "nullable": True},
    "vehicle_class": {"type": "string", "enum": list(vocab.VEHICLE_CLASSES), "nullable": True},
    "registered_on": {**_DATE, "nullable": True},
    "haulier": {"type": "string", "maxLength": 200, "nullable": True},
}

# Keys of a vehicle's `extra` the server writes (the uploaded document photo's reference, hash, size, ...).
SERVER_EXTRA_PREFIX = "document_"

VEHICLE = {
    "type": "object",
    "required": ["fuel_type", "vehicle_class"],
    # Further fields of the national record (owner, licence photo reference, ...) are kept in `extra`.
    "additionalProperties": True,
    "properties": {
        "plate": {"type": "string", "maxLength": 16},
        **VEHICLE_FIELDS,
        # Who may change the vehicle besides the admin (issue 15 item 1); only the admin names another.
        "owner_enterprise_id": {"type": "string", "pattern": ID_PATTERN, "nullable": True},
        "extra": {"type": "object"},
    },
}
