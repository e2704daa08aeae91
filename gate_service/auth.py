"""Bearer tokens, stored hashed, each bound to one role (and a gate or an enterprise where the role needs it)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.db.outage import DB_DOWN, is_db_down
from gate_service.errors import ApiError

ROLES = ("admin", "kiosk", "police", "ecology", "enterprise", "site")
_PREFIX = "cg_"


@dataclass(frozen=True)
class Principal:
    token_id: int
    role: str
    name: str
    gate_id: str | None = None
    enterprise_id: str | None = None

    @property
    def actor(self) -> str:
        return self.name or f"{self.role}#{self.token_id}"


def hash_token(token: str) -> bytes:
    # Tokens carry 256 random bits, so a plain SHA-256 is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).digest()


async def create_token(
    conn: asyncpg.Connection | asyncpg.Pool,
    role: str,
    *,
    gate_id: str | None = None,
    enterprise_id: str | None = None,
    name: str = "",
) -> tuple[int, str]:
    """Create a token; return (id, secret). The secret is shown once and never stored."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if (role == "kiosk") != (gate_id is not None):
        raise ValueError("a kiosk token needs --gate, and only a kiosk token takes one")
    if role == "site":
        pass  # a site (issue 14): bound to an enterprise, or to its gates (gate_service.link.enrol)
    elif (role == "enterprise") != (enterprise_id is not None):
        raise ValueError("an enterprise token needs --enterprise, and only an enterprise or site token takes one")
    if gate_id is not None and not await conn.fetchval("SELECT 1 FROM gates WHERE id = $1", gate_id):
        raise ValueError(f"no gate {gate_id!r}: register it first (PUT /api/v1/gates/{gate_id})")
    if enterprise_id is not None and not await conn.fetchval("SELECT 1 FROM enterprises WHERE id = $1", enterprise_id):
        raise ValueError(f"no enterprise {enterprise_id!r}: register it first")
    secret = _PREFIX + secrets.token_urlsafe(32)
    token_id = await conn.fetchval(
        """INSERT INTO api_tokens (token_hash, prefix, role, gate_id, enterprise_id, name)
           VALUES ($1, $2, $3, $4, $5, $6) RETURNING id""",
        hash_token(secret),
        secret[:8],
        role,
        gate_id,
        enterprise_id,
        name,
    )
    return token_id, secret


async def revoke_token(conn: asyncpg.Connection | asyncpg.Pool, token_id: int) -> bool:
    status = await conn.execute(
        "UPDATE api_tokens SET revoked_at = now() WHERE id = $1 AND revoked_at IS NULL", token_id
    )
    return status.endswith(" 1")


async def list_tokens(conn: asyncpg.Connection | asyncpg.Pool) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT id, prefix, role, gate_id, enterprise_id, name, created_at, revoked_at FROM api_tokens ORDER BY id"
    )
    return [dict(r) for r in rows]


class TokenCache:
    """Tokens seen valid, by hash: used only while the database is unreachable, so gates keep working through
    an outage.

    A revocation reaches it within moments, not at the token's next use: ``gate_service.revocation`` listens
    for the database's notification of each revocation and re-checks every remembered token every few seconds
    (in case a notification was lost), so what an outage falls back on is at most that old. A token known to
    be revoked is refused during an outage too (401, not "database unavailable").
    """

    def __init__(self) -> None:
        self.valid: dict[bytes, Principal] = {}
        self.revoked: set[bytes] = set()

    def remember(self, digest: bytes, principal: Principal) -> None:
        self.valid[digest] = principal
        self.revoked.discard(digest)

    def known_valid(self, digest: bytes) -> bool:
        return digest in self.valid

    def forget(self, digest: bytes) -> None:
        if self.valid.pop(digest, None) is not None:
            self.revoked.add(digest)

    def revoke(self, token_ids: set[int]) -> int:
        """Forget the tokens with these ids; how many were remembered."""
        gone = [d for d, p in self.valid.items() if p.token_id in token_ids]
        for digest in gone:
            self.forget(digest)
        return len(gone)


# The cache of apps built without one (scripts, old callers); create_app gives each app its own.
DEFAULT_CACHE = TokenCache()


async def resolve(pool: asyncpg.Pool, token: str, cache: TokenCache | None = None) -> Principal | None:
    # Looked up on every request so that a revocation takes effect at once.
    cache = cache if cache is not None else DEFAULT_CACHE
    digest = hash_token(token)
    try:
        row = await pool.fetchrow(
            """SELECT id, role, name, gate_id, enterprise_id FROM api_tokens
               WHERE token_hash = $1 AND revoked_at IS NULL""",
            digest,
        )
    except DB_DOWN as exc:
        if is_db_down(exc) and digest in cache.valid:
            return cache.valid[digest]
        if is_db_down(exc) and digest in cache.revoked:
            return None
        raise
    if row is None:
        cache.forget(digest)
        return None
    principal = Principal(row["id"], row["role"], row["name"], row["gate_id"], row["enterprise_id"])
    cache.remember(digest, principal)
    return principal


