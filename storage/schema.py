"""Which schema revision this code expects, and a cheap check that a database is at it.

Every command checks the schema before it works; doing that with Alembic's
script directory costs ~150 ms of imports, so the expected revision is a
constant here (a test pins it to the newest file in migrations/versions) and
the check is one SELECT.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from storage.database import Database
from storage.errors import DatabaseBusy, DatabaseUnavailable, SchemaMissing

# The newest Alembic revision; bump together with each new migration.
SCHEMA_REVISION = "0011"


async def current_revision(db: Database) -> str | None:
    """The database's Alembic revision, or None when termdesk was never initialised there."""
    if db.is_sqlite and not Path(db.sqlite_path).exists():
        return None
    try:
        async with db.reading() as session:
            return (await session.execute(text("SELECT version_num FROM alembic_version"))).scalar()
    except SchemaMissing:
        return None


async def require_current_schema(db: Database) -> None:
    """Fail with one sentence when `termdesk init` has not been run (or not since an upgrade)."""
    try:
        revision = await current_revision(db)
    except (DatabaseUnavailable, DatabaseBusy):
        raise
    if revision is None:
        raise SchemaMissing(f"The database {db.display_url} has no termdesk tables; run `termdesk init` first.")
    if revision != SCHEMA_REVISION:
        raise SchemaMissing(
            f"The database {db.display_url} is at schema {revision}, not {SCHEMA_REVISION} as this termdesk "
            "expects; run `termdesk init` to upgrade it."
        )
