"""Schema migrations and connection settings: `init` from empty and again, models agree with the migration."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from core import Desk
from core.policy import Actor
from core.views import QueueFilter
from storage.database import SQLITE_BUSY_TIMEOUT_MS, Database
from storage.errors import SchemaMissing
from storage.migrate import alembic_config, head_revision
from storage.models import Base
from storage.schema import SCHEMA_REVISION, current_revision
from tests.desk_fixtures import build_world

TABLES = {table.name for table in Base.metadata.sorted_tables}


def _is_text_search_object(name: str | None) -> bool:
    """FTS5 virtual tables (and their shadow tables) and pg_trgm indexes live only in the migration."""
    return bool(name) and ("_fts" in name or name.endswith("_trgm"))  # type: ignore[operator]


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    flat: list[tuple[Any, ...]] = []
    for diff in diffs:
        if isinstance(diff, list):  # column modifications come grouped
            flat.extend(diff)
        else:
            flat.append(diff)
    return flat


def _named(diff: tuple[Any, ...]) -> str | None:
    for item in diff[1:]:
        name = getattr(item, "name", None)
        if isinstance(name, str):
            return name
    return None


async def _table_names(db: Database) -> set[str]:
    async with db.read_engine.connect() as connection:
        return set(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))


async def test_init_on_an_empty_database_creates_the_schema_at_head(db_url: str) -> None:
    db = Database(db_url)
    try:
        assert await current_revision(db) is None
        before, after = await Desk(db).init()
        assert (before, after) == (None, head_revision())
        assert await current_revision(db) == head_revision()
        assert TABLES <= await _table_names(db)
    finally:
        await db.dispose()


async def test_second_init_is_a_no_op_that_keeps_the_data(desk: Desk) -> None:
    world = await build_world(desk)
    tables = await _table_names(desk.db)
    before, after = await desk.init()
    assert before == after == head_revision()
    assert await current_revision(desk.db) == head_revision()
    assert await _table_names(desk.db) == tables
    rows = (await desk.queue("both", QueueFilter())).rows
    assert {row.ref for row in rows} == {world.ref("billing"), world.ref("billing2"), world.ref("technical")}
    # Search indexes survive too.
    found = (await desk.queue("both", QueueFilter(text="secret-alpha"))).rows
    assert [row.ref for row in found] == [world.ref("technical")]
    assert await desk.check_counters(repair=False) == 0


async def test_desk_open_on_an_uninitialised_database_says_to_run_init(db_url: str) -> None:
    with pytest.raises(SchemaMissing) as error:
        await Desk.open(db_url)
    message = str(error.value)
    assert "termdesk init" in message
    assert message.count(".") >= 1 and "\n" not in message
    assert "Traceback" not in message


async def test_desk_open_after_init_works(db_url: str) -> None:
    db = Database(db_url)
    await Desk(db).init()
    await db.dispose()
    desk = await Desk.open(db_url)
    try:
        assert await desk.counts(Actor.operator()) == []
        assert (await desk.add_department(Actor.operator(), "Billing", email="b@desk.example")).name == "Billing"
    finally:
        await desk.close()


async def test_desk_call_on_an_uninitialised_database_is_schema_missing_not_a_driver_error(db_url: str) -> None:
    desk = Desk(Database(db_url))
    try:
        with pytest.raises(SchemaMissing, match="termdesk init"):
            await desk.counts("anyone")
    finally:
        await desk.close()


async def test_models_and_migration_agree(desk: Desk) -> None:
    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)

    async with desk.db.read_engine.connect() as connection:
        diffs = _flatten(await connection.run_sync(compare))
    remaining = [diff for diff in diffs if not _is_text_search_object(_named(diff))]
    assert remaining == [], "models and migration differ; write a migration:\n" + "\n".join(map(str, remaining))


async def test_migration_downgrades_to_empty_and_upgrades_again(desk: Desk) -> None:
    config = alembic_config()

    def run(connection: Connection, target: str, upgrade: bool) -> None:
        config.attributes["connection"] = connection
        (command.upgrade if upgrade else command.downgrade)(config, target)

    async with desk.db.write_engine.begin() as connection:
        await connection.run_sync(run, "base", False)
    assert await _table_names(desk.db) & TABLES == set()
    assert await current_revision(desk.db) is None
    await desk.init()
    assert await current_revision(desk.db) == head_revision()
    world = await build_world(desk)
    assert (await desk.queue("tech", QueueFilter(text="reboots"))).rows[0].ref == world.ref("technical")


# -- SQLite connection settings ------------------------------------------------------------


@pytest.fixture
async def sqlite_desk(tmp_path: Path) -> Any:
    desk = Desk(Database(f"sqlite:///{tmp_path / 'pragmas.sqlite3'}"))
    await desk.init()
    yield desk, tmp_path / "pragmas.sqlite3"
    await desk.close()


@pytest.mark.parametrize("side", ["writing", "reading"])
async def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(sqlite_desk: Any, side: str) -> None:
    desk, _ = sqlite_desk
    session_factory = desk.db.writing if side == "writing" else desk.db.reading
    async with session_factory() as session:
        pragma = {
            name: (await session.execute(text(f"PRAGMA {name}"))).scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
    assert str(pragma["journal_mode"]).lower() == "wal"
    assert pragma["foreign_keys"] == 1
    assert pragma["busy_timeout"] >= 5000
    assert SQLITE_BUSY_TIMEOUT_MS >= 5000


async def test_sqlite_write_transactions_take_the_write_lock_at_begin(sqlite_desk: Any) -> None:
    """`BEGIN IMMEDIATE`: a second writer waits at BEGIN instead of failing later on a lock upgrade."""
    desk, path = sqlite_desk
    other = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        async with desk.db.writing() as session:
            await session.execute(text("SELECT 1"))
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                other.execute("BEGIN IMMEDIATE")
        other.execute("BEGIN IMMEDIATE")  # free again after commit
        other.execute("ROLLBACK")
        async with desk.db.reading() as session:
            await session.execute(text("SELECT count(*) FROM tickets"))
            other.execute("BEGIN IMMEDIATE")  # a reader never blocks a writer
            other.execute("ROLLBACK")
    finally:
        other.close()


async def test_sqlite_foreign_keys_are_enforced(sqlite_desk: Any) -> None:
    desk, _ = sqlite_desk
    from sqlalchemy.exc import IntegrityError

    with pytest.raises(IntegrityError):
        async with desk.db.writing() as session:
            await session.execute(
                text("INSERT INTO memberships (agent_id, department_id, created_at) VALUES (999, 999, '2030-01-01')")
            )


def test_expected_schema_revision_is_the_newest_migration() -> None:
    """storage.schema checks databases against a constant; it must move with every new migration."""
    assert SCHEMA_REVISION == head_revision()
