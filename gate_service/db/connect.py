"""Open the database the settings point at and hand out an asyncpg pool."""

from __future__ import annotations

import json
from dataclasses import dataclass

import asyncpg

from gate_service.config import Settings
from gate_service.db.embedded import start_embedded
from gate_service.db.migrate import apply_migrations


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb columns come back as Python objects; Chinese text stays readable in the database.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")),
        decoder=json.loads,
        schema="pg_catalog",
    )
    await conn.set_type_codec(
        "json", encoder=lambda v: json.dumps(v, ensure_ascii=False), decoder=json.loads, schema="pg_catalog"
    )


def resolve_dsn(settings: Settings) -> str:
    return settings.database_url or start_embedded(settings.data_dir)


@dataclass
class Database:
    dsn: str
    pool: asyncpg.Pool
    embedded: bool

    async def close(self) -> None:
        await self.pool.close()


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, command_timeout=60
    )


async def open_database(settings: Settings, *, migrate: bool = True) -> Database:
    dsn = resolve_dsn(settings)
    pool = await create_pool(dsn, min_size=settings.pool_min, max_size=settings.pool_max)
    if migrate:
        async with pool.acquire() as conn:
            await apply_migrations(conn)
    return Database(dsn=dsn, pool=pool, embedded=settings.database_url is None)
