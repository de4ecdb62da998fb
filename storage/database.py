"""The one way to open a database session: engines, SQLite pragmas, read and write transactions.

SQLite is the embedded default: WAL so readers never wait for the writer,
a busy timeout so a second writer queues instead of failing, foreign keys on,
and `BEGIN IMMEDIATE` for every write transaction so two writers never
deadlock on a lock upgrade (the source of "database is locked"). PostgreSQL
uses the same code through asyncpg.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.errors import DatabaseBusy, DatabaseUnavailable, SchemaMissing, StorageError

# Long enough that a queue of writers from several processes drains; each of
# our write transactions is a few milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def normalise_url(raw: str) -> str:
    """Accept `sqlite:///x`, `postgresql://…` or a bare file path; return an async driver URL."""
    text = raw.strip()
    if not text:
        raise StorageError("The database URL is empty; give --db URL or set TERMDESK_DB.")
    if "://" not in text:
        return f"sqlite+aiosqlite:///{Path(text).expanduser().resolve()}"
    try:
        url = make_url(text)
    except exc.ArgumentError:
        raise StorageError(
            f"The database URL {text!r} cannot be read; use sqlite:///PATH or postgresql://HOST/DB."
        ) from None
    backend = url.get_backend_name()
    if backend == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    elif backend in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    else:
        raise StorageError(
            f"The database kind {backend!r} is not supported; use sqlite:///PATH or postgresql://HOST/DB."
        )
    return url.render_as_string(hide_password=False)


def describe_url(url: str | URL) -> str:
    """The URL without its password, for messages a person reads."""
    return make_url(str(url)).render_as_string(hide_password=True)


SQLITE_CASEFOLD = "td_casefold"


def _casefold(value: str | None) -> str | None:
    return value.casefold() if isinstance(value, str) else value


class Database:
    """Engines and session factories for one database URL."""

    def __init__(self, url: str, *, echo: bool = False, create: bool = True) -> None:
        self.url = normalise_url(url)
        parsed = make_url(self.url)
        self.dialect = parsed.get_backend_name()
        self.sqlite_path = ""
        self.display_url = describe_url(parsed)
        if self.dialect == "sqlite":
            database = parsed.database or ""
            if database in ("", ":memory:"):
                raise StorageError(
                    "An in-memory SQLite database cannot be shared between connections; give a file path."
                )
            self.sqlite_path = database
            # Only `termdesk init` makes a new file; a mistyped path elsewhere must not
            # leave an empty database (and its folders) behind.
            if create:
                Path(database).parent.mkdir(parents=True, exist_ok=True)
            elif not Path(database).exists():
                raise SchemaMissing(
                    f"The database file {database} does not exist; run `termdesk init` to create it, "
                    "or fix --db / TERMDESK_DB."
                )
            self._read_engine = self._sqlite_engine(echo, begin="BEGIN")
            self._write_engine = self._sqlite_engine(echo, begin="BEGIN IMMEDIATE")
        else:
            engine = create_async_engine(self.url, echo=echo, pool_pre_ping=True, pool_size=5)
            self._read_engine = self._write_engine = engine
        self._read_sessions = async_sessionmaker(self._read_engine, expire_on_commit=False)
        self._write_sessions = async_sessionmaker(self._write_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    @property
    def write_engine(self) -> AsyncEngine:
        return self._write_engine

    @property
    def read_engine(self) -> AsyncEngine:
        return self._read_engine

    def translated_errors(self) -> AbstractAsyncContextManager[None]:
        """Driver failures inside this block become StorageError sentences."""
        return _translated_errors(self)

    def _sqlite_engine(self, echo: bool, *, begin: str) -> AsyncEngine:
        engine = create_async_engine(self.url, echo=echo)

        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            # Take transaction control away from the driver so our BEGIN is the only one.
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
            cursor.execute("PRAGMA foreign_keys = ON")
            cursor.close()
            # SQLite's LIKE and lower() fold ASCII only; short search terms in other scripts need this.
            dbapi_connection.create_function(SQLITE_CASEFOLD, 1, _casefold, deterministic=True)

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(connection: Any) -> None:
            connection.exec_driver_sql(begin)

        return engine

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A read transaction: one consistent snapshot, rolled back at the end."""
        async with _translated_errors(self):
            async with self._read_sessions() as session:
                try:
                    yield session
                finally:
                    await session.rollback()

    @asynccontextmanager
    async def writing(self) -> AsyncIterator[AsyncSession]:
        """A write transaction, committed when the block ends without an exception."""
        async with _translated_errors(self):
            async with self._write_sessions() as session:
                async with session.begin():
                    yield session

    async def dispose(self) -> None:
        await self._read_engine.dispose()
        if self._write_engine is not self._read_engine:
            await self._write_engine.dispose()


