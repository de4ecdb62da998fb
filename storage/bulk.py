"""Loading many rows at once: chunked executemany inserts, explicit id ranges, and the text index during a load.

This knows the schema (which tables have an SQLite FTS5 shadow kept by
triggers, which primary keys have PostgreSQL sequences) but nothing of the
domain: the demo builder and importers decide what the rows say.

On SQLite the FTS triggers index every row as it is inserted; for a load of
millions of messages it is faster to drop them, insert, and rebuild each FTS
index once from its content table (`text_index_suspended`). PostgreSQL's
pg_trgm GIN indexes need nothing special.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, func, insert, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from storage.database import Database

log = logging.getLogger(__name__)

# Rows per executemany call: large enough that per-call overhead vanishes,
# small enough that one parameter list stays a few megabytes.
DEFAULT_CHUNK = 5_000

# Page cache for a bulk write transaction (KiB, as SQLite's negative
# cache_size means). Index pages of a million-row table no longer fit the
# 2 MiB default, and every insert would re-read them from the OS.
BULK_CACHE_KIB = 262_144


async def insert_rows(
    session: AsyncSession, table: Table, rows: Sequence[Mapping[str, Any]], *, chunk: int = DEFAULT_CHUNK
) -> int:
    """Insert `rows` (dicts with the same keys) into `table` with Core executemany; returns the count."""
    if not rows:
        return 0
    connection = await session.connection()
    statement = insert(table)
    for start in range(0, len(rows), chunk):
        await connection.execute(statement, list(rows[start : start + chunk]))
    return len(rows)


async def next_id(session: AsyncSession, table: Table) -> int:
    """The first unused value of `table`'s integer primary key (max + 1), for loads with explicit ids."""
    [column] = table.primary_key.columns
    highest = (await session.execute(select(func.max(column)))).scalar()
    return int(highest or 0) + 1


async def reset_sequences(session: AsyncSession, tables: Iterable[Table]) -> None:
    """After inserting explicit ids on PostgreSQL, move each id sequence past the highest id.

    Without this the next ordinary INSERT would draw id 1 from the sequence and
    collide with a loaded row. SQLite derives the next rowid from max(rowid).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for table in tables:
        [column] = table.primary_key.columns
        await session.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column.name}'), "
                f"COALESCE(MAX({column.name}), 1), MAX({column.name}) IS NOT NULL) FROM {table.name}"
            )
        )


async def tune_for_bulk(session: AsyncSession) -> None:
    """Give this write transaction's SQLite connection a cache large enough for big index inserts."""
    if session.get_bind().dialect.name == "sqlite":
        await session.execute(text(f"PRAGMA cache_size = -{BULK_CACHE_KIB}"))


@dataclass(frozen=True)
class _TextIndex:
    """One FTS5 table and the triggers that keep it in step with its content table."""

    name: str
    triggers: tuple[tuple[str, str], ...]  # (name, CREATE TRIGGER sql)


async def _text_indexes(session: AsyncSession) -> list[_TextIndex]:
    tables = (
        (
            await session.execute(
                text(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND sql LIKE 'CREATE VIRTUAL TABLE%USING fts5%' ORDER BY name"
                )
            )
        )
        .scalars()
        .all()
    )
    found = []
    for name in tables:
        triggers = (
            await session.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' "
                    "AND sql LIKE '%INSERT INTO ' || :fts || '(%' ORDER BY name"
                ),
                {"fts": name},
            )
        ).all()
        found.append(_TextIndex(name=name, triggers=tuple((row[0], row[1]) for row in triggers)))
    return found


@asynccontextmanager
async def text_index_suspended(db: Database, *, enabled: bool = True) -> AsyncIterator[None]:
    """On SQLite: no FTS triggers inside the block; afterwards the triggers are back and each index rebuilt.

    The rebuild reads every row of the content table, so this pays off only
    for loads that are large next to what the desk already holds. If the
    process dies inside the block the triggers are gone and search misses new
    rows: only use it for desks that can be built again (demo, benchmark).
    """
    if not db.is_sqlite or not enabled:
        yield
        return
    async with db.writing() as session:
        indexes = await _text_indexes(session)
        for index in indexes:
            for name, _sql in index.triggers:
                await session.execute(text(f'DROP TRIGGER "{name}"'))
    try:
        yield
    finally:
        async with db.writing() as session:
            await tune_for_bulk(session)
            for index in indexes:
                for _name, sql in index.triggers:
                    await session.execute(text(sql))
                log.info("rebuilding text index %s", index.name)
                await session.execute(text(f"INSERT INTO {index.name}({index.name}) VALUES ('rebuild')"))


async def optimise_text_index(db: Database) -> None:
    """Merge an FTS5 index's segments into one (SQLite), so searches read one b-tree per term."""
    if not db.is_sqlite:
        return
    async with db.writing() as session:
        await tune_for_bulk(session)
        for index in await _text_indexes(session):
            await session.execute(text(f"INSERT INTO {index.name}({index.name}) VALUES ('optimize')"))


async def analyse(db: Database) -> None:
    """Refresh the planner's statistics after a load (ANALYZE), so it picks the right indexes.

    Without them SQLite believes `department_id IN (…)` is selective and sorts
    a whole desk for the first queue page of an agent in every department
    (4.7 s at a million tickets) instead of walking the `updated_at` index.
    A full ANALYZE, not one bounded by `analysis_limit`: sampled statistics
    told the planner a department holds 2,000 tickets instead of 83,000 and
    it chose the sort again. At a million tickets it takes about 9 s.

    On PostgreSQL it is VACUUM (ANALYZE): a freshly loaded table has no visibility map yet, so every index
    range would visit the table's pages too (the dashboard's SLA counts took 70 ms instead of 4 ms at a
    million tickets until autovacuum came by). VACUUM cannot run inside a transaction: autocommit.
    """
    if db.dialect == "postgresql":
        async with db.write_engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.exec_driver_sql("VACUUM (ANALYZE)")
        return
    async with db.writing() as session:
        await session.execute(text("ANALYZE"))
