"""A token revocation reaches everything that holds the token: the outage cache and open WebSockets.

A request looks its token up every time, but two things outlive a single lookup: the last-known cache
(``auth.TokenCache``, what an outage falls back on) and a WebSocket authenticated once at its upgrade. So
each replica LISTENs on ``token_revoked`` (a trigger on ``api_tokens`` notifies at commit, whoever revokes:
this replica, another one, ``gate-service token revoke``) and then forgets the token and closes its sockets
with close code 4401 ``token_revoked``. In case a notification is lost (listener reconnecting, network
partition) every remembered token and every open socket's token is re-checked every ``recheck_interval``
seconds: that bounds how stale the outage cache can be when an outage begins. The listener is the
blacklist's (``pglisten.Listener``): checked, reconnected with backoff; but on a connection of its own, outside
the pool, so that it never takes one of the gates' connections (a pool of 2 would be left with none).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from gate_service import keys
from gate_service.auth import Principal, TokenCache
from pglisten import Listener

log = logging.getLogger(__name__)

CHANNEL = "token_revoked"
CLOSE_REVOKED = 4401  # 4000-4999: the application's own close codes; 4401 reads as "401 on a socket"
CLOSE_MESSAGE = "token_revoked 令牌已吊销 / token revoked".encode()


class TokenWatch:
    def __init__(self, pool: asyncpg.Pool, cache: TokenCache, *, dsn: str | None = None,
                 recheck_interval: float = 10.0) -> None:
        self.pool = pool
        self.dsn = dsn  # the listener's own connection; without one, it borrows from the pool
        self.cache = cache
        self.recheck_interval = recheck_interval
        self.sockets: dict[int, set[web.WebSocketResponse]] = {}
        self.listener = Listener(CHANNEL, self._on_notify, acquire=self._connect, release=self._release,
                                 on_tick=self.recheck, interval=recheck_interval, name="token revocations")
        self._pending: set[asyncio.Task[None]] = set()
        self._closing: dict[web.WebSocketResponse, asyncio.Future[None]] = {}
        self.closed_sockets = 0

    # ---- open sockets -------------------------------------------------------------------------------

    def add(self, principal: Principal, ws: web.WebSocketResponse) -> None:
        """Close ``ws`` as soon as ``principal``'s token is revoked (until ``discard``)."""
        self.sockets.setdefault(principal.token_id, set()).add(ws)

    async def discard(self, principal: Principal, ws: web.WebSocketResponse) -> None:
        """The handler is done with ``ws``. If we are closing it, wait for that: a handler that returned first
        would end the connection before the close frame went out (the kiosk would see 1006, not 4401)."""
        open_ = self.sockets.get(principal.token_id)
        if open_ is not None:
            open_.discard(ws)
            if not open_:
                self.sockets.pop(principal.token_id, None)
        closing = self._closing.get(ws)
        if closing is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(closing), 6)

    async def revoked(self, token_ids: set[int]) -> None:
        self.cache.revoke(token_ids)
        closing = []
        for token_id in token_ids:
            for ws in list(self.sockets.pop(token_id, ())):
                task = asyncio.ensure_future(self._close(ws))
                self._closing[ws] = task
                task.add_done_callback(lambda _t, ws=ws: self._closing.pop(ws, None))
                closing.append(task)
        if closing:
            await asyncio.gather(*closing, return_exceptions=True)

    async def _close(self, ws: web.WebSocketResponse) -> None:
        with contextlib.suppress(Exception):
            if not ws.closed:
                await ws.send_json({"type": "error", "error": {
                    "code": "token_revoked", "message": "令牌已吊销,连接已关闭 / the token was revoked"}})
                await asyncio.wait_for(ws.close(code=CLOSE_REVOKED, message=CLOSE_MESSAGE), 5)
                self.closed_sockets += 1

    async def recheck(self) -> None:
        """Every remembered or connected token still valid? Those that are not are treated as just revoked."""
        ids = {p.token_id for p in self.cache.valid.values()} | set(self.sockets)
        if not ids:
            return
        rows = await self.pool.fetch("SELECT id FROM api_tokens WHERE id = ANY($1::bigint[]) AND revoked_at IS NULL",
                                     list(ids))
        gone = ids - {r["id"] for r in rows}
        if gone:
            log.info("tokens %s found revoked by the periodic check", sorted(gone))
            await self.revoked(gone)

    # ---- lifecycle ----------------------------------------------------------------------------------

    @property
    def reconnects(self) -> int:
        return self.listener.reconnects

    async def start(self) -> None:
        await self.listener.start()

    async def stop(self) -> None:
        await self.listener.stop()
        pending = [t for t in self._pending if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=1.0)

    def _on_notify(self, payload: str) -> None:
        try:
            token_id = int(payload)
        except ValueError:
            return
        task = asyncio.ensure_future(self.revoked({token_id}))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _connect(self) -> Any:
        return await (asyncpg.connect(self.dsn, timeout=10) if self.dsn else self.pool.acquire())

    async def _release(self, conn: Any) -> None:
        if self.dsn:
            if not conn.is_closed():
                await conn.close(timeout=5)
        else:
            await self.pool.release(conn)


async def revocation_context(app: web.Application) -> AsyncIterator[None]:
    db = app.get(keys.DB)
    watch = TokenWatch(app[keys.POOL], app[keys.TOKEN_CACHE], dsn=getattr(db, "dsn", None))
    app[keys.TOKEN_WATCH] = watch
    await watch.start()
    yield
    await watch.stop()
