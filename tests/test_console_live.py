"""The console's live feed: NOTIFY on PostgreSQL wakes an open console, and it survives losing the listener.

The console's own poll interval is set to an hour in these tests, so only a
notification can explain a change arriving. Waits poll for the condition with
a generous deadline; nothing here asserts a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import asyncpg
import pytest

from core import Desk
from storage.database import Database
from tests.conftest import _asyncpg_dsn
from tests.console_pilot import screen_text, wait_for, wait_for_queue
from tests.desk_fixtures import World, build_world, new_ticket
from tui.console.app import ConsoleApp

HOUR = 3600.0

pytestmark = pytest.mark.postgres


@pytest.fixture
async def pg_desk(postgres_url: str) -> AsyncIterator[Desk]:
    desk = Desk(Database(postgres_url))
    await desk.init()
    yield desk
    await desk.close()


@pytest.fixture
async def pg_world(pg_desk: Desk) -> World:
    return await build_world(pg_desk)


@pytest.fixture
async def other_desk(postgres_url: str, pg_desk: Desk) -> AsyncIterator[Desk]:
    """A second Desk with its own connections: what another console or the CLI would be."""
    desk = Desk(Database(postgres_url))
    yield desk
    await desk.close()


def hour_console(desk: Desk, handle: str) -> ConsoleApp:
    app = ConsoleApp(desk, handle, poll_seconds=HOUR, presence_seconds=HOUR)
    app.desk.settings.console.feed_safety_seconds = HOUR
    return app


def listening(app: ConsoleApp) -> bool:
    return app.feed is not None and app.feed.listening and not app.polling


async def test_a_change_from_another_connection_reaches_an_open_console_by_notification(
    pg_desk: Desk, pg_world: World, other_desk: Desk
) -> None:
    app = hour_console(pg_desk, "bill")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: len(screen.rows) == 2, "both Billing tickets")
        await wait_for(pilot, lambda: listening(app), "the console listening")
        fresh = await new_ticket(other_desk, "Billing", "Notified arrival")
        await wait_for(pilot, lambda: any(row.ref == fresh.ref for row in screen.rows), "the notified ticket")
        await wait_for(pilot, lambda: "Notified arrival" in screen_text(app), "the new row on screen")


async def test_the_console_listens_again_after_its_connection_is_killed(
    postgres_url: str, pg_desk: Desk, pg_world: World, other_desk: Desk
) -> None:
    app = hour_console(pg_desk, "bill")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: listening(app), "the console listening")
        assert app.feed is not None
        first = app.feed.backend_pid
        connection = await asyncpg.connect(_asyncpg_dsn(postgres_url))
        try:
            assert await connection.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await connection.close()
        await wait_for(pilot, lambda: listening(app) and app.feed.backend_pid != first, "a new listening connection")
        assert app.feed.reconnects >= 1
        fresh = await new_ticket(other_desk, "Billing", "After the reconnect")
        await wait_for(pilot, lambda: any(row.ref == fresh.ref for row in screen.rows), "the ticket after reconnecting")
        assert app.is_running
