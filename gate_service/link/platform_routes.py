"""The platform's endpoints for sites (role ``site``): enrol, sync (heartbeat), batches, checkpoints, media,
side records and the downlink long-poll. Every write a site makes is checked against its pinned key."""

from __future__ import annotations

import asyncio
import base64
import binascii
import gzip
import json
import zlib
from datetime import datetime
from typing import Any

from aiohttp import web

from gate_service import keys
from gate_service.auth import Principal
from gate_service.errors import ApiError
from gate_service.link import enrol, records, store
from gate_service.link.keys import public_key_from_b64, verify
from gate_service.link.wire import BadRow, decode_row, statement_bytes
from gate_service.video.storage import BadKey, check_key
from gate_service.web import Api, json_response

api = Api()
TAG = "link"
SITE = ("site",)
GZIP = "application/gzip"
# Upper bound of a decompressed batch: 500 rows are ~1 MB; this refuses a gzip bomb long before memory suffers.
MAX_INFLATED = 64 * 1024 * 1024

ENROL = {
    "type": "object", "required": ["public_key"], "additionalProperties": False,
    "properties": {"public_key": {"type": "string", "minLength": 40, "maxLength": 100},
                   "software": {"type": "string", "maxLength": 100}},
}
SIGNED = {
    "type": "object", "required": ["statement", "signature"], "additionalProperties": True,
    "properties": {"statement": {"type": "object"}, "signature": {"type": "string", "maxLength": 200}},
}


def _site(request: web.Request) -> Principal:
    return request[keys.PRINCIPAL]


def _inflate(raw: bytes) -> Any:
    try:
        d = zlib.decompressobj(wbits=31)
        data = d.decompress(raw, MAX_INFLATED)
        if d.unconsumed_tail:
            raise ApiError(413, "body_too_large", "解压后过大 / the batch is too large once decompressed")
        return json.loads(data.decode("utf-8"))
    except (zlib.error, EOFError, gzip.BadGzipFile):
        raise ApiError(400, "invalid_gzip", "不是有效的 gzip 数据 / the body is not valid gzip") from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ApiError(400, "invalid_json", "批次内容不是 JSON / the batch is not JSON") from None


async def _body(request: web.Request) -> dict[str, Any]:
    if request.content_type == GZIP:
        value = await asyncio.to_thread(_inflate, await request.read())
    else:
        value = request.get(keys.BODY)
        if value is None:
            from gate_service.web import read_json

            value = await read_json(request)
    if not isinstance(value, dict):
        raise ApiError(422, "invalid_batch", "批次应为 JSON 对象 / the batch must be a JSON object")
    return value