_MISSING_TABLE = re.compile(r"no such table|relation \"[^\"]+\" does not exist|UndefinedTable", re.I)
_BUSY = re.compile(r"database is locked|database is busy", re.I)


@asynccontextmanager
async def _translated_errors(db: Database) -> AsyncIterator[None]:
    """Turn driver failures a person can fix into StorageError sentences."""
    try:
        yield
    except exc.DBAPIError as error:
        text = str(error.orig) if error.orig is not None else str(error)
        if _MISSING_TABLE.search(text) or _MISSING_TABLE.search(type(error.orig).__name__):
            raise SchemaMissing(
                f"The database {db.display_url} has no termdesk tables; run `termdesk init` first."
            ) from error
        if _BUSY.search(text):
            raise DatabaseBusy(
                "The database stayed locked by another termdesk process for over "
                f"{SQLITE_BUSY_TIMEOUT_MS // 1000} s; try again, or move the desk to PostgreSQL."
            ) from error
        if isinstance(error, (exc.OperationalError, exc.InterfaceError)) and _looks_like_connection(text):
            raise DatabaseUnavailable(
                f"Cannot reach the database {db.display_url} ({_first_line(text)}); "
                "check that it is running and the URL is right."
            ) from error
        raise
    except (OSError, ConnectionError) as error:
        raise DatabaseUnavailable(
            f"Cannot reach the database {db.display_url} ({error}); "
            "check that it is running and the URL is right."
        ) from error


def _looks_like_connection(text: str) -> bool:
    return bool(
        re.search(
            r"unable to open database|connect|connection|refused|timeout|authentication|does not exist",
            text,
            re.I,
        )
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "no detail"


def default_sqlite_path() -> Path:
    """Where the desk lives when nothing else is configured: the XDG data dir."""
    from platformdirs import user_data_path

    base = os.environ.get("XDG_DATA_HOME")
    root = Path(base) / "termdesk" if base else user_data_path("termdesk")
    return root / "termdesk.sqlite3"


async def refresh_statistics(db: Database) -> list[str]:
    """Give the SQLite query planner statistics for tables that have none or have outgrown theirs.

    A desk that grows by ordinary use never runs ANALYZE, and without
    `sqlite_stat1` SQLite can choose plans that sort a whole desk (see
    core.policy.ticket_visible). This runs a full ANALYZE (sampling misled the
    planner at a million tickets) on every indexed table that has no
    statistics, or that holds more than twice the rows its statistics say,
    then `PRAGMA optimize`. Cheap when nothing is stale; seconds per table at
    a million tickets when something is. Returns the tables analysed.
    PostgreSQL's autovacuum keeps its own statistics: nothing to do there.
    """
    if not db.is_sqlite:
        return []
    analysed: list[str] = []
    async with _translated_errors(db), db.write_engine.begin() as connection:
        has_stats = (
            await connection.exec_driver_sql(
                "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
            )
        ).first() is not None
        known: dict[str, int] = {}
        if has_stats:
            # SQLAlchemy types AsyncConnection.exec_driver_sql as CursorResult[Any] (one column per row).
            for table, stat in await connection.exec_driver_sql(  # type: ignore[misc]
                "SELECT tbl, stat FROM sqlite_stat1 WHERE idx IS NOT NULL"
            ):
                rows = int(str(stat).split()[0]) if stat else 0
                known[table] = max(known.get(table, 0), rows)
        tables = [
            name
            for (name,) in await connection.exec_driver_sql(
                "SELECT DISTINCT tbl_name FROM sqlite_master WHERE type = 'index' AND tbl_name NOT LIKE 'sqlite_%' "
                "AND tbl_name NOT LIKE '%\\_fts\\_%' ESCAPE '\\' ORDER BY tbl_name"
            )
        ]
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            # max(rowid) is an O(log n) estimate of how many rows the table has held.
            estimate = (await connection.exec_driver_sql(f"SELECT coalesce(max(rowid), 0) FROM {quoted}")).scalar_one()
            if estimate == 0:
                continue
            if table not in known or estimate > 2 * known[table] + 100:
                await connection.exec_driver_sql(f"ANALYZE {quoted}")
                analysed.append(table)
        await connection.exec_driver_sql("PRAGMA optimize")
    return analysed
