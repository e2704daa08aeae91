"""Telling "the database is unreachable" apart from every other failure."""

from __future__ import annotations

import traceback

import asyncpg

# Errors that mean PostgreSQL cannot be reached or went away; a query's own errors are not among them.
DB_DOWN: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.AdminShutdownError,
    asyncpg.TooManyConnectionsError,
    ConnectionRefusedError,
    ConnectionResetError,
    TimeoutError,
    OSError,  # narrowed by is_db_down: only when raised from inside asyncpg (a missing Unix socket, say)
    asyncpg.InterfaceError,
)


def is_db_down(exc: BaseException) -> bool:
    if isinstance(exc, (asyncpg.PostgresConnectionError, asyncpg.CannotConnectNowError,
                        asyncpg.ConnectionDoesNotExistError, asyncpg.AdminShutdownError,
                        asyncpg.TooManyConnectionsError, ConnectionRefusedError, ConnectionResetError)):
        return True
    if isinstance(exc, (OSError, TimeoutError, asyncpg.InterfaceError)):
        # A file the service itself could not find is not an outage: only count errors raised in asyncpg.
        return any("asyncpg" in frame.filename for frame in traceback.extract_tb(exc.__traceback__))
    return False
