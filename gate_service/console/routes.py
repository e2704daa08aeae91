"""Console pages (public, static) and the helper endpoints the pages need (who am I, control status,
a passage's snapshot, the photo of a vehicle's 随车清单/行驶证)."""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from datetime import datetime, timezone
from pathlib import Path

from aiohttp import web

from gate_service import keys
from gate_service.auth import Principal, audit, enterprise_scope, require_gate
from gate_service.errors import ApiError, not_found
from gate_service.passages.judge import alert_level_at
from gate_service.registry.routes import normalise_plate
from gate_service.validation import moment_or_now
from gate_service.web import Api, json_response

STATIC = Path(__file__).resolve().parent / "static"
PAGES = {"/": "index.html", "/kiosk": "kiosk.html", "/police": "police.html", "/bureau": "bureau.html"}
ALL_ROLES = ("admin", "kiosk", "police", "ecology", "enterprise")
PHOTO_TYPES = ("image/jpeg", "image/png", "application/octet-stream")
MAX_PHOTO_BYTES = 8 * 1024 * 1024
TAG = "console"

api = Api()


def render_page(name: str) -> str:
    """A page with the shared header (title, navigation, login) put in place: one copy of it for all pages."""
    header = (STATIC / "_header.html").read_text(encoding="utf-8")
    return (STATIC / name).read_text(encoding="utf-8").replace("<!--#include header-->", header.rstrip("\n"))


def page_headers(html: str) -> dict[str, str]:
    """What a console page is served with: a CSP that runs only our own scripts (inline ones by their hash),
    no framing (a framed console could be clickjacked into an override), and no Referer leaving the page."""
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(script.encode()).digest()).decode() + "'"
        for script in re.findall(r"<script>(.*?)</script>", html, re.S))
    csp = "; ".join((
        "default-src 'self'",
        f"script-src 'self' {hashes}".rstrip(),
        # The pages size inputs and tables with style attributes; styles cannot run code.
        "style-src 'self' 'unsafe-inline'",
        # Snapshots and documents are fetched with the token and shown as blob: URLs; the chart is inline SVG.
        "img-src 'self' blob: data:",
        # 'self' covers same-origin ws:/wss: in browsers implementing CSP 3.
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ))
    return {"Cache-Control": "no-cache", "Content-Security-Policy": csp, "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer", "X-Content-Type-Options": "nosniff"}


def _page(name: str) -> web.Handler:
    body = render_page(name)  # read once: the pages are part of the installed package
    headers = page_headers(body)

    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(text=body, content_type="text/html", charset="utf-8", headers=headers)

    page.__name__ = "console_" + name.split(".")[0]
    return page


def setup(app: web.Application) -> None:
    """Mount the pages and add the console's endpoints to the app's Api (call before ``api.mount``)."""
    app[keys.API].extend(api.endpoints)
    for path, name in PAGES.items():
        app.router.add_get(path, _page(name))
    app.router.add_static("/static/", STATIC, name="console_static", append_version=False)


# ---- helper endpoints -----------------------------------------------------------------------------


@api.route("GET", "/api/v1/console/whoami", roles=ALL_ROLES, tag=TAG,
           summary="The caller's role and binding (gate, enterprise): how the console checks a pasted token")
async def whoami(request: web.Request) -> web.Response:
    p: Principal = request[keys.PRINCIPAL]
    return json_response({"role": p.role, "name": p.name, "token_id": p.token_id, "gate_id": p.gate_id,
                          "enterprise_id": p.enterprise_id})


@api.route("GET", "/api/v1/console/status", roles=ALL_ROLES, tag=TAG, query={"at": {"type": "string"}},
           summary="The control status in force at a moment (default now): policy or campaign plan, alert level")
async def status(request: web.Request) -> web.Response:
    at = moment_or_now(request.query.get("at") or None)
    policy = request.app[keys.POLICIES].policy_for(at)
    return json_response({
        "at": at.isoformat(),
        "policy": {"id": policy.id, "title": policy.title, "document": policy.document, "kind": policy.kind},
        "campaign": policy.kind != "base",
        "alert_level": await alert_level_at(request.app[keys.POOL], at),
        # A site (issue 14): its link to the platform, and how old its blacklist copy is; null elsewhere.
        "link": _link_status(request),
    })


def _link_status(request: web.Request) -> dict | None:
    from gate_service.link.context import STATUS

    status = request.app.get(STATUS)
    return status.public() if status is not None else None


