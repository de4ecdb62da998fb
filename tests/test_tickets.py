"""Ticket life: creation, replies and notes, transfer, assignment, status, tags, priority, events, counters, paging.

Most tests share one desk per back end (`shared`) and work on tickets they
create themselves, so the module stays fast on PostgreSQL; counts are checked
as differences, and `check_counters` against the whole desk.
"""

from __future__ import annotations

import base64
import json
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from core import Desk
from core.errors import BadArgument, DeskError, NotFound
from core.policy import Actor
from core.views import QueueFilter
from storage.database import Database
from storage.models import Contact, Event
from tests.desk_fixtures import (
    World,
    build_world,
    event_count,
    module_db_url,  # noqa: F401  (fixture)
    new_ticket,
    set_ticket_columns,
    ticket_columns,
)

shared_loop = pytest.mark.asyncio(loop_scope="module")


class Shared:
    """The module's desk, and a maker of fresh tickets so tests never share one."""

    def __init__(self, desk: Desk, world: World) -> None:
        self.desk = desk
        self.world = world
        self._serial = 0

    async def fresh(self, department: str = "Billing", *, contact: str | None = None, **fields: Any) -> str:
        self._serial += 1
        row = await new_ticket(
            self.desk, department, f"Fresh ticket {self._serial}", f"Body {self._serial}",
            contact=contact or f"fresh{self._serial}@example.org", **fields,
        )
        return row.ref


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(module_db_url: str) -> Any:  # noqa: F811
    desk = Desk(Database(module_db_url))
    await desk.init()
    world = await build_world(desk)
    yield Shared(desk, world)
    await desk.close()


async def counts_of(desk: Desk, who: str) -> dict[str, Any]:
    return {c.department: c for c in await desk.counts(who)}


async def all_rows(desk: Desk, who: str, **filters: Any) -> list[Any]:
    return list((await desk.queue(who, QueueFilter(limit=500, **filters))).rows)


async def history(desk: Desk, who: str, ref: str) -> list[Any]:
    return list((await desk.ticket(who, ref)).events)


# -- creation ------------------------------------------------------------------------


@shared_loop
async def test_create_upserts_the_contact_with_a_lowercased_email(shared: Shared) -> None:
    desk = shared.desk
    first = await new_ticket(desk, "Billing", "Where is my invoice", contact="Mixed.Case@Example.ORG", name="Mia")
    second = await new_ticket(desk, "Technical", "Also broken", contact="  mixed.case@example.org ", name="Other")
    assert first.contact == second.contact == "mixed.case@example.org"
    assert first.contact_name == second.contact_name == "Mia"  # the first name given sticks
    async with desk.db.reading() as session:
        emails = (await session.execute(select(Contact.email))).scalars().all()
    assert Counter(emails)["mixed.case@example.org"] == 1
    assert all(email == email.lower() for email in emails)
    detail = await desk.ticket("both", first.ref)
    assert [row.ref for row in detail.other_tickets] == [second.ref]


@shared_loop
async def test_create_fills_a_missing_contact_name_later(shared: Shared) -> None:
    desk = shared.desk
    first = await new_ticket(desk, "Billing", "No name yet", contact="anon@example.org")
    second = await new_ticket(desk, "Billing", "Now with name", contact="anon@example.org", name="Ann Onym")
    assert first.contact_name == ""
    assert second.contact_name == "Ann Onym"
    assert (await desk.ticket("bill", first.ref)).contact.name == "Ann Onym"


@shared_loop
async def test_create_makes_a_new_ticket_with_one_customer_message_an_event_and_counts(shared: Shared) -> None:
    desk = shared.desk
    before = await counts_of(desk, "both")
    row = await new_ticket(desk, "Technical", "  Printer   on fire ", "Smoke everywhere.", contact="p@example.org")
    assert (row.subject, row.status, row.priority, row.department, row.message_count) == (
        "Printer on fire", "new", "normal", "Technical", 1,
    )
    assert row.assignee is None and row.tags == ()
    detail = await desk.ticket("tech", row.ref)
    assert [(m.kind, m.author, m.body) for m in detail.messages] == [("customer", "p@example.org", "Smoke everywhere.")]
    assert [e.kind for e in detail.events] == ["ticket.created"]
    assert detail.events[0].data["department"] == "Technical"
    assert detail.events[0].data["contact"] == "p@example.org"
    after = await counts_of(desk, "both")
    assert after["Technical"].new == before["Technical"].new + 1
    assert after["Technical"].unassigned == before["Technical"].unassigned + 1
    assert after["Billing"] == before["Billing"]
    assert await desk.check_counters(repair=False) == 0


