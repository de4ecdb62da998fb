"""SVG snapshots of the console's main screens at 80x24 and 160x48 (pytest-textual-snapshot).

The desk is fixed (same tickets, same ids) and every timestamp in it is set to
a fixed moment before a fixed clock, so ages and "updated … ago" never move.
Update the pictures after a deliberate change with `pytest --snapshot-update`.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from core import Desk
from storage.database import Database
from storage.models import Event, Message, Ticket
from tests.console_pilot import open_ticket, wait_for, wait_for_queue
from tests.desk_fixtures import build_world
from tui.console.app import ConsoleApp

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SIZES = [(80, 24), (160, 48)]


async def _build(url: str) -> str:
    desk = Desk(Database(url))
    try:
        await desk.init()
        world = await build_world(desk)
        ref = world.ref("billing")
        await desk.reply("bill", ref, "Sorry about that! We are looking into invoice 2041.\n\n> I was charged twice")
        await desk.note("bill", ref, "Checked the payment provider: two captures.")
        await desk.set_priority("bill", ref, "high")
        await desk.tag("bill", ref, ["refund", "invoice"])
        await desk.assign("bill", ref, "bill")
        async with desk.db.writing() as session:
            for ticket in (await session.execute(select(Ticket))).scalars():
                moment = NOW - timedelta(hours=5 - ticket.id)
                await session.execute(
                    update(Ticket).where(Ticket.id == ticket.id).values(created_at=moment, updated_at=moment)
                )
            # Messages and events a few minutes apart, in the order they were written.
            message_ids = list((await session.execute(select(Message.id).order_by(Message.id))).scalars())
            event_ids = list((await session.execute(select(Event.id).order_by(Event.id))).scalars())
            for index, message_id in enumerate(message_ids):
                moment = NOW - timedelta(minutes=10 * (len(message_ids) - index))
                await session.execute(update(Message).where(Message.id == message_id).values(created_at=moment))
            for index, event_id in enumerate(event_ids):
                moment = NOW - timedelta(minutes=3 * (len(event_ids) - index))
                await session.execute(update(Event).where(Event.id == event_id).values(at=moment))
        return ref
    finally:
        await desk.close()


@pytest.fixture
def fixed_desk(tmp_path: Path) -> tuple[str, str]:
    url = f"sqlite:///{tmp_path / 'snap.sqlite3'}"
    return url, asyncio.run(_build(url))


def fixed_console(url: str) -> ConsoleApp:
    # A Desk made outside any event loop connects first inside the app's own loop, and the app closes it.
    return ConsoleApp(Desk(Database(url)), "bill", clock=lambda: NOW, live=False, presence_seconds=3600,
                      close_desk=True)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_queues_screen(snap_compare: Any, fixed_desk: tuple[str, str], size: tuple[int, int]) -> None:
    url, _ = fixed_desk

    async def ready(pilot: Any) -> None:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: screen.departments and len(screen.rows) == 2, "counts and rows")

    assert snap_compare(fixed_console(url), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_ticket_screen(snap_compare: Any, fixed_desk: tuple[str, str], size: tuple[int, int]) -> None:
    url, ref = fixed_desk

    async def ready(pilot: Any) -> None:
        await wait_for_queue(pilot)
        await open_ticket(pilot, ref)

    assert snap_compare(fixed_console(url), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_help_screen(snap_compare: Any, fixed_desk: tuple[str, str], size: tuple[int, int]) -> None:
    url, _ = fixed_desk

    async def ready(pilot: Any) -> None:
        await wait_for_queue(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: pilot.app.screen.__class__.__name__ == "HelpScreen", "the help screen")

    assert snap_compare(fixed_console(url), terminal_size=size, run_before=ready)
