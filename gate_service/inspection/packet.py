"""The audit packet (检查材料) of one enterprise and period: what it holds, drawn reproducibly.

- A random sample of ``n`` ledger rows of the period (every row of the enterprise's gates, allowed or denied),
  drawn with ``random.Random(seed)`` from the rows in ledger order (time, gate, seq): the same seed over the same
  ledger draws the same rows. The seed is printed in the packet, with a digest of the drawn row ids.
- Each sampled row's snapshot and plate crop (from the BlobStore) and its emission stage, fuel and class as
  recorded then, re-checked against the registry as it is now (differences marked).
- The alert-day comparison over the period's orange/red days, the overrides and the denials of the period.
- One alert day drawn with the same generator after the sample (the "sampled alert day"), and the video segments
  of the enterprise's gates that day with their sha256, for the inspector's clip check.

Writers: ``packet_xlsx`` (openpyxl) and ``packet_pdf`` (fpdf2, an embedded CJK font); both run in a worker thread.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import secrets
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from aiohttp import web

from gate_service.errors import ApiError
from gate_service.inspection import compare, service, store
from gate_service.policy.model import period_bounds
from gate_service.video.storage import BadKey
from gate_service.web import json_response

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
MIN_SAMPLE, MAX_SAMPLE, DEFAULT_SAMPLE = 1, 50, 8
# Fields re-checked against the registry, with their Chinese names.
RECHECKED = {"emission_stage": "排放阶段", "fuel_type": "燃料类型", "vehicle_class": "车辆类型"}


def new_seed() -> int:
    return secrets.randbelow(2**31)


def draw(population_size: int, n: int, seed: int) -> tuple[list[int], random.Random]:
    """Indices of the sample (ascending) and the generator, to draw the alert day after it."""
    rng = random.Random(seed)
    return sorted(rng.sample(range(population_size), min(n, population_size))), rng


def recheck(row: Mapping[str, Any], now: Mapping[str, Any] | None) -> dict[str, Any]:
    """The row's vehicle as recorded at the gate vs the registry now: which fields differ, and a status."""
    recorded = {f: row.get(f) for f in RECHECKED}
    current = {f: (now or {}).get(f) for f in RECHECKED}
    if now is None:
        status = "现无登记 / not in the registry now" if row.get("registered") else "当时与现在均未登记 / never registered"
        differences = [f for f in RECHECKED if recorded[f] is not None]
    else:
        differences = [f for f in RECHECKED if recorded[f] != current[f]]
        status = "不一致 / differs" if differences else "一致 / same"
        if not row.get("registered"):
            status = "当时未登记，现已登记 / registered since"
            differences = [f for f in RECHECKED if current[f] is not None]
    return {"recorded": recorded, "registry_now": current, "differences": differences, "status": status,
            "registry_updated_at": now.get("updated_at").isoformat() if now and now.get("updated_at") else None}


async def _blob(media: Any, key: str | None) -> bytes | None:
    if not key or media is None:
        return None
    try:
        return await media.read(key)
    except (FileNotFoundError, BadKey):
        return None