@shared_loop
@pytest.mark.parametrize(
    ("field", "value"),
    [("subject", "   "), ("contact_email", "not-an-address"), ("department", "Nowhere"), ("priority", "meh"),
     ("channel", "pigeon")],
)
async def test_create_refuses_unusable_intake_and_writes_nothing(shared: Shared, field: str, value: str) -> None:
    from core.views import Intake

    desk = shared.desk
    intake = Intake(department="Billing", contact_email="refused@example.org", subject="Hello", body="x")
    intake = Intake(**{**intake.__dict__, field: value})
    events_before = await event_count(desk)
    counts_before = await counts_of(desk, "both")
    with pytest.raises((BadArgument, NotFound)):
        await desk.create_ticket(Actor.system(), intake)
    assert await event_count(desk) == events_before
    assert await counts_of(desk, "both") == counts_before
    async with desk.db.reading() as session:
        assert (await session.execute(select(Contact).where(Contact.email == "refused@example.org"))).first() is None


# -- replies and notes ----------------------------------------------------------------


@shared_loop
async def test_reply_opens_a_new_ticket_and_sets_first_response_once(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh("Billing", contact="reply@example.org")
    assert (await ticket_columns(desk, ref))["first_response_at"] is None
    row = await desk.reply("bill", ref, "Refund on its way.")
    assert (row.status, row.message_count) == ("open", 2)
    first = await ticket_columns(desk, ref)
    assert first["first_response_at"] is not None
    assert first["last_agent_reply_at"] == first["first_response_at"]
    await desk.set_status("bill", ref, "pending")
    row = await desk.reply("sup", ref, "Anything else?")
    assert (row.status, row.message_count) == ("pending", 3)  # a later reply keeps the chosen status
    second = await ticket_columns(desk, ref)
    assert second["first_response_at"] == first["first_response_at"]
    assert second["last_agent_reply_at"] > first["last_agent_reply_at"]
    detail = await desk.ticket("bill", ref)
    assert [(m.kind, m.author) for m in detail.messages] == [
        ("customer", "reply@example.org"), ("reply", "bill"), ("reply", "sup"),
    ]
    assert await desk.check_counters(repair=False) == 0


@shared_loop
async def test_reply_can_set_the_status_in_the_same_change(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    events_before = await event_count(desk, ref)
    row = await desk.reply("bill", ref, "Done, closing.", status="resolved")
    assert row.status == "resolved"
    assert (await ticket_columns(desk, ref))["resolved_at"] is not None
    assert await event_count(desk, ref) == events_before + 1
    before = await ticket_columns(desk, ref)
    with pytest.raises(BadArgument):
        await desk.reply("bill", ref, "x", status="finished")
    assert await ticket_columns(desk, ref) == before


@shared_loop
async def test_note_changes_no_status_and_is_not_a_first_response(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh("Technical")
    new_before = (await counts_of(desk, "tech"))["Technical"].new
    row = await desk.note("tech", ref, "Customer is on firmware 1.2")
    assert (row.status, row.message_count) == ("new", 2)
    columns = await ticket_columns(desk, ref)
    assert columns["first_response_at"] is None
    assert columns["last_agent_reply_at"] is None
    detail = await desk.ticket("tech", ref)
    assert [(m.kind, m.author, m.body) for m in detail.messages][-1] == ("note", "tech", "Customer is on firmware 1.2")
    assert detail.events[-1].kind == "ticket.noted"
    assert (await counts_of(desk, "tech"))["Technical"].new == new_before


@shared_loop
@pytest.mark.parametrize("body", ["", "   \n\t"])
async def test_empty_reply_or_note_is_refused_and_writes_nothing(shared: Shared, body: str) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    before = await ticket_columns(desk, ref)
    for call in (desk.reply, desk.note):
        with pytest.raises(BadArgument):
            await call("bill", ref, body)
    assert await ticket_columns(desk, ref) == before
    assert len((await desk.ticket("bill", ref)).messages) == 1


# -- transfer --------------------------------------------------------------------------


@shared_loop
async def test_transfer_keeps_thread_notes_tags_and_contact_and_history_shows_it(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh("Billing", contact="moving@example.org")
    await desk.reply("bill", ref, "Looking into it.")
    await desk.note("bill", ref, "Ledger shows two charges.")
    await desk.tag("bill", ref, add=["refund", "urgent-ish"])
    await desk.assign("bill", ref, "bill")
    before = await desk.ticket("bill", ref)
    counts_before = await counts_of(desk, "both")

    row = await desk.transfer("bill", ref, "Technical", note="Payment gateway bug, please check.")

    assert row.department == "Technical"
    assert row.assignee is None  # bill is not in Technical
    assert row.tags == ("refund", "urgent-ish")
    after = await desk.ticket("tech", ref)
    assert after.contact == before.contact
    assert [(m.id, m.kind, m.author, m.body) for m in after.messages[: len(before.messages)]] == [
        (m.id, m.kind, m.author, m.body) for m in before.messages
    ]
    assert [m.kind for m in before.messages] == ["customer", "reply", "note"]
    assert [(m.kind, m.author, m.body) for m in after.messages[len(before.messages):]] == [
        ("note", "bill", "Payment gateway bug, please check.")
    ]
    assert [e.id for e in after.events[: len(before.events)]] == [e.id for e in before.events]
    transfer = after.events[-1]
    assert transfer.kind == "ticket.transferred"
    assert transfer.actor == "bill"
    assert (transfer.data["from"], transfer.data["to"]) == ("Billing", "Technical")
    assert transfer.data["changes"]["assignee_id"]["after"] is None
    assert len(after.events) == len(before.events) + 1

    with pytest.raises(NotFound):
        await desk.ticket("bill", ref)
    assert ref not in {r.ref for r in await all_rows(desk, "bill")}
    assert ref in {r.ref for r in await all_rows(desk, "tech", department="Technical")}
    counts_after = await counts_of(desk, "both")
    assert counts_after["Billing"].open == counts_before["Billing"].open - 1
    assert counts_after["Technical"].open == counts_before["Technical"].open + 1
    assert counts_after["Technical"].unassigned == counts_before["Technical"].unassigned + 1
    assert await desk.check_counters(repair=False) == 0


@shared_loop
async def test_transfer_keeps_an_assignee_who_is_a_member_of_the_target(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    await desk.assign("bill", ref, "both")
    row = await desk.transfer("bill", ref, "technical")  # by slug, any case
    assert (row.department, row.assignee) == ("Technical", "both")
    assert "assignee_id" not in (await history(desk, "both", ref))[-1].data["changes"]


@shared_loop
@pytest.mark.parametrize(("target", "error"), [("Billing", BadArgument), ("Nowhere", NotFound)])
async def test_transfer_to_same_or_unknown_department_is_refused(shared: Shared, target: str, error: type) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    before = await ticket_columns(desk, ref)
    with pytest.raises(error):
        await desk.transfer("bill", ref, target, note="should not be stored")
    assert await ticket_columns(desk, ref) == before
    assert [m.kind for m in (await desk.ticket("bill", ref)).messages] == ["customer"]


# -- assignment, status, priority, tags ------------------------------------------------------


@shared_loop
async def test_assign_and_unassign(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    mine_before = (await counts_of(desk, "sup"))["Billing"].mine
    row = await desk.assign("bill", ref, "SUP")  # handles are case-insensitive
    assert row.assignee == "sup"
    assert (await counts_of(desk, "sup"))["Billing"].mine == mine_before + 1
    events = await event_count(desk, ref)
    await desk.assign("bill", ref, "sup")  # no change, no event
    assert await event_count(desk, ref) == events
    row = await desk.assign("bill", ref, None)
    assert row.assignee is None
    last = (await history(desk, "bill", ref))[-1]
    assert last.kind == "ticket.unassigned"
    assert last.data["changes"]["assignee_id"]["after"] is None
    assert (await counts_of(desk, "sup"))["Billing"].mine == mine_before
    assert await desk.check_counters(repair=False) == 0


@shared_loop
@pytest.mark.parametrize("assignee", ["tech", "nobody", "ghost"])
async def test_assigning_to_a_non_member_is_refused(shared: Shared, assignee: str) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    before = await ticket_columns(desk, ref)
    with pytest.raises((BadArgument, NotFound)) as error:
        await desk.assign("bill", ref, assignee)
    if assignee != "ghost":
        assert type(error.value) is BadArgument
    assert await ticket_columns(desk, ref) == before


@shared_loop
async def test_deactivated_agent_cannot_be_assigned(shared: Shared) -> None:
    desk = shared.desk
    operator = Actor.operator()
    await desk.add_agent(operator, "gone", name="Gone", email="gone@desk.example", departments=["Billing"])
    await desk.set_agent(operator, "gone", active=False)
    ref = await shared.fresh()
    with pytest.raises(DeskError):
        await desk.assign("bill", ref, "gone")
    assert (await ticket_columns(desk, ref))["assignee_id"] is None


@shared_loop
async def test_status_changes_set_and_clear_resolution_timestamps(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh("Returns")
    closed_before = (await counts_of(desk, "boss"))["Returns"].closed
    await desk.set_status("boss", ref, "resolved")
    resolved = await ticket_columns(desk, ref)
    assert resolved["status"] == "resolved" and resolved["resolved_at"] is not None and resolved["closed_at"] is None
    await desk.set_status("boss", ref, "closed")
    closed = await ticket_columns(desk, ref)
    assert closed["closed_at"] is not None
    assert closed["resolved_at"] == resolved["resolved_at"]  # closing keeps the resolution time
    await desk.set_status("boss", ref, "open")  # reopened
    reopened = await ticket_columns(desk, ref)
    assert (reopened["status"], reopened["resolved_at"], reopened["closed_at"]) == ("open", None, None)
    await desk.set_status("boss", ref, "closed")  # closed straight from open: resolved too
    closed_again = await ticket_columns(desk, ref)
    assert closed_again["resolved_at"] is not None and closed_again["closed_at"] is not None
    assert (await counts_of(desk, "boss"))["Returns"].closed == closed_before + 1
    with pytest.raises(BadArgument):
        await desk.set_status("boss", ref, "done")
    assert (await ticket_columns(desk, ref)) == closed_again
    assert await desk.check_counters(repair=False) == 0


@shared_loop
async def test_priority_changes_and_bad_priority_is_refused(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh("Technical")
    assert (await desk.set_priority("tech", ref, "URGENT")).priority == "urgent"
    assert (await ticket_columns(desk, ref))["priority"] == 3
    last = (await history(desk, "tech", ref))[-1]
    assert last.data["changes"] == {"priority": {"before": 1, "after": 3}}
    with pytest.raises(BadArgument):
        await desk.set_priority("tech", ref, "asap")
    assert (await ticket_columns(desk, ref))["priority"] == 3


@shared_loop
async def test_tags_are_normalised_and_adding_or_removing_is_idempotent(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    row = await desk.tag("bill", ref, add=["  Big   Deal ", "VIP-Gold", "vip-gold"])
    assert row.tags == ("big-deal", "vip-gold")
    events = await event_count(desk, ref)
    version = row.version
    row = await desk.tag("bill", ref, add=["Vip-Gold"], remove=["not-there"])  # nothing changes
    assert row.tags == ("big-deal", "vip-gold")
    assert (await event_count(desk, ref), row.version) == (events, version)
    row = await desk.tag("bill", ref, remove=["BIG deal"])
    assert row.tags == ("vip-gold",)
    last = (await history(desk, "bill", ref))[-1]
    assert (last.kind, last.data["added"], last.data["removed"]) == ("ticket.tagged", [], ["big-deal"])
    assert [r.ref for r in await all_rows(desk, "bill", tag="VIP-GOLD")] == [ref]
    for bad in ("a,b", "", "x" * 101):
        with pytest.raises(BadArgument):
            await desk.tag("bill", ref, add=[bad])
    assert (await desk.ticket("bill", ref)).ticket.tags == ("vip-gold",)
    assert await event_count(desk, ref) == events + 1


# -- every change appends exactly one event with before/after ----------------------------------

CHANGES: dict[str, tuple[Any, str, dict[str, tuple[Any, Any]]]] = {
    # call, event kind, {field: (before, after)}; "*" means "any non-None value"
    "reply": (lambda d, r: d.reply("bill", r, "hi"), "ticket.replied",
              {"status": ("new", "open"), "message_count": (1, 2), "first_response_at": (None, "*"),
               "last_agent_reply_at": (None, "*")}),
    "note": (lambda d, r: d.note("bill", r, "hm"), "ticket.noted", {"message_count": (1, 2)}),
    "status": (lambda d, r: d.set_status("bill", r, "resolved"), "ticket.status",
               {"status": ("new", "resolved"), "resolved_at": (None, "*")}),
    "priority": (lambda d, r: d.set_priority("bill", r, "high"), "ticket.priority", {"priority": (1, 2)}),
    "assign": (lambda d, r: d.assign("bill", r, "both"), "ticket.assigned", {"assignee_id": (None, "*")}),
    "transfer": (lambda d, r: d.transfer("bill", r, "Returns"), "ticket.transferred", {"department_id": ("*", "*")}),
    "tag": (lambda d, r: d.tag("bill", r, add=["x"]), "ticket.tagged", {}),
}


@shared_loop
@pytest.mark.parametrize("change", CHANGES)
async def test_every_change_appends_exactly_one_event_with_before_and_after(shared: Shared, change: str) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    call, kind, expected = CHANGES[change]
    before_total = await event_count(desk)
    version = (await ticket_columns(desk, ref))["version"]
    row = await call(desk, ref)
    assert await event_count(desk) == before_total + 1
    assert row.version == version + 1
    async with desk.db.reading() as session:
        event = (await session.execute(select(Event).order_by(Event.id.desc()).limit(1))).scalar_one()
        assert (event.kind, event.ticket_id, event.data["by"]) == (kind, row.id, "bill")
        assert event.actor_id is not None
        changes = event.data["changes"]
    assert set(changes) == set(expected)
    for field, (old, new) in expected.items():
        for side, value in (("before", old), ("after", new)):
            if value == "*":
                assert changes[field][side] is not None
            else:
                assert changes[field][side] == value
        assert changes[field]["before"] != changes[field]["after"]
    json.dumps(changes)  # history is stored and shown as JSON


@shared_loop
async def test_a_change_that_changes_nothing_appends_no_event(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    await desk.set_priority("bill", ref, "high")
    await desk.set_status("bill", ref, "open")
    events, version = await event_count(desk), (await ticket_columns(desk, ref))["version"]
    await desk.set_priority("bill", ref, "high")
    await desk.set_status("bill", ref, "open")
    await desk.assign("bill", ref, None)
    await desk.tag("bill", ref, remove=["never-there"])
    assert await event_count(desk) == events
    assert (await ticket_columns(desk, ref))["version"] == version


@shared_loop
async def test_ticket_history_lists_every_event_of_the_ticket(shared: Shared) -> None:
    desk = shared.desk
    ref = await shared.fresh()
    await desk.reply("bill", ref, "a")
    await desk.tag("bill", ref, add=["t"])
    await desk.transfer("bill", ref, "Technical")
    async with desk.db.reading() as session:
        stored = (
            await session.execute(
                select(Event.kind).where(Event.ticket_id == int(ref.split("-")[1])).order_by(Event.id)
            )
        ).scalars().all()
    assert [e.kind for e in await history(desk, "tech", ref)] == list(stored) == [
        "ticket.created", "ticket.replied", "ticket.tagged", "ticket.transferred",
    ]


# -- counters against the truth, after any sequence of operations (SQLite, hypothesis) ----------------

OPERATION = st.one_of(
    st.tuples(st.just("create"), st.sampled_from(["Billing", "Technical", "Returns"])),
    st.tuples(st.just("reply"), st.integers(0, 50)),
    st.tuples(st.just("note"), st.integers(0, 50)),
    st.tuples(st.just("transfer"), st.integers(0, 50), st.sampled_from(["Billing", "Technical", "Returns"])),
    st.tuples(st.just("assign"), st.integers(0, 50), st.sampled_from(["all", "bill", "tech", None])),
    st.tuples(
        st.just("status"), st.integers(0, 50),
        st.sampled_from(["new", "open", "pending", "resolved", "closed", "spam"]),
    ),
    st.tuples(st.just("priority"), st.integers(0, 50), st.sampled_from(["low", "normal", "high", "urgent"])),
    st.tuples(st.just("tag"), st.integers(0, 50), st.sampled_from(["a", "b"])),
)


@pytest.fixture
async def sqlite_world(tmp_path: Path) -> Any:
    desk = Desk(Database(f"sqlite:///{tmp_path / 'counters.sqlite3'}"))
    await desk.init()
    world = await build_world(desk)
    await desk.add_agent(
        Actor.operator(), "all", name="All", email="all@desk.example", departments=["Billing", "Technical", "Returns"]
    )
    yield desk, [ticket.ref for ticket in world.tickets.values()]
    await desk.close()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=st.lists(OPERATION, min_size=1, max_size=15))
async def test_queue_counters_equal_recomputed_counts_after_any_operations(
    sqlite_world: Any, operations: list[tuple[Any, ...]]
) -> None:
    """One desk across examples: the counters must stay right however long the history gets."""
    desk, refs = sqlite_world
    for operation in operations:
        kind, *args = operation
        ref = refs[args[0] % len(refs)] if kind != "create" else ""
        try:
            match kind:
                case "create":
                    refs.append((await new_ticket(desk, args[0], "generated")).ref)
                case "reply":
                    await desk.reply("all", ref, "reply")
                case "note":
                    await desk.note("all", ref, "note")
                case "transfer":
                    await desk.transfer("all", ref, args[1])
                case "assign":
                    await desk.assign("all", ref, args[1])
                case "status":
                    await desk.set_status("all", ref, args[1])
                case "priority":
                    await desk.set_priority("all", ref, args[1])
                case "tag":
                    await desk.tag("all", ref, add=[args[1]])
        except BadArgument:
            pass  # same-department transfer, assignee not in the department: refused, nothing written
        assert await desk.check_counters(repair=False) == 0, f"counters drifted after {operation}"
    # The counts an agent sees equal a count of the tickets the queue lists.
    rows = await all_rows(desk, "all")
    listed = Counter((row.department, row.status) for row in rows)
    for counts in await desk.counts("all"):
        for status in ("new", "open", "pending", "resolved", "closed", "spam"):
            assert getattr(counts, status) == listed[(counts.department, status)]
        assert counts.unassigned == sum(
            1 for row in rows
            if row.department == counts.department and row.assignee is None and row.status in ("new", "open", "pending")
        )


async def test_check_counters_notices_and_repairs_drift(desk: Desk) -> None:
    from sqlalchemy import update

    from storage.models import QueueCounter

    await build_world(desk)
    async with desk.db.writing() as session:
        await session.execute(update(QueueCounter).where(QueueCounter.status == "new").values(count=42))
    assert await desk.check_counters(repair=False) > 0
    assert await desk.check_counters(repair=True) > 0
    assert await desk.check_counters(repair=False) == 0
    assert {c.department: c.new for c in await desk.counts("both")} == {"Billing": 2, "Technical": 1}


# -- keyset paging ---------------------------------------------------------------------------

FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def expected_order(columns: list[dict[str, Any]], sort: str) -> list[int]:
    keyed = {
        "updated": lambda c: (-c["updated_at"].timestamp(), -c["id"]),
        "newest": lambda c: -c["id"],
        "oldest": lambda c: c["id"],
        "priority": lambda c: (-c["priority"], c["id"]),
        "due": lambda c: (c["resolution_due"] or FAR_FUTURE, c["id"]),
    }[sort]
    return [c["id"] for c in sorted(columns, key=keyed)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def paged(shared: Shared) -> tuple[Desk, list[dict[str, Any]]]:
    """Two departments of their own holding 22 tickets with tied priorities, tied update times and due times."""
    desk = shared.desk
    operator = Actor.operator()
    for name in ("Paging A", "Paging B"):
        await desk.add_department(operator, name, email=f"{name.replace(' ', '').lower()}@desk.example")
    await desk.add_agent(
        operator, "pager", name="Pager", email="pager@desk.example", departments=["Paging A", "Paging B"]
    )
    rng = random.Random(7)
    shared_time = datetime(2030, 5, 1, 12, 0, 0, 123456, tzinfo=UTC)
    base_due = datetime(2030, 6, 1, 9, 0, tzinfo=UTC)
    for index in range(22):
        row = await new_ticket(
            desk, rng.choice(["Paging A", "Paging B"]), f"Paged ticket {index}",
            priority=rng.choice(["low", "normal", "high", "urgent"]),
        )
        values: dict[str, Any] = {}
        if index % 3 == 0:
            values["updated_at"] = shared_time  # ties on the first sort key
        if index % 4 != 0:
            values["resolution_due"] = base_due + timedelta(hours=rng.choice([1, 2, 3]))  # ties too
        if values:
            await set_ticket_columns(desk, row.ref, **values)
    refs = [row.ref for row in await all_rows(desk, "pager")]
    return desk, [await ticket_columns(desk, ref) for ref in refs]


async def walk(desk: Desk, wanted: QueueFilter) -> list[int]:
    """Follow next_cursor from the first page to the last; the ids in the order shown."""
    seen: list[int] = []
    cursor = None
    for _ in range(200):
        page = await desk.queue("pager", replace(wanted, cursor=cursor))
        assert len(page.rows) <= wanted.limit
        seen.extend(row.id for row in page.rows)
        cursor = page.next_cursor
        if cursor is None:
            return seen
        assert len(page.rows) == wanted.limit, "only the last page may be short"
    raise AssertionError("paging never ended")


@shared_loop
@pytest.mark.parametrize("sort", ["updated", "newest", "oldest", "priority", "due"])
@pytest.mark.parametrize("limit", [1, 4, 7, 22])
async def test_keyset_pages_cover_the_queue_once_in_order(
    paged: tuple[Desk, list[dict[str, Any]]], sort: str, limit: int
) -> None:
    desk, columns = paged
    assert len(columns) == 22
    assert len({c["updated_at"] for c in columns}) < 22 and len({c["priority"] for c in columns}) < 22  # ties exist
    seen = await walk(desk, QueueFilter(sort=sort, limit=limit))  # type: ignore[arg-type]
    assert len(seen) == len(set(seen)), "a row appeared on two pages"
    assert seen == expected_order(columns, sort)


@shared_loop
async def test_keyset_paging_combines_with_filters(paged: tuple[Desk, list[dict[str, Any]]]) -> None:
    desk, columns = paged
    department_b = next(c["department_id"] for c in columns if c["id"] == max(c["id"] for c in columns))
    name = "Paging A" if department_b == min(c["department_id"] for c in columns) else "Paging B"
    seen = await walk(desk, QueueFilter(department=name, sort="priority", limit=3))
    expected = expected_order([c for c in columns if c["department_id"] == department_b], "priority")
    assert seen == expected and len(seen) > 3


@shared_loop
async def test_a_row_inserted_while_paging_neither_shifts_nor_repeats_rows(
    paged: tuple[Desk, list[dict[str, Any]]],
) -> None:
    desk, columns = paged
    first = await desk.queue("pager", QueueFilter(sort="oldest", limit=5))
    extra = await new_ticket(desk, "Paging A", "Arrived while paging")
    try:
        seen = [row.id for row in first.rows]
        cursor = first.next_cursor
        while cursor is not None:
            page = await desk.queue("pager", QueueFilter(sort="oldest", limit=5, cursor=cursor))
            seen.extend(row.id for row in page.rows)
            cursor = page.next_cursor
        assert seen == expected_order(columns, "oldest") + [extra.id]
    finally:
        await desk.transfer("pager", extra.ref, "Billing")  # out of the pager's queues again


def _b64(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@shared_loop
@pytest.mark.parametrize(
    ("sort", "cursor"),
    [
        ("updated", "not a cursor!"),
        ("updated", "%%%"),
        ("updated", _b64({"a": 1})),  # not a list
        ("updated", _b64([1])),  # wrong number of values
        ("newest", _b64([1, 2])),
        ("updated", _b64(["yesterday", 3])),  # wrong types
        ("priority", _b64([{"t": "2030-01-01T00:00:00+00:00"}, 3])),  # a cursor of another order
        ("priority", _b64(["high", "x"])),
        ("updated", _b64([{"t": "2030-01-01T00:00:00"}, 3])),  # a time without its zone
        ("due", _b64([{"t": "not a time"}, 1])),
        ("newest", _b64([None])),
        ("oldest", _b64([[1]])),
        ("oldest", _b64([True])),
        ("newest", _b64([10**30])),  # beyond BIGINT
    ],
)
async def test_bad_cursor_is_a_bad_argument(shared: Shared, sort: str, cursor: str) -> None:
    with pytest.raises(BadArgument):
        await shared.desk.queue("both", QueueFilter(sort=sort, cursor=cursor))  # type: ignore[arg-type]


@shared_loop
@pytest.mark.parametrize("wanted", [QueueFilter(limit=0), QueueFilter(limit=501), QueueFilter(sort="random")])  # type: ignore[arg-type]
async def test_bad_page_size_or_order_is_a_bad_argument(shared: Shared, wanted: QueueFilter) -> None:
    with pytest.raises(BadArgument):
        await shared.desk.queue("both", wanted)
