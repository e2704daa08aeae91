"""Where media (video segments, snapshots, plate crops) lives: a small blob interface.

The service talks to a ``BlobStore`` only, by key (``video/g1/2025/01/31/…mp4``), so the local disk can be
replaced by an S3-compatible object store without touching the recorder, the endpoints or retention.
All methods are async and do their file I/O in a worker thread: the event loop never waits on a disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol, runtime_checkable

_KEY = re.compile(r"^[A-Za-z0-9_.~-]+(/[A-Za-z0-9_.~-]+)*$")
_CHUNK = 1 << 20


class BadKey(ValueError):
    pass


@dataclass(frozen=True)
class StoredBlob:
    key: str
    bytes: int
    sha256: str


@runtime_checkable
class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> StoredBlob:
        """Store ``data`` under ``key`` (replacing what was there), atomically."""

    async def put_file(self, key: str, path: Path, *, move: bool = True) -> StoredBlob:
        """Store a local file under ``key``; with ``move`` the local file is consumed."""

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        """Read ``length`` bytes from ``start`` (all of the rest when None). FileNotFoundError if absent."""

    async def local_path(self, key: str) -> Path:
        """A local file with the blob's content, for readers that need one (OpenCV, sendfile).

        A remote store returns a cached download; the local store returns the file itself.
        """

    async def delete(self, key: str) -> bool:
        """Remove the blob; False when it was not there (deleting twice is harmless)."""

    async def size(self, key: str) -> int | None:
        """Size in bytes, None when absent."""

    async def exists(self, key: str) -> bool: ...


def check_key(key: str) -> str:
    # Keys become paths (and object names): no absolute paths, no '..', nothing a shell or URL would mangle.
    if not _KEY.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise BadKey(f"bad storage key {key!r}")
    return key


def key_part(text: str) -> str:
    """A gate id or similar as one safe key component (other characters become ~hex, reversibly)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "_-") else "".join(
        f"~{b:02x}" for b in c.encode()) for c in text) or "~"


def media_key(kind: str, gate_id: str, at: datetime, name: str) -> str:
    """``kind/gate/YYYY/MM/DD/<name>-<32 hex>.<ext>`` by the UTC day: one folder per gate per day keeps listings
    small; 128 random bits in every key mean no key can be derived from an id, a time or a plate (a key that
    leaks through some path still names nothing else). Each call makes a new key: callers store it."""
    day = at.astimezone(timezone.utc) if at.tzinfo else at
    stem, dot, ext = name.rpartition(".")
    name = f"{stem}-{secrets.token_hex(16)}.{ext}" if dot and stem else f"{name}-{secrets.token_hex(16)}"
    return check_key(f"{key_part(kind)}/{key_part(gate_id)}/{day:%Y/%m/%d}/{name}")


def sha256_file(path: Path) -> tuple[int, str]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


class LocalStore:
    """Blobs as files under ``root`` (``data_dir/media``), the key being the relative path."""

    def __init__(self, root: Path, *, fsync: bool = False) -> None:
        self.root = Path(root)
        # fsync costs milliseconds per file; worth it only where the disk cache may be lost on power cuts.
        self.fsync = fsync

    def __repr__(self) -> str:
        return f"LocalStore({str(self.root)!r})"

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes) -> StoredBlob:
        return await asyncio.to_thread(self._put_bytes, self.path(key), key, bytes(data))

    async def put_file(self, key: str, path: Path, *, move: bool = True) -> StoredBlob:
        return await asyncio.to_thread(self._put_file, self.path(key), key, Path(path), move)

    async def read(self, key: str, start: int = 0, length: int | None = None) -> bytes:
        return await asyncio.to_thread(self._read, self.path(key), start, length)

    async def local_path(self, key: str) -> Path:
        target = self.path(key)
        if not await asyncio.to_thread(target.is_file):
            raise FileNotFoundError(key)
        return target

    async def delete(self, key: str) -> bool:
        return await asyncio.to_thread(self._delete, self.path(key))

    async def size(self, key: str) -> int | None:
        target = self.path(key)

        def stat() -> int | None:
            try:
                return target.stat().st_size
            except FileNotFoundError:
                return None

        return await asyncio.to_thread(stat)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path(key).is_file)

    # ---- in the worker thread ---------------------------------------------------------------------

    def _put_bytes(self, target: Path, key: str, data: bytes) -> StoredBlob:
        target.parent.mkdir(parents=True, exist_ok=True)
        # Write beside the target and rename: a reader never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return StoredBlob(key, len(data), hashlib.sha256(data).hexdigest())

    def _put_file(self, target: Path, key: str, source: Path, move: bool) -> StoredBlob:
        target.parent.mkdir(parents=True, exist_ok=True)
        size, digest = sha256_file(source)
        if move:
            try:
                os.replace(source, target)
            except OSError:  # another file system: copy, then drop the source
                self._copy(source, target)
                source.unlink(missing_ok=True)
        else:
            self._copy(source, target)
        return StoredBlob(key, size, digest)

    def _copy(self, source: Path, target: Path) -> None:
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        os.close(fd)
        try:
            shutil.copyfile(source, tmp)
            if self.fsync:
                with open(tmp, "rb+") as fh:
                    os.fsync(fh.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _read(target: Path, start: int, length: int | None) -> bytes:
        with open(target, "rb") as fh:
            fh.seek(max(0, start))
            return fh.read() if length is None else fh.read(max(0, length))

    def _delete(self, target: Path) -> bool:
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        # Tidy empty day/month folders so that years of retention leave no empty tree behind.
        parent = target.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return True


def open_store(data_dir: Path, media_url: str | None = None) -> BlobStore:
    """The store the settings describe: the local disk under data_dir/media (the default), or a bucket for
    ``media_url`` ``s3://bucket/prefix`` (``gate_service.video.s3store``)."""
    if media_url and media_url.startswith("s3://"):
        from gate_service.video.s3store import S3Store

        return S3Store.from_env(media_url, Path(data_dir))
    if media_url:
        raise ValueError(f"CLEANGATE_MEDIA_URL: only s3://bucket/prefix is understood, got {media_url!r}")
    return LocalStore(Path(data_dir) / "media")


async def close_store(store: BlobStore) -> None:
    """Release the store's connections (a bucket's HTTP client; nothing for the local disk)."""
    aclose = getattr(store, "aclose", None)
    if aclose is not None:
        await aclose()