async def build(conn: store.Conn, media: Any, firm: dict[str, Any], first: date, last: date, *, n: int,
                seed: int, now: datetime) -> dict[str, Any]:
    start, end = period_bounds(first, last)
    population = await store.ledger_keys(conn, firm["id"], start, end)
    picked, rng = draw(len(population), n, seed)
    ids = [population[i][3] for i in picked]
    by_id = {r["id"]: r for r in await store.passages_by_id(conn, ids)}
    rows = [by_id[i] for i in ids]
    vehicles = await store.vehicles_now(conn, sorted({r["plate"] for r in rows}))
    sample = []
    for index, r in zip(picked, rows, strict=True):
        sample.append({
            "index": index, "passage": compare.passage_json(r), "check": recheck(r, vehicles.get(r["plate"])),
            "cargo": r.get("cargo"), "snapshot": await _blob(media, r.get("snapshot_ref")),
            "crop": await _blob(media, r.get("crop_ref")),
            "has_snapshot": bool(r.get("snapshot_ref")), "has_crop": bool(r.get("crop_ref")),
        })
    alert_days = await service.alert_days_between(conn, first, last)
    comparison = await service.comparison(conn, firm, alert_days, now) if alert_days else None
    sampled_day = rng.choice(alert_days) if alert_days else None
    segments: list[dict[str, Any]] = []
    if sampled_day is not None:
        lo, hi = compare.day_bounds(sampled_day)
        gate_ids = [g["id"] for g in await store.gates(conn, firm["id"])]
        segments = await store.video_segments(conn, firm["id"], gate_ids, lo, hi)
    return {
        "enterprise": firm, "from": first, "to": last, "seed": seed, "n": n, "population": len(population),
        "sample_digest": hashlib.sha256("\n".join(str(i) for i in ids).encode()).hexdigest(),
        "generated_at": now, "sample": sample, "alert_days": alert_days, "comparison": comparison,
        "overrides": [compare.override_json(p) for p in await store.overrides(conn, firm["id"], start, end)],
        "denials": [{**compare.passage_json(p), "overridden": p["overridden"]}
                    for p in await store.denials(conn, firm["id"], start, end)],
        "sampled_alert_day": sampled_day,
        "segments": [_segment_json(s) for s in segments],
    }


def _segment_json(s: Mapping[str, Any]) -> dict[str, Any]:
    return {"id": s["id"], "gate_id": s["gate_id"], "started_at": s["started_at"].isoformat(),
            "ended_at": s["ended_at"].isoformat() if s["ended_at"] else None, "status": s["status"],
            "frames": s["frames"], "bytes": s["bytes"], "sha256": s["sha256"],
            "deleted": s["deleted_at"] is not None, "legal_hold": s["legal_hold"]}


def to_json(data: Mapping[str, Any]) -> dict[str, Any]:
    """The packet as JSON (images as links to the console's snapshot endpoint, not inline)."""
    firm = data["enterprise"]
    sample = []
    for s in data["sample"]:
        pid = s["passage"]["passage_id"]
        sample.append({
            "index": s["index"], **s["passage"], "cargo": s["cargo"], "check": s["check"],
            "snapshot_href": f"/api/v1/console/passages/{pid}/snapshot.jpg" if s["has_snapshot"] else None,
            "crop_href": f"/api/v1/console/passages/{pid}/snapshot.jpg?kind=crop" if s["has_crop"] else None,
            "snapshot_available": s["snapshot"] is not None, "crop_available": s["crop"] is not None,
        })
    return {
        "enterprise_id": firm["id"], "enterprise_name": firm.get("name"), "from": data["from"].isoformat(),
        "to": data["to"].isoformat(), "seed": data["seed"], "n": data["n"], "population": data["population"],
        "sample_digest": data["sample_digest"], "generated_at": data["generated_at"].isoformat(),
        "sample": sample, "alert_days": [x.isoformat() for x in data["alert_days"]],
        "comparison": data["comparison"], "overrides": data["overrides"], "denials": data["denials"],
        "sampled_alert_day": data["sampled_alert_day"].isoformat() if data["sampled_alert_day"] else None,
        "segments": data["segments"],
    }


def filename(data: Mapping[str, Any], ext: str) -> str:
    return f"inspection-{data['enterprise']['id']}-{data['from']}-{data['to']}-seed{data['seed']}.{ext}"


async def respond(request: web.Request, data: dict[str, Any], fmt: str) -> web.StreamResponse:
    if fmt == "json":
        return json_response(to_json(data))
    headers = {"Content-Disposition": f'attachment; filename="{filename(data, fmt)}"', "X-Packet-Seed": str(data["seed"])}
    if fmt == "xlsx":
        from gate_service.inspection.packet_xlsx import write_packet_xlsx

        body = await asyncio.to_thread(write_packet_xlsx, data)
        return web.Response(body=body, content_type=XLSX, headers=headers)
    from gate_service.inspection.packet_pdf import FontMissing, write_packet_pdf

    try:
        body = await asyncio.to_thread(write_packet_pdf, data)
    except FontMissing as exc:
        raise ApiError(503, "pdf_font_missing", f"服务器缺少中文字体，无法生成 PDF / {exc}") from None
    return web.Response(body=body, content_type="application/pdf", headers=headers)
