"""The Blacklist: writes through the event store, and an in-memory copy of the open entries for the gates.

Every replica keeps its own copy. It is loaded at start, re-read plate by plate when PostgreSQL notifies a
change (the notification comes from a trigger on the event table, at commit), and reloaded in full every
``refresh_interval`` seconds in case a notification was lost (listener reconnecting, network partition).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import date, datetime, time, timedelta
from typing import Any

import asyncpg
from aiohttp import web

from blacklist import store
from blacklist.importer import ALIASES, check_valid_until, listing_from_row
from blacklist.model import SHANGHAI, BlacklistError, Entry, Principal, local_day, today
from blacklist.store import Listing, Origin
from pglisten import Listener
from plate_reader import plates
from sheets import SheetError, read_table_async

log = logging.getLogger(__name__)

CHANNEL = "blacklist_changed"
# Above this many plates in one batch of notifications (a big import), one full reload is cheaper.
_BATCH_LIMIT = 200
_FULL = None  # queue marker: reload everything


class Blacklist:
    """The traffic-police blacklist as the service uses it; handed a pool, knows nothing of gate_service."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        principal_of: Callable[[web.Request], Any],
        body_of: Callable[[web.Request], dict[str, Any]],
        refresh_interval: float = 60.0,
        sync_timeout: float = 5.0,
    ) -> None:
        self.pool = pool
        self.principal_of = principal_of
        self.body_of = body_of
        self.refresh_interval = refresh_interval
        self.sync_timeout = sync_timeout
        self._active: dict[str, Entry] = {}
        self._queue: asyncio.Queue[tuple[str | None, asyncio.Future[None] | None]] = asyncio.Queue()
        # A pool connection held for LISTEN; after each check or reconnect, a full reload is the safety net.
        self.listener = Listener(CHANNEL, self._on_notify, acquire=pool.acquire, release=pool.release,
                                 on_tick=self._reload_later, interval=refresh_interval, name="blacklist")
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self.last_refresh: datetime | None = None

    # ---- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        # LISTEN before the first load: a change committed in between is then both loaded and notified,
        # never neither.
        self._stopping = False
        await self.listener.start()
        await self._reload_all()
        self._tasks = [asyncio.create_task(self._worker(), name="blacklist-cache")]
        log.info("blacklist: %d open entries loaded, listening on %s", len(self._active), CHANNEL)

    async def stop(self) -> None:
        self._stopping = True
        await self.listener.stop()
        tasks, self._tasks = self._tasks, []
        # A cancellation can be swallowed inside a library's wait_for (Python 3.11) while the supervisor is
        # reconnecting; the flag ends its loop anyway, and cancelling again covers the rest.
        for _ in range(5):
            pending = [t for t in tasks if not t.done()]
            if not pending:
                break
            for task in pending:
                task.cancel()
            await asyncio.wait(pending, timeout=1.0)

    @property
    def reconnects(self) -> int:
        return self.listener.reconnects

    def status(self) -> dict[str, Any]:
        """For health checks and metrics."""
        return {
            "entries": len(self._active),
            "listening": self.listener.listening,
            "last_refresh": self.last_refresh,
            "reconnects": self.reconnects,
        }

    # ---- the gates' read path --------------------------------------------------------------------

    def lookup(self, plate: str, at: datetime) -> Entry | None:
        """The entry refusing this plate at this moment, or None. No I/O: safe to call for every frame.

        ``plate`` should be normalised (as plate_reader emits it); ``at`` is aware, or naive local time.
        The date check is made here too, so an entry stops applying after its last day even if the
        daily expiry job has not run.
        """
        entry = self._active.get(plate)
        if entry is None:
            try:
                entry = self._active.get(plates.normalize(plate))
            except TypeError:
                return None
        if entry is None or not entry.in_force_on(local_day(at)):
            return None
        return entry

    async def lookup_as_of(self, plate: str, at: datetime, conn: store.Conn | None = None) -> Entry | None:
        """The entry refusing this plate at a past moment, from the database: as the list was then (an entry
        made later, or its later extension, does not count; one revoked since still does). For passages
        dated in the past; ``lookup`` (no I/O) answers for now. A caller that holds a connection passes it:
        taking a second one from the pool meanwhile deadlocks once every connection is held that way."""
        row = await store.entry_as_of(conn if conn is not None else self.pool, plate, at)
        if row is None:
            return None
        entry = Entry.from_row(row)
        return entry if entry.in_force_on(local_day(at)) else None

    def active_entries(self, at: datetime) -> list[Entry]:
        day = local_day(at)
        return [e for e in self._active.values() if e.in_force_on(day)]

    # ---- writes ----------------------------------------------------------------------------------

    async def add(self, listing: Listing, who: Principal) -> tuple[dict[str, Any], str]:
        """List a plate; returns (entry, "added" | "merged"). Merging: see store.add_or_merge."""
        day = today()
        check_valid_until(listing.valid_until, day)
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_writers(conn)
            row, result = await store.add_or_merge(conn, listing, who, Origin("api"), day)
        await self._sync([listing.plate])
        return dict(row), result

    async def revoke(self, plate: str, why: str, who: Principal) -> dict[str, Any]:
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_writers(conn)
            row = await store.revoke(conn, plate, why, who, today())
        if row is None:
            raise BlacklistError(
                404, "not_listed", f"该车牌不在有效黑名单中: {plate} / {plate} has no active blacklist entry", "plate"
            )
        await self._sync([plate])
        return dict(row)

    async def import_table(self, data: bytes, who: Principal) -> dict[str, Any]:
        """Import a CSV/XLSX list: per-row results; valid rows kept; the same plate twice is merged."""
        try:
            _, rows = await read_table_async(data, aliases=ALIASES, required=("plate",))
        except SheetError as exc:
            raise BlacklistError(exc.status, exc.code, exc.message) from None
        day = today()
        results: list[dict[str, Any]] = []
        valid: list[tuple[int, Listing]] = []

        def judge() -> None:  # in the thread too: 100k rows are seconds of Python
            for row in rows:
                try:
                    valid.append((row.line, listing_from_row(row.values, day)))
                except BlacklistError as exc:
                    results.append({"line": row.line, "plate": row.values.get("plate"), "result": "rejected",
                                    "code": exc.code, "message": exc.message, "field": exc.field})

        await asyncio.to_thread(judge)
        batch = uuid.uuid4().hex[:16]
        first_line: dict[str, int] = {}
        if valid:
            async with self.pool.acquire() as conn, conn.transaction():
                await store.lock_writers(conn)
                for line, listing in valid:
                    entry, result = await store.add_or_merge(conn, listing, who, Origin("import", batch, line), day)
                    item: dict[str, Any] = {"line": line, "plate": listing.plate, "result": result,
                                            "entry_id": entry["id"], "valid_until": entry["valid_until"]}
                    if listing.plate in first_line:
                        item["merged_with_line"] = first_line[listing.plate]
                        item["message"] = (f"与第 {first_line[listing.plate]} 行为同一车牌,已合并,有效期取较晚者 / "
                                           f"same plate as line {first_line[listing.plate]}: merged, later valid_until wins")
                    elif result == "merged":
                        item["message"] = "该车牌已在黑名单中,已合并,有效期取较晚者 / already listed: merged, later valid_until wins"
                    first_line.setdefault(listing.plate, line)
                    results.append(item)
            await self._sync(list(first_line))
        results.sort(key=lambda r: r["line"])
        rejected = [r for r in results if r["result"] == "rejected"]
        return {
            "batch": batch if valid else None,
            "added": sum(r["result"] == "added" for r in results),
            "merged": sum(r["result"] == "merged" for r in results),
            "rejected": len(rejected),
            "rows": results,
            "rejected_rows": rejected,
        }

    async def expire_due(self, today: date) -> int:
        """Record an expire event for every open entry whose last day is before ``today``; idempotent."""
        async with self.pool.acquire() as conn, conn.transaction():
            await store.lock_writers(conn)
            expired = await store.expire_due(conn, today)
        if expired:
            log.info("blacklist: %d entries expired before %s", len(expired), today)
            await self._sync(expired)
        return len(expired)

    # ---- reads from the database ----------------------------------------------------------------

    async def list_entries(
        self, *, plate: str | None = None, reason: str | None = None, status: str | None = None,
        added_from: date | None = None, added_to: date | None = None,
    ) -> list[dict[str, Any]]:
        """Entries with their status; ``added_from``/``added_to`` are local days, both inclusive."""
        return await store.list_entries(
            self.pool, today(), plate=plate, reason=reason, status=status,
            added_from=datetime.combine(added_from, time(), SHANGHAI) if added_from else None,
            added_before=datetime.combine(added_to + timedelta(days=1), time(), SHANGHAI) if added_to else None,
        )

    def iter_entries(
        self, *, plate: str | None = None, reason: str | None = None, status: str | None = None,
        added_from: date | None = None, added_to: date | None = None,
    ) -> AsyncIterator[list[Any]]:
        """:meth:`list_entries` as cursor chunks, for exports."""
        return store.iter_entries(
            self.pool, today(), plate=plate, reason=reason, status=status,
            added_from=datetime.combine(added_from, time(), SHANGHAI) if added_from else None,
            added_before=datetime.combine(added_to + timedelta(days=1), time(), SHANGHAI) if added_to else None,
        )

    async def history(self, plate: str) -> list[dict[str, Any]]:
        return await store.history(self.pool, plate)

    # ---- keeping the copy current ----------------------------------------------------------------

    async def _sync(self, changed: list[str]) -> None:
        """After a local write: wait until this replica's copy shows it, so the next passage is judged on it.

        Goes through the same queue as notifications, so an older read can never overwrite a newer one.
        """
        if not self._tasks:
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        for plate in changed[:-1]:
            self._queue.put_nowait((plate, None))
        self._queue.put_nowait((changed[-1] if changed else _FULL, future))
        try:
            await asyncio.wait_for(asyncio.shield(future), self.sync_timeout)
        except Exception as exc:  # noqa: BLE001 - the write is committed; the refresh will catch up
            log.warning("blacklist: cache not confirmed after write (%s); the periodic refresh will catch up", exc)

    async def _reload_all(self) -> None:
        rows = await store.open_entries(self.pool)
        self._active = {r["plate"]: Entry.from_row(r) for r in rows}
        self.last_refresh = datetime.now(SHANGHAI)

    async def _reload(self, changed: list[str]) -> None:
        rows = await store.open_entries(self.pool, changed)
        found = {r["plate"]: Entry.from_row(r) for r in rows}
        for plate in changed:
            if plate in found:
                self._active[plate] = found[plate]
            else:
                self._active.pop(plate, None)

    async def _worker(self) -> None:
        # One consumer: reads are applied in the order they were asked for, after the commits that caused them.
        while not self._stopping:
            batch = [await self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            changed = sorted({p for p, _ in batch if p is not _FULL})
            futures = [f for _, f in batch if f is not None]
            try:
                if any(p is _FULL for p, _ in batch) or len(changed) > _BATCH_LIMIT:
                    await self._reload_all()
                else:
                    await self._reload(changed)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep serving the last good copy
                log.warning("blacklist: refresh failed (%s); retrying", exc)
                for f in futures:
                    if not f.done():
                        f.set_exception(exc)
                await asyncio.sleep(1.0)
                self._queue.put_nowait((_FULL, None))
                continue
            for f in futures:
                if not f.done():
                    f.set_result(None)

    def _on_notify(self, payload: str) -> None:
        self._queue.put_nowait((payload or _FULL, None))

    async def _reload_later(self) -> None:
        self._queue.put_nowait((_FULL, None))


APP_KEY = web.AppKey("blacklist", Blacklist)
