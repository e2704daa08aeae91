"""The embedded PostgreSQL a new user gets when no DATABASE_URL is configured."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def embedded_server(data_dir: Path, *, cleanup_mode: str | None = "stop") -> Any:
    """The pgserver handle for ``data_dir/pg`` (started); ``cleanup()`` stops it when this is the last user."""
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    return pgserver.get_server(data_dir / "pg", cleanup_mode=cleanup_mode)


def start_embedded(data_dir: Path) -> str:
    """Start (or attach to) the PostgreSQL cluster in ``data_dir/pg`` and return its URI.

    pgserver ships the server binaries in its wheel, so this needs no system PostgreSQL; the
    server listens only on a Unix socket inside the data dir. Several processes may share one
    data dir (the CLI attaches to the cluster a running service started).
    """
    uri = embedded_server(data_dir).get_uri()
    log.info("embedded PostgreSQL at %s", data_dir / "pg")
    return uri
