"""A recorder's spool directory: who owns it (an ``flock``), taking over a dead recorder's, durable small files.

Replicas may share the data dir (NFS): each recorder writes into ``<spool>/<recorder id>/`` and holds an
``flock`` on its ``.lock`` while it runs, so a directory whose lock can be taken belongs to no running recorder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
import uuid
from pathlib import Path
from typing import Any

log = logging.getLogger("gate_service.video.recorder")

LOCK_NAME = ".lock"


class SpoolLocked(RuntimeError):
    """A live recorder of the same id holds the spool directory."""


def lock_own(directory: Path, wait: float) -> int:
    """Lock this recorder's own directory, waiting a little for a previous run (or an adopter) to let go."""
    deadline = time.monotonic() + wait
    while True:
        directory.mkdir(parents=True, exist_ok=True)
        fd = try_lock(directory)
        if fd is not None:
            return fd
        if time.monotonic() >= deadline:
            raise SpoolLocked(f"video spool {directory} is locked by another running recorder with the same id "
                              "(two services with one host name on one data dir?)")
        time.sleep(0.1)


def try_lock(directory: Path) -> int | None:
    """An exclusive ``flock`` on ``directory/.lock``; None when a running recorder holds it."""
    path = directory / LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except (FileNotFoundError, NotADirectoryError):
        return None  # adopted (renamed away) meanwhile
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # Another recorder may have adopted the directory between our open and our lock: the lock is then on
        # a file that is no longer at this path, and proves nothing about it.
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def adopt(directory: Path, own: Path) -> None:
    """Take over a dead recorder's directory (its lock free) by renaming it into our own.

    Renamed rather than worked on in place: from the rename on, its files are under our lock (no one else can
    take them, sidecar and file always move together), and the dead recorder's host can start again at once,
    in a fresh directory, instead of waiting for us to index what it left.
    """
    fd = try_lock(directory)
    if fd is None:
        return  # a running recorder's
    try:
        own.mkdir(parents=True, exist_ok=True)
        target = own / f"from-{directory.name}-{uuid.uuid4().hex[:8]}"
        os.rename(directory, target)
        log.warning("video: adopted the spool of stopped recorder %s (%s)", directory.name, target)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a file's creation or rename in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Replace ``path`` atomically and durably: a crash leaves the old content or the new, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_json(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not a JSON object")
    return data


def unlink_all(*paths: Path) -> None:
    for path in paths:
        path.unlink(missing_ok=True)

