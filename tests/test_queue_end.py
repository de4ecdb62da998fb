"""The end of a queue: pages read backwards from the end agree with the forward pages, and `G` in the console
goes to the true last ticket (not the last loaded one) and pages earlier rows in as the cursor climbs."""

from __future__ import annotations

from dataclasses import replace

import pytest

from core import Desk
from core.errors import BadArgument
from core.views import QueueFilter
from tests.console_pilot import type_text, wait_for, wait_for_queue
from tests.desk_fixtures import World, build_world, new_ticket
from tui.console.app import ConsoleApp

SORTS = ("updated", "newest", "oldest", "priority", "due")


@pytest.fixture
async def world(desk: Desk) -> World:
    world = await build_world(desk)
    for number in range(23):
        row = await new_ticket(desk, "Billing", f"Bulk ticket {number}", priority=("low", "normal", "high")[number % 3])
        if number % 4 == 0:
            await desk.reply("bill", row.ref, "Answered.")  # moves it in the 'updated' and 'due' orders
    return world


async def forward(desk: Desk, wanted: QueueFilter) -> list[str]:
    refs: list[str] = []
    cursor = None
    while True:
        page = await desk.queue("bill", replace(wanted, cursor=cursor))
        refs += [row.ref for row in page.rows]
        if page.next_cursor is None:
            return refs
        cursor = page.next_cursor


@pytest.mark.parametrize("sort", SORTS)
async def test_pages_read_backwards_from_the_end_are_the_forward_pages(desk: Desk, world: World, sort: str) -> None:
    wanted = QueueFilter(sort=sort, limit=4)  # type: ignore[arg-type]
    expected = await forward(desk, wanted)
    backwards: list[str] = []
    page = await desk.queue("bill", replace(wanted, backward=True))
    assert page.next_cursor is None, "the last page has nothing after it"
    while True:
        assert len(page.rows) <= 4
        backwards = [row.ref for row in page.rows] + backwards
        if page.previous_cursor is None:
            break
        page = await desk.queue("bill", replace(wanted, backward=True, cursor=page.previous_cursor))
        assert page.next_cursor is not None
    assert backwards == expected


async def test_a_text_search_cannot_be_read_backwards(desk: Desk, world: World) -> None:
    with pytest.raises(BadArgument, match="page forward"):
        await desk.queue("bill", QueueFilter(text="bulk ticket", backward=True))


async def test_G_goes_to_the_true_end_of_the_queue_and_earlier_rows_page_in(desk: Desk, world: World) -> None:
    everything = await forward(desk, QueueFilter(statuses=("new", "open", "pending"), limit=100))
    assert len(everything) == 25
    app = ConsoleApp(desk, "bill", poll_seconds=0.2, presence_seconds=1.0, page_size=5)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        assert screen.next_cursor is not None, "one page of five is loaded, more exist"
        await pilot.press("G")
        await wait_for(pilot, lambda: screen.at_tail and screen.rows[-1].ref == everything[-1], "the last page")
        await wait_for(pilot, lambda: screen.current_row().ref == everything[-1], "the cursor on the last ticket")
        assert screen.next_cursor is None
        # A page or two before the window may be read ahead (the cursor is near its top), never the whole queue.
        assert len(screen.rows) < len(everything), "the rows in between were not loaded"
        # Climbing up pages the earlier rows in front, in queue order, and the cursor stays on its ticket.
        for _ in range(30):
            await pilot.press("k")
        await wait_for(pilot, lambda: screen.previous_cursor is None and not screen.loading_earlier, "every page")
        await wait_for(pilot, lambda: [row.ref for row in screen.rows] == everything, "the whole queue in order")
        await pilot.press("G")
        await wait_for(pilot, lambda: screen.current_row().ref == everything[-1], "the end again")
        await pilot.press("g")
        await wait_for(pilot, lambda: screen.current_row().ref == everything[0], "back at the top")


async def test_G_on_a_text_search_pages_forward_to_its_last_match(desk: Desk, world: World) -> None:
    app = ConsoleApp(desk, "bill", poll_seconds=0.2, presence_seconds=1.0, page_size=5)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        await pilot.press("slash")
        await type_text(pilot, "Bulk ticket")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.text == "Bulk ticket" and screen.rows and screen.next_cursor, "a search")
        expected = await forward(desk, QueueFilter(text="Bulk ticket", statuses=("new", "open", "pending"), limit=5))
        assert len(expected) == 23
        await pilot.press("G")
        await wait_for(pilot, lambda: screen.next_cursor is None and len(screen.rows) == 23, "every match loaded")
        assert [row.ref for row in screen.rows] == expected
        await wait_for(pilot, lambda: screen.current_row().ref == expected[-1], "the cursor on the last match")
