"""The embedded PostgreSQL a new user gets when no DATABASE_URL is configured."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

log = logging.getLogger(__name__)


def start_embedded(data_dir: Path) -> str:
    """Start (or attach to) the PostgreSQL cluster in ``data_dir/pg`` and return its URI.

    pgserver ships the server binaries in its wheel, so this needs no system PostgreSQL; the
    server listens only on a Unix socket inside the data dir. Several processes may share one
    data dir (the CLI attaches to the cluster a running service started).
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    data_dir = data_dir.expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(data_dir / "pg", cleanup_mode="stop")
    uri = server.get_uri()
    log.info("embedded PostgreSQL at %s", data_dir / "pg")
    return uri
