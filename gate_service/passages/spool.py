"""The local durable spool: passages decided while PostgreSQL is unreachable wait here, in order.

One file per gate, one line per passage: ``<crc32> <json>``, appended and fsync'd before the kiosk is
answered, so a passage acknowledged to a kiosk survives a crash of the service too. When the database is
back, ``drain`` appends the spooled rows to the ledger in their original order (the hash chain is computed
then, so it stays intact) and skips any row already there (a write whose commit succeeded just before the
connection died), so every passage ends up in the ledger exactly once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import zlib
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

log = logging.getLogger(__name__)

_DATETIMES = ("at", "recorded_at")
_UUIDS = ("id", "overrides")


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (UUID, Decimal)):
        return str(value)
    raise TypeError(f"cannot spool {type(value).__name__}")


def encode_line(record: dict[str, Any]) -> bytes:
    body = json.dumps(record, ensure_ascii=False, default=_encode, separators=(",", ":")).encode("utf-8")
    return b"%08x " % zlib.crc32(body) + body + b"\n"


def decode_line(line: bytes) -> dict[str, Any] | None:
    """The record, or None when the line is torn or damaged (never acknowledged, or disk trouble)."""
    if len(line) < 10 or line[8:9] != b" " or not line.endswith(b"\n"):
        return None
    body = line[9:-1]
    try:
        if int(line[:8], 16) != zlib.crc32(body):
            return None
        record = json.loads(body)
    except ValueError:
        return None
    row = record["row"]
    for name in _DATETIMES:
        if row.get(name):
            row[name] = datetime.fromisoformat(row[name])
    for name in _UUIDS:
        if row.get(name):
            row[name] = UUID(row[name])
    if row.get("tonnes") is not None:
        row["tonnes"] = Decimal(row["tonnes"])
    return record


class Spool:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._locks: dict[str, asyncio.Lock] = {}
        # client_ref → first answer, for kiosk retries while their passage waits here.
        self._answers: dict[tuple[str, str], dict[str, Any]] = {}
        # client_ref → the hash of the body it came with, so a different body under it is refused meanwhile.
        self._hashes: dict[tuple[str, str], str | None] = {}
        self._pending: set[str] = set()
        for path in self.folder.glob("*.spool"):
            self._pending.add(self._gate_of(path))
            for record in self._read(path):
                if record["row"].get("client_ref"):
                    key = (record["row"]["gate_id"], record["row"]["client_ref"])
                    self._answers[key] = record["response"]
                    self._hashes[key] = record["row"].get("body_hash")

    @staticmethod
    def _gate_of(path: Path) -> str:
        return bytes.fromhex(path.stem).decode("utf-8")

    def _path(self, gate_id: str) -> Path:
        # Hex keeps any gate id a safe file name.
        return self.folder / (gate_id.encode("utf-8").hex() + ".spool")

    def has_pending(self, gate_id: str | None = None) -> bool:
        return bool(self._pending) if gate_id is None else gate_id in self._pending

    def answer_for(self, gate_id: str, client_ref: str) -> dict[str, Any] | None:
        return self._answers.get((gate_id, client_ref))

    def hash_for(self, gate_id: str, client_ref: str) -> str | None:
        return self._hashes.get((gate_id, client_ref))

    def _lock(self, gate_id: str) -> asyncio.Lock:
        return self._locks.setdefault(gate_id, asyncio.Lock())

    async def append(self, row: dict[str, Any], response: dict[str, Any],
                     rejudge: dict[str, Any] | None = None) -> None:
        """``rejudge``: the passage's input, when its decision is to be made again at replay (see Judge)."""
        gate_id = row["gate_id"]
        record = {"row": row, "response": response}
        if rejudge is not None:
            record["rejudge"] = rejudge
        line = encode_line(record)
        async with self._lock(gate_id):
            await asyncio.to_thread(self._write, self._path(gate_id), line)
            self._pending.add(gate_id)
            if row.get("client_ref"):
                self._answers[(gate_id, row["client_ref"])] = response
                self._hashes[(gate_id, row["client_ref"])] = row.get("body_hash")

    @staticmethod
    def _write(path: Path, line: bytes) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _read(self, path: Path) -> list[dict[str, Any]]:
        records = []
        with open(path, "rb") as fh:
            for number, line in enumerate(fh, 1):
                record = decode_line(line)
                if record is None:
                    log.error("spool %s line %d is damaged or torn; kept aside, not replayed", path.name, number)
                    with open(path.with_suffix(".damaged"), "ab") as bad:
                        bad.write(line)
                    continue
                records.append(record)
        return records

    async def drain(self, write: Any) -> int:
        """Replay every gate's spool through ``write(row, response, rejudge) -> bool`` (False: already in the
        ledger; ``rejudge`` is what ``append`` was given, or None).

        A file is removed only after all its rows are written; if the database fails again half way, the
        next drain starts the file over and the rows already written are skipped by ``write``.
        """
        replayed = 0
        for gate_id in sorted(self._pending):
            async with self._lock(gate_id):
                path = self._path(gate_id)
                if not path.exists():
                    self._pending.discard(gate_id)
                    continue
                for record in await asyncio.to_thread(self._read, path):
                    if await write(record["row"], record["response"], record.get("rejudge")):
                        replayed += 1
                await asyncio.to_thread(path.unlink)
                self._pending.discard(gate_id)
                for key in [k for k in self._answers if k[0] == gate_id]:
                    del self._answers[key]
                    self._hashes.pop(key, None)
        return replayed