def _passage_id(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise not_found("通行记录 passage", raw) from None


@api.route("GET", "/api/v1/console/passages/{passage_id}/snapshot.jpg", roles=("ecology", "admin", "enterprise",
                                                                               "kiosk"),
           tag=TAG, produces=("image/jpeg",), query={"kind": {"type": "string", "enum": ["snapshot", "crop"]}},
           summary="The camera snapshot (or, kind=crop, the plate crop) kept with a passage")
async def snapshot(request: web.Request) -> web.Response:
    raw = request.match_info["passage_id"]
    row = await request.app[keys.POOL].fetchrow(
        "SELECT gate_id, enterprise_id, snapshot_ref, crop_ref FROM passages WHERE id = $1 LIMIT 1", _passage_id(raw))
    if row is None:
        raise not_found("通行记录 passage", raw)
    principal: Principal = request[keys.PRINCIPAL]
    if principal.role == "kiosk":
        require_gate(request, row["gate_id"])
    scope = enterprise_scope(request, None)
    if scope is not None and row["enterprise_id"] != scope:
        raise ApiError(403, "forbidden_enterprise", "企业只能查看本企业数据 / an enterprise sees only its own data")
    ref = row["crop_ref"] if request.query.get("kind") == "crop" else row["snapshot_ref"]
    if not ref:
        raise ApiError(404, "no_snapshot", "该通行记录没有抓拍图片(人工录入或未保存)/ this passage has no snapshot")
    from gate_service.video.storage import BadKey

    try:
        data = await request.app[keys.MEDIA_STORE].read(ref)
    except (FileNotFoundError, BadKey):  # BadKey: a reference stored before clients were kept from setting it
        raise ApiError(404, "snapshot_missing", "抓拍图片已删除或缺失 / the snapshot is gone from storage") from None
    return web.Response(body=data, content_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@api.route("POST", "/api/v1/console/vehicles/{plate}/document", roles=("kiosk", "admin"), tag=TAG, status=201,
           content_types=PHOTO_TYPES,
           summary="Upload the photo of a registered vehicle's 随车清单 or 行驶证 (JPEG/PNG body); kept in the "
                   "media store under a key the server makes (never one a client names)")
async def upload_document(request: web.Request) -> web.Response:
    plate = normalise_plate(request.match_info["plate"])
    data = await request.read()
    if not data:
        raise ApiError(400, "empty_body", "没有图片数据 / no image in the body")
    if len(data) > MAX_PHOTO_BYTES:
        raise ApiError(413, "image_too_large", f"图片不能超过 {MAX_PHOTO_BYTES // 1048576} MB / image too large")
    if data[:3] == b"\xff\xd8\xff":
        ext, ctype = "jpg", "image/jpeg"
    elif data[:8] == b"\x89PNG\r\n\x1a\n":
        ext, ctype = "png", "image/png"
    else:
        raise ApiError(422, "image_invalid", "只接受 JPEG 或 PNG 图片 / only JPEG or PNG images")
    pool = request.app[keys.POOL]
    if await pool.fetchval("SELECT 1 FROM vehicles WHERE plate = $1", plate) is None:
        raise not_found("车辆 vehicle(请先登记 register it first)", plate)
    from gate_service.video.storage import media_key

    now = datetime.now(timezone.utc)
    principal: Principal = request[keys.PRINCIPAL]
    # media_key adds 128 random bits; nothing of the plate goes into the key.
    key = media_key("documents", principal.gate_id or "console", now, f"document.{ext}")
    stored = await request.app[keys.MEDIA_STORE].put(key, data)
    async with pool.acquire() as conn, conn.transaction():
        doc_id = await conn.fetchval(
            """INSERT INTO vehicle_documents (plate, storage_key, content_type, bytes, sha256, uploaded_at,
                                              uploaded_by, token_id)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id""",
            plate, stored.key, ctype, stored.bytes, stored.sha256, now, principal.actor, principal.token_id)
        await audit(conn, request, "vehicle.document", plate, {"ref": stored.key, "bytes": stored.bytes,
                                                               "document_id": doc_id})
    doc = {"document_id": doc_id, "document_ref": stored.key, "document_sha256": stored.sha256,
           "document_bytes": stored.bytes, "document_uploaded_at": now.isoformat(),
           "document_uploaded_by": principal.actor}
    return json_response({"plate": plate, **doc}, status=201)


# Not the police: their console is the blacklist, and no picture or video route admits them.
@api.route("GET", "/api/v1/console/vehicles/{plate}/document", roles=("kiosk", "admin", "ecology"),
           tag=TAG, produces=("image/jpeg", "image/png"), summary="The uploaded 随车清单/行驶证 photo of a vehicle")
async def get_document(request: web.Request) -> web.Response:
    plate = normalise_plate(request.match_info["plate"])
    row = await request.app[keys.POOL].fetchrow(
        """SELECT storage_key, content_type FROM vehicle_documents WHERE plate = $1
           ORDER BY uploaded_at DESC, id DESC LIMIT 1""", plate)
    if row is None:
        raise ApiError(404, "no_document", "该车辆没有上传随车清单/行驶证照片 / no document photo for this vehicle")
    from gate_service.video.storage import BadKey

    try:
        data = await request.app[keys.MEDIA_STORE].read(row["storage_key"])
    except (FileNotFoundError, BadKey):
        raise ApiError(404, "document_missing", "照片文件缺失 / the photo is missing from storage") from None
    return web.Response(body=data, content_type=row["content_type"],
                        headers={"Cache-Control": "private, no-store"})
