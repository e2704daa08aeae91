"""Stopping and starting a test's own embedded PostgreSQL: the database outages the service must ride out."""

from __future__ import annotations


def stop_server(server, mode: str = "fast") -> None:  # type: ignore[no-untyped-def]
    """Stop ``server`` (a pgserver) the way an outage does: ``fast`` drops sessions, ``immediate`` is a crash."""
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "stop", "-m", mode], pgdata=server.pgdata, user=server.system_user)


def start_server(server) -> None:  # type: ignore[no-untyped-def]
    """Start it again on its socket only (no TCP), as pgserver first started it."""
    from pgserver._commands import pg_ctl

    pg_ctl(["-w", "start", "-o", f"-k {server.pgdata} -c listen_addresses=''", "-l", str(server.log)],
           pgdata=server.pgdata, user=server.system_user, timeout=20)
