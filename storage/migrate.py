"""Schema migrations: upgrade a database to the newest Alembic revision, and tell how current it is."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection

from storage.database import Database, refresh_statistics

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, "storage/migrations/versions holds no revision"
    return head


async def upgrade_to_head(db: Database) -> tuple[str | None, str]:
    """Bring the schema to head; idempotent. Returns (revision before, revision after).

    Afterwards the SQLite planner statistics are refreshed where missing or
    stale (`refresh_statistics`): a migration that rebuilds a table drops its
    statistics, and a desk grown by ordinary use never had any.
    """
    config = alembic_config()

    def run(connection: Connection) -> str | None:
        before = MigrationContext.configure(connection).get_current_revision()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        return before

    async with db.translated_errors(), db.write_engine.begin() as connection:
        before = await connection.run_sync(run)
    await refresh_statistics(db)
    return before, head_revision()