# Canonical paths of the WebSocket routes, the only ones where a token may come in the URL (?access_token=):
# browsers cannot set headers on a WebSocket. The modules that declare such routes add them here.
WEBSOCKET_ROUTES: set[str] = set()

# Browsers can offer WebSocket subprotocols, though, and the console passes its token that way
# (``new WebSocket(url, [WS_PROTOCOL, "bearer." + token])``): a URL reaches access and error logs, browser
# histories and Referer headers; a handshake header does not. The server answers with WS_PROTOCOL only.
WS_PROTOCOL = "cleangate.v1"
WS_BEARER = "bearer."


def _websocket_upgrade(request: web.Request) -> bool:
    """A WebSocket upgrade of a declared WebSocket route: where a token may come other than in the header."""
    resource = request.match_info.route.resource
    return (request.headers.get("Upgrade", "").lower() == "websocket" and resource is not None
            and resource.canonical in WEBSOCKET_ROUTES)


def _protocol_token(request: web.Request) -> str | None:
    offered = request.headers.get("Sec-WebSocket-Protocol", "")
    if WS_BEARER not in offered or not _websocket_upgrade(request):
        return None
    for item in offered.split(","):
        item = item.strip()
        if item.startswith(WS_BEARER):
            return item[len(WS_BEARER):]
    return None


def _url_token(request: web.Request) -> str | None:
    if "access_token" not in request.query:
        return None
    if not _websocket_upgrade(request):
        # Refused rather than ignored: a URL with a token ends up in logs, histories and Referer headers.
        raise ApiError(401, "token_in_query",
                       "令牌只能放在 Authorization 头中(仅 WebSocket 连接可用 access_token 参数)/ send the token "
                       "in the Authorization header; ?access_token= works for WebSocket upgrades only",
                       field="access_token")
    return request.query["access_token"]


@web.middleware
async def auth_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    header = request.headers.get("Authorization", "")
    if not header:
        url_token = _url_token(request) or _protocol_token(request)
        if url_token is not None:
            header = "Bearer " + url_token
    if header:
        failures = request.app.get(keys.AUTH_FAILURES)
        cache = request.app.get(keys.TOKEN_CACHE)
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if failures is not None and not (token and (cache or DEFAULT_CACHE).known_valid(hash_token(token))):
            failures.check(request.remote)
        if scheme.lower() != "bearer" or not token:
            if failures is not None:
                failures.failed(request.remote)
            raise ApiError(401, "invalid_token", "令牌格式应为 Bearer <token> / expected 'Bearer <token>'")
        principal = await resolve(request.app[keys.POOL], token, cache)
        if principal is None:
            if failures is not None:
                failures.failed(request.remote)
            raise ApiError(401, "invalid_token", "令牌无效或已吊销 / token unknown or revoked")
        request[keys.PRINCIPAL] = principal
    return await handler(request)


def require_gate(request: web.Request, gate_id: str) -> Principal:
    """Kiosks act only for their own gate; admins for any."""
    principal: Principal = request[keys.PRINCIPAL]
    if principal.role == "kiosk" and principal.gate_id != gate_id:
        raise ApiError(403, "forbidden_gate", f"该终端只能用于门岗 {principal.gate_id} / this kiosk is bound to another gate")
    return principal


def enterprise_scope(request: web.Request, enterprise_id: str | None) -> str | None:
    """The enterprise whose data may be read: an enterprise token sees only its own."""
    principal: Principal = request[keys.PRINCIPAL]
    if principal.role != "enterprise":
        return enterprise_id
    if enterprise_id is not None and enterprise_id != principal.enterprise_id:
        raise ApiError(403, "forbidden_enterprise", "企业只能查看本企业数据 / an enterprise sees only its own data")
    return principal.enterprise_id


async def audit(
    conn: asyncpg.Connection | asyncpg.Pool,
    request: web.Request,
    action: str,
    target: str,
    detail: dict[str, Any] | None = None,
) -> None:
    principal: Principal = request[keys.PRINCIPAL]
    await conn.execute(
        """INSERT INTO audit_log (token_id, actor, role, action, target, detail, remote)
           VALUES ($1, $2, $3, $4, $5, $6, $7)""",
        principal.token_id,
        principal.actor,
        principal.role,
        action,
        target,
        detail or {},
        request.remote,
    )
