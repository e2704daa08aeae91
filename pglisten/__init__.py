"""LISTEN on a PostgreSQL channel over a connection that is kept alive (a leaf: it imports only asyncpg).

A LISTEN connection fails quietly: a dead TCP connection raises nothing until something is sent on it, and
a notification sent while nobody listened is gone. So the connection is checked every ``interval`` seconds
(``SELECT 1``), reconnected with exponential backoff when it is lost, and after every check or reconnect the
owner's ``on_tick`` runs — the safety net that catches whatever was missed (the blacklist reloads, the token
watch re-checks its tokens).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Acquire = Callable[[], Awaitable[Any]]
Release = Callable[[Any], Awaitable[None]]


class Listener:
    def __init__(self, channel: str, on_payload: Callable[[str], None], *, acquire: Acquire, release: Release,
                 on_tick: Callable[[], Awaitable[None]], interval: float, name: str) -> None:
        self.channel = channel
        self.on_payload = on_payload
        self.acquire = acquire
        self.release = release
        self.on_tick = on_tick
        self.interval = interval
        self.name = name
        self.connection: Any = None
        self.reconnects = 0
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def listening(self) -> bool:
        return self.connection is not None and not self.connection.is_closed()

    async def start(self) -> None:
        """LISTEN now (raising if the database cannot be reached), then keep it up in a task."""
        self._stopping = False
        await self._listen()
        self._task = asyncio.create_task(self._supervise(), name=f"{self.name}-listener")

    async def stop(self) -> None:
        self._stopping = True
        self._lost.set()
        task, self._task = self._task, None
        # A cancellation can be swallowed inside a library's wait_for (Python 3.11) while reconnecting; the
        # flag ends the loop anyway, and cancelling again covers the rest.
        for _ in range(5):
            if task is None or task.done():
                break
            task.cancel()
            await asyncio.wait([task], timeout=1.0)
        await self._drop()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self.on_payload(payload)

    def _on_lost(self, _conn: Any) -> None:
        self._lost.set()

    async def _listen(self) -> None:
        conn = await self.acquire()
        try:
            await conn.add_listener(self.channel, self._notified)
            conn.add_termination_listener(self._on_lost)
        except BaseException:
            await self.release(conn)
            raise
        self.connection = conn
        self._lost.clear()

    async def _drop(self) -> None:
        conn, self.connection = self.connection, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            conn.remove_termination_listener(self._on_lost)
            if not conn.is_closed():
                await asyncio.wait_for(conn.remove_listener(self.channel, self._notified), 5)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.release(conn), 5)

    async def _alive(self) -> bool:
        if not self.listening:
            return False
        try:
            await asyncio.wait_for(self.connection.fetchval("SELECT 1"), 5)
        except Exception:  # noqa: BLE001
            return False
        return True

    async def _supervise(self) -> None:
        delay = 0.2
        while not self._stopping:
            try:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._lost.wait(), self.interval)
                if self._stopping:
                    return
                if self._lost.is_set() or not await self._alive():
                    log.warning("%s: listener connection lost; reconnecting", self.name)
                    await self._drop()
                    await self._listen()
                    self.reconnects += 1
                    delay = 0.2
                await self.on_tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the database may be down for a while; keep trying
                if self._stopping:
                    return
                log.warning("%s: listener or check failed (%s); next try in %.1fs", self.name, exc, delay)
                self._lost.set()
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)
