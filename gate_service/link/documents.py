"""Vehicle document photos (随车清单/行驶证) registered at a site, on both sides of the link.

The site sends each ``vehicle_documents`` row with its photo after the vehicle itself went up (the platform's
row references the vehicle). The platform stores the photo under a key it makes itself — a key a site could
name would let it overwrite any blob at the platform — and remembers (site, the site's document id), so a resend
is acknowledged, not stored twice. The platform's console then serves it like any document
(``GET /api/v1/console/vehicles/{plate}/document``: kiosk, admin, ecology; never the police).
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timezone
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.errors import ApiError
from gate_service.link.adapter import Refused
from gate_service.link.platform_routes import SITE, TAG
from gate_service.video.storage import media_key
from gate_service.web import Api, json_response

log = logging.getLogger(__name__)
api = Api()
PAGE = 20
MAX_PHOTO_BYTES = 8 * 1024 * 1024  # as the console's own upload
TYPES = {"image/jpeg": (b"\xff\xd8\xff", "jpg"), "image/png": (b"\x89PNG\r\n\x1a\n", "png")}
QUERY = {"plate": {"type": "string", "minLength": 2, "maxLength": 20},
         "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
         "uploaded_at": {"type": "string", "maxLength": 40}, "uploaded_by": {"type": "string", "maxLength": 200},
         "content_type": {"type": "string", "enum": list(TYPES)}, "bytes": {"type": "string", "pattern": "^[0-9]+$"}}


# ---- platform ---------------------------------------------------------------------------------------------

@api.route("PUT", r"/api/v1/link/documents/{document_id:[0-9]+}", roles=SITE, tag=TAG, query=QUERY,
           content_types=tuple(TYPES),
           summary="A vehicle document photo registered at the site (the site's document id; stored under a key "
                   "the platform makes)")
async def put_document(request: web.Request) -> web.Response:
    site = request[keys.PRINCIPAL]
    doc_id = int(request.match_info["document_id"])
    q = request.query
    if "plate" not in q or "sha256" not in q:
        raise ApiError(422, "invalid_document", "需要 plate 与 sha256 / plate and sha256 are required", field="plate")
    pool = request.app[keys.POOL]
    existing = await pool.fetchrow(
        "SELECT id, storage_key FROM vehicle_documents WHERE origin_site = $1 AND origin_document_id = $2",
        site.token_id, doc_id)
    if existing is not None:
        return json_response({"document_id": existing["id"], "duplicate": True})
    data = await request.read()
    ctype = request.content_type
    magic, ext = TYPES[ctype]
    if not data.startswith(magic) or len(data) > MAX_PHOTO_BYTES:
        raise ApiError(422, "image_invalid", "只接受 8 MB 以内的 JPEG 或 PNG 图片 / JPEG or PNG up to 8 MB only")
    digest = hashlib.sha256(data).hexdigest()
    if digest != q["sha256"]:
        raise ApiError(422, "sha256_mismatch", "照片内容与站点记录的 sha256 不符 / the photo does not match its sha256")
    if await pool.fetchval("SELECT 1 FROM vehicles WHERE plate = $1", q["plate"]) is None:
        # The vehicle's own record goes up first, in the records stream; the site retries this one later.
        raise ApiError(409, "unknown_vehicle", "平台尚无该车辆登记 / the platform has no such vehicle yet", field="plate")
    try:
        at = min(datetime.fromisoformat(q.get("uploaded_at", "")), datetime.now(timezone.utc))
    except (TypeError, ValueError):
        at = datetime.now(timezone.utc)
    key = media_key("documents", f"site-{site.token_id}", at, f"document.{ext}")
    stored = await request.app[keys.MEDIA_STORE].put(key, data)
    try:
        new_id = await pool.fetchval(
            """INSERT INTO vehicle_documents (plate, storage_key, content_type, bytes, sha256, uploaded_at, uploaded_by,
                                              token_id, origin_site, origin_document_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9) RETURNING id""",
            q["plate"], stored.key, ctype, stored.bytes, stored.sha256, at,
            f"{q.get('uploaded_by') or '站点'} @站点{site.token_id}", site.token_id, doc_id)
    except asyncpg.UniqueViolationError:  # the same photo arrived twice at once: keep one
        await request.app[keys.MEDIA_STORE].delete(stored.key)
        new_id = await pool.fetchval(
            "SELECT id FROM vehicle_documents WHERE origin_site = $1 AND origin_document_id = $2", site.token_id, doc_id)
        return json_response({"document_id": new_id, "duplicate": True})
    except asyncpg.ForeignKeyViolationError:
        await request.app[keys.MEDIA_STORE].delete(stored.key)
        raise ApiError(409, "unknown_vehicle", "平台尚无该车辆登记 / the platform has no such vehicle yet",
                       field="plate") from None
    return json_response({"document_id": new_id, "duplicate": False, "bytes": stored.bytes})


# ---- site -------------------------------------------------------------------------------------------------

async def push_documents(pool: asyncpg.Pool, media_store: Any, adapter: Any, cursor: Any, move: Any) -> None:
    """Send the site's document photos after ``cursor`` (a document id), oldest first.

    A photo whose vehicle the platform does not hold yet stops the page (409 unknown_vehicle): the vehicles
    stream goes first, so it will be there on a later round. A photo refused for good is logged and passed.
    """
    done = int(await cursor(pool, "documents", "0"))
    rows = await pool.fetch(
        """SELECT id, plate, storage_key, content_type, bytes, sha256, uploaded_at, uploaded_by FROM vehicle_documents
           WHERE id > $1 AND origin_site IS NULL ORDER BY id LIMIT $2""", done, PAGE)
    for r in rows:
        try:
            data = await media_store.read(r["storage_key"])
        except (FileNotFoundError, ValueError):
            log.warning("document %s: photo missing from the site's store; not sent", r["id"])
            done = r["id"]
            continue
        meta = {"id": r["id"], "plate": r["plate"], "sha256": r["sha256"] or hashlib.sha256(data).hexdigest(),
                "uploaded_at": r["uploaded_at"].isoformat(), "uploaded_by": r["uploaded_by"],
                "bytes": len(data)}
        try:
            await adapter.put_document(meta, data, r["content_type"])
        except Refused as exc:
            if exc.code == "unknown_vehicle":
                break
            log.warning("platform refused document %s: %s", r["id"], exc)
        done = r["id"]
    await move(pool, "documents", str(done))
