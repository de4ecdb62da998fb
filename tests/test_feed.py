"""`Desk.watch`: the first look always says "changed", a change made elsewhere is announced, and an idle desk
is reported as checked-and-unchanged (NOTIFY on PostgreSQL, polling on SQLite)."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from core import Desk
from storage.database import Database
from tests.desk_fixtures import build_world, new_ticket

DEADLINE = 60.0


async def test_the_feed_announces_a_change_made_through_another_desk(desk: Desk, db_url: str) -> None:
    await build_world(desk)
    other = Desk(Database(db_url))
    try:
        # A long safety interval on PostgreSQL: only the notification can announce the change there.
        feed = desk.watch(0.05, safety_seconds=3600)
        async with aclosing(feed.changes()) as changes:
            assert await asyncio.wait_for(anext(changes), DEADLINE) is True  # the first look
            assert await asyncio.wait_for(anext(changes), DEADLINE) is False  # nothing happened since
            await new_ticket(other, "Billing", "Made elsewhere")

            async def announced() -> None:
                while not await anext(changes):
                    pass

            await asyncio.wait_for(announced(), DEADLINE)
        assert not feed.listening
    finally:
        await other.close()
