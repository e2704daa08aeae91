"""Database access: embedded or external PostgreSQL, the asyncpg pool, numbered migrations."""

from gate_service.db.connect import Database, open_database
from gate_service.db.migrate import apply_migrations

__all__ = ["Database", "open_database", "apply_migrations"]
