"""The console's read-ahead of the ticket under a resting cursor: what it keeps, and what makes it forget."""

from __future__ import annotations

import pytest

from core import Desk
from core.views import TicketDetail
from tests.console_pilot import open_ticket, wait_for, wait_for_queue
from tests.desk_fixtures import World, build_world
from tui.console.app import ConsoleApp
from tui.console.prefetch import Prefetched


@pytest.fixture
async def world(desk: Desk) -> World:
    return await build_world(desk)


async def test_a_read_overtaken_by_a_change_is_not_kept_and_only_the_latest_few_are(desk: Desk, world: World) -> None:
    detail = await desk.ticket("bill", world.ref("billing"))
    assert isinstance(detail, TicketDetail)
    kept = Prefetched(keep=2)
    began = kept.epoch
    kept.drop(["TD-999"])  # the feed reports a change while the read is under way
    kept.put("A", detail, began)
    assert kept.get("A") is None
    for ref in ("A", "B", "C"):
        kept.put(ref, detail, kept.epoch)
    assert kept.get("A") is None and kept.get("B") is detail and kept.get("C") is detail
    kept.drop(["B"])
    assert kept.get("B") is None and kept.get("C") is detail
    kept.clear()
    assert kept.get("C") is None


async def test_a_ticket_read_ahead_opens_with_a_change_made_after_the_read(desk: Desk, world: World) -> None:
    app = ConsoleApp(desk, "bill", poll_seconds=0.1, presence_seconds=0.2)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: len(screen.rows) == 2, "both Billing tickets")
        await pilot.press("j")
        ref = screen.current_row().ref
        await wait_for(pilot, lambda: screen.prefetched.get(ref) is not None, "the ticket read ahead")
        read_at = screen.prefetched.epoch
        await desk.note("sup", ref, "Written after the read-ahead.")
        await wait_for(pilot, lambda: screen.prefetched.epoch > read_at, "the live feed reporting the note")
        ticket = await open_ticket(pilot, ref)
        assert any("Written after the read-ahead." in message.body for message in ticket.detail.messages)
