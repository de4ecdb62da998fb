"""The agent console driven end to end with Pilot on a real desk: triage, live updates, access, drafts, presence.

No timing is asserted: every wait polls for the condition with a generous
deadline (tests/console_pilot.py), so a loaded machine is only slower.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from core import Desk
from core.views import QueueFilter
from storage.models import Agent, Department, Message
from tests.console_pilot import (
    choose,
    open_ticket,
    screen_text,
    type_text,
    wait_for,
    wait_for_queue,
)
from tests.desk_fixtures import World, build_world, ticket_state
from tui.console.app import ConsoleApp
from tui.console.composer import ComposerScreen, ReviewScreen
from tui.console.queues import QueuesScreen
from tui.console.ticket import TicketScreen

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
async def world(desk: Desk) -> World:
    return await build_world(desk)


def console(desk: Desk, handle: str, **options: object) -> ConsoleApp:
    return ConsoleApp(desk, handle, poll_seconds=0.1, presence_seconds=0.2, **options)  # type: ignore[arg-type]


async def department_id(desk: Desk, name: str) -> int:
    async with desk.db.reading() as session:
        return (await session.execute(select(Department.id).where(Department.name == name))).scalar_one()


async def agent_id(desk: Desk, handle: str) -> int:
    async with desk.db.reading() as session:
        return (await session.execute(select(Agent.id).where(Agent.handle == handle))).scalar_one()


async def messages_of(desk: Desk, ref: str) -> list[tuple[str, str]]:
    ticket_id = int(ref.rsplit("-", 1)[1])
    async with desk.db.reading() as session:
        rows = await session.execute(
            select(Message.kind, Message.body_text).where(Message.ticket_id == ticket_id).order_by(Message.id)
        )
        return [(kind, body) for kind, body in rows]


@pytest.mark.slow
async def test_triage_a_ticket_end_to_end(desk: Desk, world: World) -> None:
    ref = world.ref("billing")
    app = console(desk, "both")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_queue(pilot)
        ticket = await open_ticket(pilot, ref)
        await wait_for(pilot, lambda: "Invoice 2041 charged twice" in screen_text(app), "the subject drawn")

        # Reply through the review step.
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen), "the composer")
        await type_text(pilot, "We refunded the second charge.")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review step")
        await wait_for(pilot, lambda: "We refunded the second charge." in screen_text(app), "the text under review")
        await pilot.press("y")
        await wait_for(pilot, lambda: app.screen is ticket, "back on the ticket after sending")
        await wait_for(pilot, lambda: "We refunded the second charge." in screen_text(app), "the reply in the thread")

        # Transfer with a note, to a department the agent is also in (so the ticket stays in sight).
        await pilot.press("m")
        await choose(pilot, "Technical")
        await wait_for(pilot, lambda: app.screen.__class__.__name__ == "TextPrompt", "the transfer note prompt")
        await type_text(pilot, "Card network issue")
        await pilot.press("enter")
        technical = await department_id(desk, "Technical")

        async def moved() -> bool:
            return (await ticket_state(desk, ref))["department_id"] == technical

        await wait_for(pilot, lambda: ticket.detail.ticket.department == "Technical", "the transfer on screen")
        assert await moved()

        # Assign to a member of the new department.
        await pilot.press("a")
        await choose(pilot, "tech")
        await wait_for(pilot, lambda: ticket.detail.ticket.assignee == "tech", "the assignment on screen")

        # Resolve.
        await pilot.press("x")
        await wait_for(pilot, lambda: ticket.detail.ticket.status == "resolved", "the resolution on screen")

        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen), "back on the queues")

    state = await ticket_state(desk, ref)
    assert state["department_id"] == technical
    assert state["assignee_id"] == await agent_id(desk, "tech")
    assert state["status"] == "resolved"
    entries = await messages_of(desk, ref)
    assert ("reply", "We refunded the second charge.") in entries
    assert any(kind == "note" and "Card network issue" in body for kind, body in entries)


async def test_another_process_creating_a_ticket_shows_up_in_counts_and_queue(
    db_url: str, desk: Desk, world: World
) -> None:
    app = console(desk, "bill")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: screen.departments, "the department counts")
        before = next(item.new for item in screen.departments if item.department == "Billing")
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tui.cli", "--db", db_url, "ticket", "create", "--department", "Billing",
            "--from", "fresh@example.org", "--subject", "Arrived from another process", "--body", "Hello.",
            cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        ref = out.decode().strip()
        await wait_for(pilot, lambda: any(row.ref == ref for row in screen.rows), "the new ticket in the queue")
        await wait_for(
            pilot,
            lambda: next(item.new for item in screen.departments if item.department == "Billing") == before + 1,
            "the Billing count to grow",
        )
        await wait_for(pilot, lambda: "Arrived from another process" in screen_text(app), "the new row on screen")


async def test_an_agent_never_sees_another_departments_ticket_anywhere(desk: Desk, world: World) -> None:
    hidden = [world.ref("technical"), world.ref("returns"), "secret-alpha", "Router", "Return label"]

    def assert_nothing_hidden(where: str, typed: str = "") -> None:
        text = screen_text(app).replace(typed, "") if typed else screen_text(app)
        for secret in hidden:
            assert secret not in text, f"{secret!r} is visible on {where}:\n{text}"

    app = console(desk, "bill")
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: screen.departments, "the department counts")
        assert [item.department for item in screen.departments] == ["Billing"]
        assert {row.department for row in screen.rows} == {"Billing"}
        await wait_for(pilot, lambda: "Invoice 2041" in screen_text(app), "the Billing rows drawn")
        assert_nothing_hidden("the queue")
        for key in ("2", "3", "0", "1"):  # number keys past the agent's departments do nothing
            await pilot.press(key)
            await wait_for(pilot, lambda: screen.loaded, "the queue")
            assert_nothing_hidden(f"the queue after {key}")
        # Every status, and a text filter naming the hidden ticket.
        for _ in range(8):
            await pilot.press("f")
            await pilot.pause()
            assert_nothing_hidden("a status filter")
        await pilot.press("slash")
        await type_text(pilot, "secret-alpha")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.text == "secret-alpha" and screen.loaded and not screen.rows,
                       "an empty filtered queue")
        assert_nothing_hidden("a text search for the hidden subject", typed="/secret-alpha")
        await pilot.press("escape")
        await wait_for(pilot, lambda: screen.text is None and screen.rows, "the unfiltered queue")

        # The contact panel: the same contact wrote to Technical and Returns too.
        await open_ticket(pilot, world.ref("billing"))
        await wait_for(pilot, lambda: "OTHER TICKETS (0)" in screen_text(app), "the contact panel")
        assert_nothing_hidden("the ticket screen")

        # A change in another department does not reach this console's feed.
        await desk.reply("tech", world.ref("technical"), "Rebooted the router.")
        seen = app.last_event_id
        await wait_for(pilot, lambda: app.last_update is not None and app.polling is False, "a poll")
        await desk.note("bill", world.ref("billing"), "Marker note.")
        await wait_for(pilot, lambda: "Marker note." in screen_text(app), "the marker note (the feed moved on)")
        assert app.last_event_id > seen
        assert_nothing_hidden("the ticket screen after live updates")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        assert_nothing_hidden("the queue after live updates")

        # The command palette offers only the agent's departments.
        await pilot.press("ctrl+p")
        await pilot.pause()
        await type_text(pilot, "queue")
        await wait_for(pilot, lambda: "queue: Billing" in screen_text(app), "the palette's queue commands")
        assert "queue: Technical" not in screen_text(app) and "queue: Returns" not in screen_text(app)
        await pilot.press("escape")


async def test_marked_tickets_are_acted_on_together(desk: Desk, world: World) -> None:
    app = console(desk, "bill")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: len(screen.rows) == 2, "both Billing tickets")
        await pilot.press("g", "space", "space")
        assert screen.marks == {world.ref("billing"), world.ref("billing2")}
        await pilot.press("i")  # take both
        await wait_for(pilot, lambda: all(row.assignee == "bill" for row in screen.rows), "both taken")
        assert not screen.marks
    bill = await agent_id(desk, "bill")
    for name in ("billing", "billing2"):
        assert (await ticket_state(desk, world.ref(name)))["assignee_id"] == bill


async def test_a_kept_draft_survives_a_restart_and_another_agents_change(desk: Desk, world: World) -> None:
    ref = world.ref("billing")
    app = console(desk, "bill")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_queue(pilot)
        await open_ticket(pilot, ref)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen), "the composer")
        await type_text(pilot, "Half written answer")
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review step")
        await pilot.press("p")
        await wait_for(pilot, lambda: isinstance(app.screen, TicketScreen), "back on the ticket")
    assert await desk.draft("bill", ref, "reply") == "Half written answer"

    await desk.assign("sup", ref, "sup")  # another agent changes the ticket meanwhile

    app = console(desk, "bill")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_queue(pilot)
        await open_ticket(pilot, ref)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen), "the composer")
        composer = app.screen
        await wait_for(pilot, lambda: composer.body == "Half written answer", "the kept draft in the editor")
        await type_text(pilot, " now done")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, ReviewScreen), "the review step")
        await pilot.press("y")
        await wait_for(pilot, lambda: isinstance(app.screen, TicketScreen), "back on the ticket")
    assert ("reply", "Half written answer now done") in await messages_of(desk, ref)
    assert await desk.draft("bill", ref, "reply") is None


async def test_two_agents_on_one_ticket_both_see_the_collision_notice(desk: Desk, world: World) -> None:
    ref = world.ref("billing")
    first, second = console(desk, "bill"), console(desk, "sup")
    async with first.run_test(size=(80, 24)) as one, second.run_test(size=(80, 24)) as two:
        await wait_for_queue(one)
        await wait_for_queue(two)
        await open_ticket(one, ref)
        await open_ticket(two, ref)
        await wait_for(one, lambda: "sup is viewing" in screen_text(first), "bill told that sup is viewing")
        await wait_for(two, lambda: "bill is viewing" in screen_text(second), "sup told that bill is viewing")
        await two.press("r")
        await wait_for(one, lambda: "sup is replying" in screen_text(first), "bill told that sup is replying")


async def test_an_error_from_the_desk_is_one_sentence_and_the_console_keeps_running(
    desk: Desk, world: World
) -> None:
    ref = world.ref("billing")
    app = console(desk, "bill", live=False)  # not live: the screen keeps the version it read
    async with app.run_test(size=(120, 30)) as pilot:
        await wait_for_queue(pilot)
        ticket = await open_ticket(pilot, ref)
        seen_version = ticket.detail.ticket.version
        await desk.set_priority("sup", ref, "high")  # someone else changes it; our screen is stale
        assert (await ticket_state(desk, ref))["version"] != seen_version
        assert ticket.detail.ticket.version == seen_version
        await pilot.press("x")
        await wait_for(
            pilot, lambda: any("changed" in str(n.message) for n in app._notifications), "a conflict notification"
        )
        assert app.is_running
        assert (await ticket_state(desk, ref))["status"] == "new"


async def test_queue_pages_in_as_the_cursor_moves(desk: Desk, world: World) -> None:
    from tests.desk_fixtures import new_ticket

    for number in range(25):
        await new_ticket(desk, "Billing", f"Bulk ticket {number}")
    app = console(desk, "bill", page_size=10)
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        assert len(screen.rows) < 27, "the first page holds ten rows (and the next may be on its way)"
        for _ in range(30):
            await pilot.press("j")
        await wait_for(pilot, lambda: len(screen.rows) == 27 and screen.next_cursor is None, "every page loaded")
        expected = await desk.queue("bill", QueueFilter(limit=100, statuses=("new", "open", "pending")))
        assert [row.ref for row in screen.rows] == [row.ref for row in expected.rows]



async def test_live_updates_keep_the_cursor_and_marks_and_refresh_an_open_thread(desk: Desk, world: World) -> None:
    from tests.desk_fixtures import new_ticket

    app = console(desk, "bill")
    async with app.run_test(size=(120, 30)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: len(screen.rows) == 2, "both Billing tickets")
        await pilot.press("g", "space")  # mark the first row; the cursor moves to the second
        marked = screen.rows[0].ref
        under_cursor = screen.current_row().ref
        fresh = await new_ticket(desk, "Billing", "Live arrival")
        await wait_for(pilot, lambda: screen.rows and screen.rows[0].ref == fresh.ref, "the new ticket on top")
        assert screen.current_row().ref == under_cursor, "the cursor stays on the same ticket"
        assert screen.marks == {marked}
        await wait_for(pilot, lambda: "updated " in screen_text(app) and " ago" in screen_text(app), "the age line")

        ticket = await open_ticket(pilot, under_cursor)
        await desk.note("sup", under_cursor, "Written by a supervisor elsewhere.")
        await wait_for(pilot, lambda: "Written by a supervisor elsewhere." in screen_text(app), "the live note")
        assert app.screen is ticket


async def test_a_long_thread_opens_at_its_newest_entry_and_still_scrolls_up(desk: Desk, world: World) -> None:
    from tests.desk_fixtures import new_ticket

    long = await new_ticket(desk, "Billing", "A long conversation", "First words of the customer.")
    for number in range(30):
        await desk.note("bill", long.ref, f"Note number {number} on this ticket.")
    app = console(desk, "bill")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_queue(pilot)
        # The first open makes the (reused) ticket screen; the second is the one with a known size.
        await open_ticket(pilot, world.ref("billing2"))
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen), "back on the queue")
        await pilot.press("g")
        ticket = await open_ticket(pilot, long.ref)
        thread = ticket.query_one("#thread")
        await wait_for(pilot, lambda: "Note number 29 on this ticket." in screen_text(app), "the newest note")
        assert "First words of the customer." not in screen_text(app)
        assert thread.scroll_y > 0
        for _ in range(5):
            await pilot.press("k")
        await wait_for(pilot, lambda: thread.scroll_y < thread.max_scroll_y, "scrolled up")
        await pilot.press("g")
        await wait_for(pilot, lambda: "First words of the customer." in screen_text(app), "the top of the thread")
        await pilot.press("G")
        await wait_for(pilot, lambda: "Note number 29 on this ticket." in screen_text(app), "the bottom again")
