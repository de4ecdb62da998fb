"""Shared fixtures: a fresh desk on SQLite, and on PostgreSQL when TERMDESK_TEST_POSTGRES_URL is set.

PostgreSQL tests get their own database per test (created from the server
named by the URL, dropped afterwards); without the variable they are
reported as skipped, never as passed. A `desk` starts as a copy of a database
migrated once per session (a copied SQLite file, a PostgreSQL database made
from a template) because running every migration for each of two thousand
tests was a third of the suite's time; `db_url` stays empty for the tests of
`init` and the migrations themselves.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from core import Desk
from core.policy import Actor

POSTGRES_URL = os.environ.get("TERMDESK_TEST_POSTGRES_URL", "")
SHARED = Path(__file__).resolve().parents[2] / "shared"


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    if not POSTGRES_URL:
        pytest.skip("TERMDESK_TEST_POSTGRES_URL is not set; PostgreSQL tests need a server")
    return POSTGRES_URL


def _create_database(server_url: str) -> str:
    name = f"termdesk_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(server_url))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    asyncio.run(create())
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def _drop_database(server_url: str, url: str) -> None:
    name = make_url(url).database

    async def drop() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(server_url))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A new, empty PostgreSQL database for one test."""
    url = _create_database(postgres_server)
    yield url
    _drop_database(postgres_server, url)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty database URL: every test using it runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


async def _migrate(url: str) -> None:
    from storage.database import Database

    template = Desk(Database(url, create=True))
    try:
        await template.init()
    finally:
        await template.close()  # no connection may stay open on a template


@pytest.fixture(scope="session")
def migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("template") / "desk.sqlite3"
    asyncio.run(_migrate(f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def migrated_postgres() -> Iterator[str | None]:
    """The name of a migrated PostgreSQL database to copy (None without a server: nothing is skipped here)."""
    if not POSTGRES_URL:
        yield None
        return
    url = _create_database(POSTGRES_URL)
    asyncio.run(_migrate(url))
    yield make_url(url).database
    _drop_database(POSTGRES_URL, url)


@pytest.fixture
def migrated_url(db_url: str, migrated_sqlite: Path, migrated_postgres: str | None) -> str:
    """`db_url`, now holding the current schema and nothing else."""
    target = make_url(db_url)
    if target.get_backend_name() == "sqlite":
        shutil.copyfile(migrated_sqlite, str(target.database))
        return db_url
    assert migrated_postgres is not None

    async def copy() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(POSTGRES_URL))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{target.database}"')
            await connection.execute(f'CREATE DATABASE "{target.database}" TEMPLATE "{migrated_postgres}"')
        finally:
            await connection.close()

    asyncio.run(copy())
    return db_url


@pytest.fixture
async def desk(migrated_url: str) -> AsyncIterator[Desk]:
    """A migrated, empty desk."""
    from storage.database import Database

    instance = Desk(Database(migrated_url))
    yield instance
    await instance.close()


@pytest.fixture
def operator() -> Actor:
    return Actor.operator()


# Real IMAP servers (Dovecot, or pymap where it is absent) for the mail sync tests.
from tests.mailserver import imap_server, mail_user, mail_user_factory  # noqa: E402, F401

# A real SMTP server (aiosmtpd) and a desk whose outbox sends to it.
from tests.outbox_fixtures import mail_desk  # noqa: E402, F401
from tests.smtpserver import smtp_server  # noqa: E402, F401
