"""The department access matrix: agents × departments × every Desk path that takes an actor.

A ticket of another department must answer exactly like a ticket that does
not exist (same exception, same sentence), and nothing about it may leak
through queues, search, counts, the contact panel, attachments or the event
feed. Read paths share one desk per back end (`reading`); write paths share
another (`writing`) and act on a fresh ticket when the action is allowed, so
the matrix stays fast on PostgreSQL too.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio

from core import Desk
from core.errors import BadArgument, Forbidden, NotFound, UnknownAgent
from core.policy import Actor
from core.views import QueueFilter
from storage.database import Database
from tests.desk_fixtures import (
    AGENTS,
    DEPARTMENTS,
    SHARED_CONTACT,
    World,
    add_attachment,
    build_world,
    departments_of,
    module_db_url,  # noqa: F401  (fixture)
    new_ticket,
    second_module_db_url,  # noqa: F401  (fixture)
    ticket_state,
)

HANDLES = tuple(AGENTS)
WORLD_TICKETS = ("billing", "technical", "returns")
MISSING_REF = "TD-987654"
MISSING_ATTACHMENT = 987654

shared_loop = pytest.mark.asyncio(loop_scope="module")


@dataclass
class SharedDesk:
    desk: Desk
    world: World
    attachments: dict[str, int]
    contents: dict[str, bytes]


def visible(handle: str, ticket: str, world: World) -> bool:
    return world.department(ticket) in departments_of(handle)


async def _shared_desk(url: str) -> SharedDesk:
    desk = Desk(Database(url))
    await desk.init()
    world = await build_world(desk)
    # Give every world ticket something a filter can match: a tag, an assignee, an attachment.
    for name in ("billing", "technical"):
        await desk.tag("both", world.ref(name), add=["vip"])
        world.tickets[name] = await desk.assign("both", world.ref(name), "both")
    world.tickets["returns"] = await desk.tag("boss", world.ref("returns"), add=["vip"])
    attachments: dict[str, int] = {}
    contents: dict[str, bytes] = {}
    for name in WORLD_TICKETS:
        contents[name] = f"%PDF secret content of {name}".encode()
        attachments[name] = await add_attachment(desk, world.ref(name), contents[name], f"{name}.pdf")
    return SharedDesk(desk, world, attachments, contents)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def reading(module_db_url: str) -> AsyncIterator[SharedDesk]:  # noqa: F811
    """A desk only read from: the world never changes, so exact expectations hold."""
    shared = await _shared_desk(module_db_url)
    yield shared
    await shared.desk.close()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def writing(second_module_db_url: str) -> AsyncIterator[SharedDesk]:  # noqa: F811
    """A desk the write matrix changes: allowed actions work on fresh tickets, refused ones on the world."""
    shared = await _shared_desk(second_module_db_url)
    yield shared
    await shared.desk.close()


async def _raised(call: Awaitable[Any]) -> Exception:
    try:
        await call
    except Exception as error:  # noqa: BLE001 - the type is what we compare
        return error
    raise AssertionError("the call succeeded, but it must be refused")


async def assert_answers_like_missing(call: Callable[[str], Awaitable[Any]], ref: str) -> None:
    """`call(ref)` fails exactly as `call(<a ref that never existed>)` does."""
    real = await _raised(call(ref))
    missing = await _raised(call(MISSING_REF))
    assert type(missing) is NotFound, f"a missing ticket should be NotFound, got {missing!r}"
    assert type(real) is type(missing), f"{ref}: {real!r} differs from the missing ticket's {missing!r}"
    assert str(real).replace(ref, "<ref>") == str(missing).replace(MISSING_REF, "<ref>")


def refs_of(rows: Any) -> set[str]:
    return {row.ref for row in rows}


def visible_refs(handle: str, world: World, names: tuple[str, ...] | None = None) -> set[str]:
    return {
        ticket.ref
        for name, ticket in world.tickets.items()
        if (names is None or name in names) and ticket.department in departments_of(handle)
    }


# -- open a ticket -------------------------------------------------------------


@shared_loop
@pytest.mark.parametrize("ticket", WORLD_TICKETS)
@pytest.mark.parametrize("handle", HANDLES)
async def test_agent_opens_only_tickets_of_own_departments(reading: SharedDesk, handle: str, ticket: str) -> None:
    desk, world = reading.desk, reading.world
    ref = world.ref(ticket)
    if visible(handle, ticket, world):
        detail = await desk.ticket(handle, ref)
        assert detail.ticket.ref == ref
        assert detail.ticket.department == world.department(ticket)
        assert [message.kind for message in detail.messages] == ["customer"]
        assert [event.kind for event in detail.events][0] == "ticket.created"
    else:
        await assert_answers_like_missing(lambda r: desk.ticket(handle, r), ref)


@shared_loop
@pytest.mark.parametrize("form", ["{n}", "#TD-{n}", "[#TD-{n}]", "td-{n}"])
async def test_other_department_ticket_by_any_ref_form_answers_like_missing(reading: SharedDesk, form: str) -> None:
    desk, world = reading.desk, reading.world
    number = world.tickets["technical"].id
    ref = form.format(n=number)
    real = await _raised(desk.ticket("bill", ref))
    missing_ref = form.format(n=987654)
    missing = await _raised(desk.ticket("bill", missing_ref))
    assert type(real) is type(missing) is NotFound
    assert str(real).replace(ref, "<ref>") == str(missing).replace(missing_ref, "<ref>")
    # The same form works for someone who may see it.
    assert (await desk.ticket("tech", ref)).ticket.id == number


# -- queues, filters and search ---------------------------------------------------


@shared_loop
@pytest.mark.parametrize("handle", HANDLES)
async def test_queue_lists_exactly_the_tickets_of_own_departments(reading: SharedDesk, handle: str) -> None:
    page = await reading.desk.queue(handle, QueueFilter(limit=500))
    assert refs_of(page.rows) == visible_refs(handle, reading.world)
    assert page.next_cursor is None


@shared_loop
@pytest.mark.parametrize("department", DEPARTMENTS)
@pytest.mark.parametrize("handle", HANDLES)
async def test_queue_department_filter_refuses_other_departments_like_missing_ones(
    reading: SharedDesk, handle: str, department: str
) -> None:
    desk, world = reading.desk, reading.world
    wanted = QueueFilter(department=department, limit=500)
    if department in departments_of(handle):
        page = await desk.queue(handle, wanted)
        assert refs_of(page.rows) == {t.ref for t in world.tickets.values() if t.department == department}
        assert refs_of(page.rows)  # every department has tickets: an empty page would prove nothing
        return
    real = await _raised(desk.queue(handle, wanted))
    missing = await _raised(desk.queue(handle, QueueFilter(department="Nowhere", limit=500)))
    assert type(real) is type(missing) is NotFound
    assert str(real).replace(repr(department), "<d>") == str(missing).replace(repr("Nowhere"), "<d>")


QUEUE_FILTERS: dict[str, tuple[QueueFilter, tuple[str, ...]]] = {
    # filter, the world tickets it matches when access is ignored
    "status-new": (QueueFilter(statuses=("new",), limit=500), ("billing", "billing2", "technical", "returns")),
    "tag-vip": (QueueFilter(tag="vip", limit=500), ("billing", "technical", "returns")),
    "assignee-both": (QueueFilter(assignee="both", limit=500), ("billing", "technical")),
    "unassigned": (QueueFilter(unassigned=True, limit=500), ("billing2", "returns")),
    "text-subject": (QueueFilter(text="secret-alpha", limit=500), ("technical",)),
    "text-body": (QueueFilter(text="reboots hourly", limit=500), ("technical",)),
    "text-short": (QueueFilter(text="77", limit=500), ("billing2",)),
    "text-contact-subjects": (QueueFilter(text="label", limit=500), ("returns",)),
}


@shared_loop
@pytest.mark.parametrize("filter_name", QUEUE_FILTERS)
@pytest.mark.parametrize("handle", HANDLES)
async def test_queue_filters_and_search_never_reach_other_departments(
    reading: SharedDesk, handle: str, filter_name: str
) -> None:
    wanted, matching = QUEUE_FILTERS[filter_name]
    page = await reading.desk.queue(handle, wanted)
    assert refs_of(page.rows) == visible_refs(handle, reading.world, matching)


@shared_loop
async def test_agent_in_two_departments_sees_both(reading: SharedDesk) -> None:
    desk, world = reading.desk, reading.world
    page = await desk.queue("both", QueueFilter(limit=500))
    assert {row.department for row in page.rows} == {"Billing", "Technical"}
    counts = await desk.counts("both")
    assert [c.department for c in counts] == ["Billing", "Technical"]
    for name in ("billing", "technical"):
        assert (await desk.ticket("both", world.ref(name))).ticket.ref == world.ref(name)


# -- counts --------------------------------------------------------------------


@shared_loop
@pytest.mark.parametrize("handle", HANDLES)
async def test_counts_cover_only_own_departments(reading: SharedDesk, handle: str) -> None:
    counts = await reading.desk.counts(handle)
    assert [c.department for c in counts] == sorted(departments_of(handle))
    expected_new = {"Billing": 2, "Technical": 1, "Returns": 1}
    expected_unassigned = {"Billing": 1, "Technical": 0, "Returns": 1}
    expected_mine = {"Billing": 1, "Technical": 1, "Returns": 0} if handle == "both" else {}
    for row in counts:
        assert row.new == expected_new[row.department]
        assert (row.open, row.pending, row.resolved, row.closed, row.spam) == (0, 0, 0, 0, 0)
        assert row.unassigned == expected_unassigned[row.department]
        assert row.mine == expected_mine.get(row.department, 0)


# -- the contact panel ------------------------------------------------------------


WORLD_DEPARTMENTS = {"billing": "Billing", "technical": "Technical", "returns": "Returns"}
OWN_TICKETS = [
    (handle, ticket)
    for handle in HANDLES
    for ticket in WORLD_TICKETS
    if WORLD_DEPARTMENTS[ticket] in departments_of(handle)
]


@shared_loop
@pytest.mark.parametrize(("handle", "ticket"), OWN_TICKETS)
async def test_contact_other_tickets_hide_other_departments(reading: SharedDesk, handle: str, ticket: str) -> None:
    desk, world = reading.desk, reading.world
    assert world.department(ticket) == WORLD_DEPARTMENTS[ticket]
    detail = await desk.ticket(handle, world.ref(ticket))
    assert detail.contact.email == SHARED_CONTACT.lower()
    same_contact = ("billing", "technical", "returns")
    expected = visible_refs(handle, world, same_contact) - {world.ref(ticket)}
    assert refs_of(detail.other_tickets) == expected
    shown = json.dumps(detail.to_json(), ensure_ascii=False)
    for name in same_contact:
        if not visible(handle, name, world):
            assert world.tickets[name].subject not in shown
            assert world.ref(name) not in shown


# -- attachments -----------------------------------------------------------------


@shared_loop
@pytest.mark.parametrize("ticket", WORLD_TICKETS)
@pytest.mark.parametrize("handle", HANDLES)
async def test_attachment_follows_its_ticket_access(reading: SharedDesk, handle: str, ticket: str) -> None:
    desk, world = reading.desk, reading.world
    attachment_id = reading.attachments[ticket]
    if visible(handle, ticket, world):
        view, data = await desk.attachment(handle, attachment_id)
        assert data == reading.contents[ticket]
        assert view.filename == f"{ticket}.pdf"
        return
    real = await _raised(desk.attachment(handle, attachment_id))
    missing = await _raised(desk.attachment(handle, MISSING_ATTACHMENT))
    assert type(real) is type(missing) is NotFound
    assert re.sub(rf"\b{attachment_id}\b", "<id>", str(real)) == str(missing).replace(
        str(MISSING_ATTACHMENT), "<id>"
    )


# -- the event feed --------------------------------------------------------------


@shared_loop
@pytest.mark.parametrize("handle", HANDLES)
async def test_event_feed_carries_only_own_departments(reading: SharedDesk, handle: str) -> None:
    desk, world = reading.desk, reading.world
    feed = await desk.events_since(handle, 0)
    own = visible_refs(handle, world)
    assert {event.ticket_ref for event in feed if event.ticket_ref} == own
    others = [department for department in DEPARTMENTS if department not in departments_of(handle)]
    hidden_subjects = [t.subject for t in world.tickets.values() if t.ref not in own]
    for event in feed:
        text = json.dumps(event.data, ensure_ascii=False)
        assert not any(department in text for department in others), event
        assert not any(subject in text for subject in hidden_subjects), event
    if not departments_of(handle):
        assert feed == []


# -- every ticket action -----------------------------------------------------------


def _action(path: str, ticket_department: str, handle: str) -> Callable[[Desk, str], Awaitable[Any]]:
    """The call for one matrix path, with arguments that would succeed if access allowed it."""
    own = departments_of(handle)
    # Another department, the agent's own first: a refused transfer tries to pull the ticket in.
    target = next(d for d in (*own, *DEPARTMENTS) if d != ticket_department)
    calls: dict[str, Callable[[Desk, str], Awaitable[Any]]] = {
        "reply": lambda desk, ref: desk.reply(handle, ref, "We are on it."),
        "note": lambda desk, ref: desk.note(handle, ref, "internal: check the ledger"),
        "transfer": lambda desk, ref: desk.transfer(handle, ref, target),
        "assign": lambda desk, ref: desk.assign(handle, ref, handle if ticket_department in own else "both"),
        "unassign": lambda desk, ref: desk.assign(handle, ref, None),
        "set_status": lambda desk, ref: desk.set_status(handle, ref, "pending"),
        "set_priority": lambda desk, ref: desk.set_priority(handle, ref, "urgent"),
        "tag": lambda desk, ref: desk.tag(handle, ref, add=["matrix"], remove=["vip"]),
    }
    return calls[path]


ACTIONS = ("reply", "note", "transfer", "assign", "unassign", "set_status", "set_priority", "tag")


@shared_loop
@pytest.mark.parametrize("path", ACTIONS)
@pytest.mark.parametrize("ticket", WORLD_TICKETS)
@pytest.mark.parametrize("handle", HANDLES)
async def test_every_ticket_action_checks_the_department(
    writing: SharedDesk, handle: str, ticket: str, path: str
) -> None:
    desk, world = writing.desk, writing.world
    department = world.department(ticket)
    act = _action(path, department, handle)
    if department not in departments_of(handle):
        ref = world.ref(ticket)
        before = await ticket_state(desk, ref)
        await assert_answers_like_missing(lambda r: act(desk, r), ref)
        assert await ticket_state(desk, ref) == before, "a refused action must write nothing"
        return
    fresh = await new_ticket(desk, department, f"Matrix {path} by {handle}", contact="matrix@example.org")
    if path == "unassign":
        await desk.assign(handle, fresh.ref, handle)
    await desk.tag(handle, fresh.ref, add=["vip"])
    before = await ticket_state(desk, fresh.ref)
    row = await act(desk, fresh.ref)
    after = await ticket_state(desk, fresh.ref)
    assert after["version"] > before["version"]
    assert after["events"] == before["events"] + 1
    match path:
        case "reply":
            assert (row.status, row.message_count) == ("open", 2)
        case "note":
            assert (row.status, row.message_count) == ("new", 2)
        case "transfer":
            assert row.department != department
        case "assign":
            assert row.assignee == handle
        case "unassign":
            assert row.assignee is None
        case "set_status":
            assert row.status == "pending"
        case "set_priority":
            assert row.priority == "urgent"
        case "tag":
            assert row.tags == ("matrix",)


# -- deactivated agents and memberships that end ---------------------------------------


ALL_PATHS: dict[str, Callable[[Desk, Any, str], Awaitable[Any]]] = {
    "queue": lambda desk, who, ref: desk.queue(who, QueueFilter()),
    "queue-department": lambda desk, who, ref: desk.queue(who, QueueFilter(department="Billing")),
    "search": lambda desk, who, ref: desk.queue(who, QueueFilter(text="invoice")),
    "counts": lambda desk, who, ref: desk.counts(who),
    "show": lambda desk, who, ref: desk.ticket(who, ref),
    "events": lambda desk, who, ref: desk.events_since(who, 0),
    "reply": lambda desk, who, ref: desk.reply(who, ref, "hello"),
    "note": lambda desk, who, ref: desk.note(who, ref, "hello"),
    "transfer": lambda desk, who, ref: desk.transfer(who, ref, "Returns"),
    "assign": lambda desk, who, ref: desk.assign(who, ref, "bill"),
    "set_status": lambda desk, who, ref: desk.set_status(who, ref, "open"),
    "set_priority": lambda desk, who, ref: desk.set_priority(who, ref, "high"),
    "tag": lambda desk, who, ref: desk.tag(who, ref, add=["x"]),
}


@pytest.mark.parametrize("as_object", [False, True], ids=["handle", "logged-in-actor"])
async def test_deactivated_agent_is_refused_on_every_path(desk: Desk, operator: Actor, as_object: bool) -> None:
    world = await build_world(desk)
    ref = world.ref("billing")
    session_actor = await desk.login("bill")  # a TUI session logged in before the deactivation
    who: Any = session_actor if as_object else "bill"
    await desk.ticket(who, ref)  # works while active
    await desk.set_agent(operator, "bill", active=False)
    before = await ticket_state(desk, ref)
    for name, call in ALL_PATHS.items():
        with pytest.raises(UnknownAgent):
            await call(desk, who, ref)
            pytest.fail(f"{name} answered for a deactivated agent")
    assert await ticket_state(desk, ref) == before
    with pytest.raises(UnknownAgent):
        await desk.login("bill")


async def test_agent_loses_access_at_once_after_leaving(desk: Desk, operator: Actor) -> None:
    world = await build_world(desk)
    ref = world.ref("technical")
    session_actor = await desk.login("both")
    assert (await desk.ticket(session_actor, ref)).ticket.ref == ref
    assert ref in refs_of((await desk.queue(session_actor, QueueFilter())).rows)
    assert await desk.leave(operator, "both", "Technical") is True
    for who in (session_actor, "both"):
        await assert_answers_like_missing(lambda r, who=who: desk.ticket(who, r), ref)
        await assert_answers_like_missing(lambda r, who=who: desk.note(who, r, "still here?"), ref)
        assert ref not in refs_of((await desk.queue(who, QueueFilter())).rows)
        assert [c.department for c in await desk.counts(who)] == ["Billing"]
        with pytest.raises(NotFound):
            await desk.queue(who, QueueFilter(department="Technical"))
        assert all(event.ticket_ref != ref for event in await desk.events_since(who, 0))
    # Billing access is untouched.
    assert (await desk.ticket("both", world.ref("billing"))).ticket.department == "Billing"


async def test_agent_gains_access_at_once_after_joining(desk: Desk, operator: Actor) -> None:
    world = await build_world(desk)
    ref = world.ref("returns")
    session_actor = await desk.login("nobody")
    await assert_answers_like_missing(lambda r: desk.ticket(session_actor, r), ref)
    assert await desk.join(operator, "nobody", "Returns") is True
    assert (await desk.ticket(session_actor, ref)).ticket.ref == ref


async def test_transfer_event_is_seen_by_both_sides_but_later_events_only_by_the_new_department(
    desk: Desk,
) -> None:
    world = await build_world(desk)
    ref = world.ref("billing")
    start = await desk.latest_event_id()
    await desk.transfer("bill", ref, "Technical", note="over to you")
    await desk.note("tech", ref, "secret technical finding")
    bill_feed = await desk.events_since("bill", start)
    tech_feed = await desk.events_since("tech", start)
    assert [event.kind for event in bill_feed] == ["ticket.transferred"]
    assert [event.kind for event in tech_feed] == ["ticket.transferred", "ticket.noted"]
    await assert_answers_like_missing(lambda r: desk.ticket("bill", r), ref)


# -- administration ----------------------------------------------------------------------


ADMIN_OPERATIONS: dict[str, Callable[[Desk, Any, str], Awaitable[Any]]] = {
    "add_department": lambda desk, who, tag: desk.add_department(who, f"Dept {tag}", email=f"d-{tag}@desk.example"),
    "add_agent": lambda desk, who, tag: desk.add_agent(
        who, f"new-{tag}", name="New", email=f"new-{tag}@desk.example", departments=["Billing"]
    ),
    "join": lambda desk, who, tag: desk.join(who, "nobody", "Billing"),
    "leave": lambda desk, who, tag: desk.leave(who, "bill", "Billing"),
    "set_agent": lambda desk, who, tag: desk.set_agent(who, "tech", role="admin"),
}


@shared_loop
@pytest.mark.parametrize("operation", ADMIN_OPERATIONS)
@pytest.mark.parametrize("handle", ["bill", "both", "sup"])
async def test_admin_operations_are_forbidden_to_agents_and_supervisors(
    writing: SharedDesk, handle: str, operation: str
) -> None:
    desk = writing.desk
    operator = Actor.operator()
    departments_before = await desk.departments(operator)
    agents_before = await desk.agents(operator)
    with pytest.raises(Forbidden):
        await ADMIN_OPERATIONS[operation](desk, handle, handle)
    assert await desk.departments(operator) == departments_before
    assert await desk.agents(operator) == agents_before


ALLOWED_ADMIN_OPERATIONS: dict[str, Callable[[Desk, Any, str], Awaitable[Any]]] = {
    # Each works on agents of its own, so the shared desk's cast stays as the matrix expects.
    "add_department": lambda desk, who, tag: desk.add_department(who, f"Dept {tag}", email=f"d-{tag}@desk.example"),
    "add_agent": lambda desk, who, tag: desk.add_agent(
        who, f"new-{tag}", name="New", email=f"new-{tag}@desk.example", departments=["Billing"]
    ),
    "join": lambda desk, who, tag: desk.join(who, f"joiner-{tag}", "Billing"),
    "leave": lambda desk, who, tag: desk.leave(who, f"leaver-{tag}", "Billing"),
    "set_agent": lambda desk, who, tag: desk.set_agent(who, f"setter-{tag}", role="admin"),
}


@shared_loop
@pytest.mark.parametrize("operation", ALLOWED_ADMIN_OPERATIONS)
@pytest.mark.parametrize("who", ["boss", "operator"])
async def test_admin_operations_are_allowed_to_admins_and_the_operator(
    writing: SharedDesk, who: str, operation: str
) -> None:
    desk = writing.desk
    operator = Actor.operator()
    actor: Any = operator if who == "operator" else "boss"
    for prefix, departments in (("joiner", []), ("leaver", ["Billing"]), ("setter", [])):
        await desk.add_agent(
            operator, f"{prefix}-{who}-{operation}", name="X", email=f"{prefix}-{who}@desk.example",
            departments=departments,
        )
    tag = f"{who}-{operation}"
    await ALLOWED_ADMIN_OPERATIONS[operation](desk, actor, tag)
    departments = {d.name: d for d in await desk.departments(operator)}
    agents = {a.handle: a for a in await desk.agents(operator)}
    match operation:
        case "add_department":
            assert f"Dept {tag}" in departments
        case "add_agent":
            assert agents[f"new-{tag}"].departments == ("Billing",)
        case "join":
            assert agents[f"joiner-{tag}"].departments == ("Billing",)
        case "leave":
            assert agents[f"leaver-{tag}"].departments == ()
        case "set_agent":
            assert agents[f"setter-{tag}"].role == "admin"


async def test_demoted_admin_session_loses_admin_rights_at_once(desk: Desk, operator: Actor) -> None:
    await build_world(desk)
    session_actor = await desk.login("boss")
    await desk.add_department(session_actor, "Wholesale", email="wholesale@desk.example")
    await desk.set_agent(operator, "boss", role="agent")
    with pytest.raises(Forbidden):
        await desk.add_department(session_actor, "Retail", email="retail@desk.example")
    assert "Retail" not in {d.name for d in await desk.departments(operator)}


async def test_admin_sees_tickets_only_of_own_departments(desk: Desk) -> None:
    """Being an admin grants administration, not every department's tickets."""
    world = await build_world(desk)
    assert refs_of((await desk.queue("boss", QueueFilter())).rows) == {world.ref("returns")}
    await assert_answers_like_missing(lambda r: desk.ticket("boss", r), world.ref("billing"))


async def test_operator_sees_no_queue_and_no_ticket(desk: Desk, operator: Actor) -> None:
    world = await build_world(desk)
    assert (await desk.queue(operator, QueueFilter())).rows == ()
    assert await desk.counts(operator) == []
    await assert_answers_like_missing(lambda r: desk.ticket(operator, r), world.ref("billing"))


async def test_assigning_to_an_agent_of_another_department_is_refused(desk: Desk) -> None:
    world = await build_world(desk)
    ref = world.ref("billing")
    before = await ticket_state(desk, ref)
    with pytest.raises(BadArgument):
        await desk.assign("bill", ref, "tech")
    assert await ticket_state(desk, ref) == before