async def _verified(request: web.Request, body: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    """The statement, after its signature checked out against the site's pinned key."""
    statement, signature = body.get("statement"), body.get("signature")
    if not isinstance(statement, dict) or not isinstance(signature, str):
        raise ApiError(422, "invalid_statement", "缺少签名声明 / statement and signature are required", field="statement")
    site = _site(request)
    if statement.get("site_id") != site.token_id:
        raise ApiError(422, "wrong_site", "声明中的站点与令牌不符 / the statement names another site", field="statement")
    try:
        sig = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_signature", "签名不是 base64 / the signature is not base64", field="signature") from None
    key = await enrol.site_key(request.app[keys.POOL], site.token_id)
    if not verify(key, sig, statement_bytes(statement)):
        raise ApiError(401, "bad_signature", "签名校验失败 / the signature does not match the site's key",
                       field="signature")
    return statement, sig


def _sent_at(statement: dict[str, Any]) -> datetime | None:
    try:
        at = datetime.fromisoformat(statement["sent_at"])
    except (KeyError, TypeError, ValueError):
        return None
    return at if at.tzinfo is not None else None


def _head(value: Any, field: str) -> tuple[int, bytes]:
    try:
        seq, digest = value
        if not isinstance(seq, int) or seq < 0:
            raise ValueError
        return seq, bytes.fromhex(digest)
    except (TypeError, ValueError):
        raise ApiError(422, "invalid_head", f"{field} 应为 [seq, hash] / {field} must be [seq, hex hash]",
                       field=field) from None


@api.route("POST", "/api/v1/link/enrol", roles=SITE, body=ENROL, tag=TAG,
           summary="A site registers its Ed25519 public key (pinned on first contact)")
async def enrol_site(request: web.Request) -> web.Response:
    body = request[keys.BODY]
    try:
        key = public_key_from_b64(body["public_key"])
    except (binascii.Error, ValueError):
        raise ApiError(422, "invalid_public_key", "公钥无效 / not an Ed25519 public key (base64 of 32 bytes)",
                       field="public_key") from None
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        result = await enrol.pin_key(conn, _site(request), key, body.get("software"))
    return json_response(result)


@api.route("POST", "/api/v1/link/sync", roles=SITE, body=SIGNED, tag=TAG,
           summary="Heartbeat: the site's signed chain heads; answers the acknowledged head of each gate")
async def sync(request: web.Request) -> web.Response:
    body = request[keys.BODY]
    statement, _ = await _verified(request, body)
    heads = statement.get("heads")
    if not isinstance(heads, dict) or len(heads) > 1000:
        raise ApiError(422, "invalid_statement", "heads 应为对象(≤1000 个门岗)/ heads must be an object of ≤ 1000 gates",
                       field="heads")
    site = _site(request)
    pool = request.app[keys.POOL]
    gates: dict[str, Any] = {}
    async with pool.acquire() as conn, conn.transaction():
        for gate_id, value in heads.items():
            site_head = _head(value, f"heads.{gate_id}")
            try:
                await enrol.may_upload(conn, site, gate_id)
            except ApiError as exc:
                gates[gate_id] = {"gate_id": gate_id, "refused": exc.code, "message": exc.message}
                continue
            head = await store.gate_head(conn, site.token_id, gate_id, lock=True)
            if head["chain"] == "ok":
                await store.check_site_head(conn, site.token_id, gate_id, site_head, head["seq"],
                                            _sent_at(statement))
            head = await store.gate_head(conn, site.token_id, gate_id)
            gates[gate_id] = store._refresh(head, store.Outcome(gate_id, 0, b"", "", None, None, 0)).public()
        await conn.execute("UPDATE link_sites SET last_seen = now(), reported = reported || $2 WHERE site_id = $1",
                           site.token_id, {"heads": heads, "pending": statement.get("pending", {}),
                                           "sent_at": statement.get("sent_at")})
    hub = request.app.get(HUB)
    if hub is not None:
        await hub.start()
    return json_response({"gates": gates, "downlink": hub.versions if hub else {}})


@api.route("POST", "/api/v1/link/batches", roles=SITE, body=SIGNED, content_types=(GZIP,), tag=TAG,
           summary="One gate's ledger rows after the acknowledged head (gzip JSON), with the signed head")
async def post_batch(request: web.Request) -> web.Response:
    body = await _body(request)
    statement, sig = await _verified(request, body)
    site = _site(request)
    gate_id = statement.get("gate_id")
    wire_rows = body.get("rows")
    if not isinstance(gate_id, str) or not isinstance(wire_rows, list) or len(wire_rows) > 5000:
        raise ApiError(422, "invalid_batch", "批次需要 gate_id 与 rows(≤5000) / a batch needs gate_id and rows (≤ 5000)")
    try:
        rows = [decode_row(r) for r in wire_rows]
    except BadRow as exc:
        raise ApiError(422, "invalid_row", f"行格式错误 / {exc}", field="rows") from None
    if any(r["gate_id"] != gate_id for r in rows):
        raise ApiError(422, "invalid_batch", "批次中含其他门岗的行 / a row of another gate", field="rows")
    last = (rows[-1]["gate_seq"], rows[-1]["hash"]) if rows else None
    claimed = _head(statement.get("last"), "statement.last") if rows or statement.get("last") else None
    if rows and claimed != last:
        raise ApiError(422, "head_mismatch", "签名的链头与批次最后一行不符 / the signed head is not the batch's last row",
                       field="statement")
    site_head = _head(statement["site_head"], "statement.site_head") if "site_head" in statement else None
    if site_head is not None and last is not None and site_head[0] < last[0]:
        raise ApiError(422, "head_mismatch", "站点链头早于批次最后一行 / site_head is older than the batch's last row",
                       field="statement")
    pool = request.app[keys.POOL]
    # The hash of every row is recomputed in accept_batch; 500 rows take a few ms, fine on the loop's
    # connection-bound path (the database round trips dominate).
    async with pool.acquire() as conn, conn.transaction():
        owner = await enrol.may_upload(conn, site, gate_id)
        outcome = await store.accept_batch(conn, site.token_id, gate_id, rows, wire_rows, site_head,
                                           _sent_at(statement), enterprise_id=owner)
        if claimed is not None:
            await store.record_signed_head(conn, site.token_id, gate_id, claimed[0], claimed[1], statement, sig)
        await conn.execute("UPDATE link_sites SET last_seen = now() WHERE site_id = $1", site.token_id)
    metrics = request.app.get(ACCEPTED)
    if metrics is not None:
        metrics.inc(outcome.accepted)
    if outcome.refused is not None:
        # Committed first: the rows before it are merged, it and the rest are kept apart. A definite answer, so the
        # site records it and sends no batch again; its later rows go to the quarantine with 200s.
        seq, rule = outcome.refused["seq"], outcome.refused["rule"]
        raise ApiError(422, "row_refused", f"平台数据库拒收第 {seq} 行(规则 {rule}),该行及其后各行已隔离待核 / "
                       f"the platform's database refused row seq {seq} ({rule}); it and later rows are kept apart",
                       field="rows", seq=seq, rule=rule, gate=outcome.public())
    return json_response(outcome.public())


@api.route("GET", "/api/v1/link/gates/{gate_id}/checkpoints", roles=SITE, tag=TAG,
           summary="Signed heads the platform holds for a gate (newest first): where a diverged site resumes")
async def get_checkpoints(request: web.Request) -> web.Response:
    gate_id = request.match_info["gate_id"]
    pool = request.app[keys.POOL]
    await enrol.may_upload(pool, _site(request), gate_id)
    cps = await store.checkpoints(pool, gate_id)
    return json_response({"gate_id": gate_id, "checkpoints": [[s, h.hex()] for s, h in cps]})


@api.route("PUT", "/api/v1/link/media/{ref:.+}", roles=SITE, content_types=("image/jpeg", "application/octet-stream"),
           tag=TAG, summary="A snapshot or plate crop of an uploaded passage, under its ledger reference")
async def put_media(request: web.Request) -> web.Response:
    ref = request.match_info["ref"]
    try:
        check_key(ref)
    except BadKey:
        raise ApiError(422, "invalid_ref", "引用无效 / bad media reference", field="ref") from None
    site = _site(request)
    pool = request.app[keys.POOL]
    owned = await pool.fetchval(
        "SELECT 1 FROM passages WHERE origin_site = $1 AND (snapshot_ref = $2 OR crop_ref = $2) LIMIT 1",
        site.token_id, ref)
    if not owned:
        raise ApiError(404, "not_found", "平台没有引用此图片的通行记录 / no uploaded passage of this site names this "
                       "media (upload the rows first)", field="ref")
    data = await request.read()
    stored = await request.app[keys.MEDIA_STORE].put(ref, data)
    await pool.execute(
        """INSERT INTO link_media (ref, site_id, bytes, sha256) VALUES ($1, $2, $3, $4)
           ON CONFLICT (ref) DO UPDATE SET bytes = EXCLUDED.bytes, sha256 = EXCLUDED.sha256""",
        ref, site.token_id, stored.bytes, stored.sha256)
    return json_response({"ref": ref, "bytes": stored.bytes, "sha256": stored.sha256})


@api.route("POST", "/api/v1/link/records", roles=SITE, body={"type": "object"}, content_types=(GZIP,), tag=TAG,
           summary="Side streams from a site: vehicles registered there, monthly transport volumes, video index")
async def post_records(request: web.Request) -> web.Response:
    body = await _body(request)
    async with request.app[keys.POOL].acquire() as conn, conn.transaction():
        counts = await records.accept(conn, _site(request), body)
    return json_response(counts)


@api.route("GET", "/api/v1/link/downlink", roles=SITE, tag=TAG,
           query={"since": {"type": "string", "maxLength": 2000}, "wait": {"type": "string", "pattern": "^[0-9]{1,3}$"}},
           summary="Long-poll: blacklist, alerts, plan files and vehicle changes newer than the site's versions")
async def get_downlink(request: web.Request) -> web.Response:
    hub = request.app[HUB]
    since = hub.parse_since(request.query.get("since", ""))
    wait = min(int(request.query.get("wait", "25")), 55)
    await hub.wait_newer(since, wait)
    return json_response(await hub.changes(since, _site(request).token_id))


HUB: web.AppKey[Any] = web.AppKey("link_hub", object)
ACCEPTED: web.AppKey[Any] = web.AppKey("link_rows_accepted", object)
