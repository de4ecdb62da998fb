"""The demo desk: counters that match, members-only assignees, five languages, search, transfers, sequences, seeds."""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from core import Desk
from core.demo import DemoSummary, build_demo, romanise
from core.policy import Actor
from core.views import Intake, QueueFilter
from storage.database import Database
from storage.models import Agent, Contact, Department, Event, Membership, Message, Tag, Ticket, TicketTag

SIZE = 200
NOW = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)

SCRIPTS = {
    "th": re.compile(r"[\u0e00-\u0e7f]"),
    "ru": re.compile(r"[\u0400-\u04ff]"),
    "vi": re.compile(r"[ăơưđạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ]"),
    "da": re.compile(r"[æøå]"),
    "en": re.compile(r"\b(order|refund|invoice|password|parcel)\b"),
}


@pytest.fixture
async def demo(desk: Desk) -> DemoSummary:
    return await build_demo(desk, tickets=SIZE, seed=7, now=NOW)


async def _all_rows(desk: Desk, summary: DemoSummary, **filters: Any) -> list[Any]:
    """Every queue row the admin (a member of every department) sees for a filter, page by page."""
    rows: list[Any] = []
    cursor = None
    while True:
        page = await desk.queue(summary.admin, QueueFilter(limit=100, cursor=cursor, **filters))
        rows.extend(page.rows)
        if page.next_cursor is None:
            return rows
        cursor = page.next_cursor


async def test_summary_counts_what_was_written(desk: Desk, demo: DemoSummary) -> None:
    async with desk.db.reading() as session:
        tickets = (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()
        messages = (await session.execute(select(func.count()).select_from(Message))).scalar_one()
        departments = (await session.execute(select(func.count()).select_from(Department))).scalar_one()
        agents = (await session.execute(select(func.count()).select_from(Agent))).scalar_one()
    assert (tickets, messages, departments, agents) == (SIZE, demo.messages, 6, 20)
    assert demo.department_names == ("Sales", "Billing", "Technical", "Returns", "Wholesale", "VIP")
    assert 2.5 <= demo.messages / SIZE <= 3.5


async def test_counters_equal_the_tickets(desk: Desk, demo: DemoSummary) -> None:
    assert await desk.check_counters(repair=False) == 0
    counts = await desk.counts(demo.admin)
    assert len(counts) == 6
    assert sum(c.new + c.open + c.pending + c.resolved + c.closed + c.spam for c in counts) == SIZE
    assert sum(c.closed for c in counts) > 0 and sum(c.open + c.pending for c in counts) > 0


async def test_every_department_has_members_and_the_roles_are_there(desk: Desk, demo: DemoSummary) -> None:
    agents = {agent.handle: agent for agent in await desk.agents(demo.admin)}
    assert agents[demo.admin].role == "admin"
    assert len(agents[demo.admin].departments) == 6
    assert agents[demo.supervisor].role == "supervisor"
    assert len(agents[demo.supervisor].departments) >= 2
    assert sum(agent.role == "supervisor" for agent in agents.values()) >= 2
    assert any(len(agent.departments) > 1 for agent in agents.values() if agent.role == "agent")
    for department in await desk.departments(demo.admin):
        assert len(department.members) >= 2, department.name
        assert department.email.endswith("@northwind.example") and department.signature
    emails = {department.email for department in await desk.departments(demo.admin)}
    assert len(emails) == 6


async def test_assignees_and_reply_authors_are_members_of_the_department(desk: Desk, demo: DemoSummary) -> None:
    async with desk.db.reading() as session:
        assigned = (
            await session.execute(select(func.count()).select_from(Ticket).where(Ticket.assignee_id.is_not(None)))
        ).scalar_one()
        outsiders = (
            await session.execute(
                select(Ticket.id)
                .outerjoin(
                    Membership,
                    (Membership.agent_id == Ticket.assignee_id) & (Membership.department_id == Ticket.department_id),
                )
                .where(Ticket.assignee_id.is_not(None), Membership.agent_id.is_(None))
            )
        ).all()
        foreign_replies = (
            await session.execute(
                select(Message.id)
                .join(Ticket, Ticket.id == Message.ticket_id)
                .outerjoin(
                    Membership,
                    (Membership.agent_id == Message.author_agent_id)
                    & (Membership.department_id == Ticket.department_id),
                )
                .where(Message.kind == "reply", Membership.agent_id.is_(None))
            )
        ).all()
    assert assigned > SIZE // 2
    assert outsiders == []
    assert foreign_replies == []


async def test_all_five_languages_are_written(desk: Desk, demo: DemoSummary) -> None:
    async with desk.db.reading() as session:
        bodies = (await session.execute(select(Message.body_text))).scalars().all()
        attributes = (await session.execute(select(Contact.attributes))).scalars().all()
    assert {attribute["language"] for attribute in attributes} == set(SCRIPTS)
    # Stored like core stores text (NFC), or search for "hàng" would miss a decomposed "hàng".
    assert all(unicodedata.is_normalized("NFC", body) for body in bodies)
    for language, pattern in SCRIPTS.items():
        assert sum(bool(pattern.search(body)) for body in bodies) >= 5, language
    # Thai is written without spaces between words: a customer sentence is one long run.
    assert any(re.search(r"[\u0e00-\u0e7f]{25,}", body) for body in bodies)


async def test_search_finds_a_thai_phrase_and_a_vietnamese_word(desk: Desk, demo: DemoSummary) -> None:
    async with desk.db.reading() as session:
        thai_body, thai_ticket = (
            await session.execute(
                select(Message.body_text, Message.ticket_id)
                .where(Message.kind == "customer", Message.body_text.like("%คำสั่งซื้อ%"))
                .order_by(Message.id)
                .limit(1)
            )
        ).one()
        vietnamese_subjects = (
            await session.execute(select(Ticket.subject, Ticket.id).where(Ticket.subject.like("%đơn hàng%")))
        ).all()
    assert vietnamese_subjects, "the demo should hold Vietnamese tickets about orders"

    # A Thai phrase from the middle of a customer's message: no spaces, so only trigrams can find it.
    phrase = next(run for run in re.findall(r"[\u0e00-\u0e7f]{8,}", thai_body))[:8]
    found = await _all_rows(desk, demo, text=phrase)
    assert thai_ticket in {row.id for row in found}
    await _every_row_contains(desk, [row.id for row in found], phrase)

    word = "hàng"  # with its diacritic; "hang" must not be what matched
    found = await _all_rows(desk, demo, text=f"đơn {word}")
    ids = {row.id for row in found}
    assert {ticket_id for _, ticket_id in vietnamese_subjects} <= ids
    await _every_row_contains(desk, list(ids), word)


async def _every_row_contains(desk: Desk, ticket_ids: list[int], phrase: str) -> None:
    async with desk.db.reading() as session:
        for ticket_id in ticket_ids:
            subject = (await session.execute(select(Ticket.subject).where(Ticket.id == ticket_id))).scalar_one()
            bodies = (await session.execute(select(Message.body_text).where(Message.ticket_id == ticket_id))).scalars()
            assert phrase.lower() in subject.lower() or any(phrase.lower() in body.lower() for body in bodies)


async def test_transferred_tickets_keep_their_history(desk: Desk, demo: DemoSummary) -> None:
    async with desk.db.reading() as session:
        moved = (
            (
                await session.execute(
                    select(Event.ticket_id).where(Event.kind == "ticket.transferred").order_by(Event.id)
                )
            )
            .scalars()
            .all()
        )
    assert len(moved) >= 3
    for ticket_id in moved[:5]:
        detail = await desk.ticket(demo.admin, desk.ref(ticket_id))
        kinds = [event.kind for event in detail.events]
        assert kinds[0] == "ticket.created"
        [transfer] = [event for event in detail.events if event.kind == "ticket.transferred"]
        created = detail.events[0]
        assert created.data["department"] == transfer.data["from"] != transfer.data["to"]
        assert detail.ticket.department == transfer.data["to"]
        note = next(message for message in detail.messages if message.id == transfer.data["note_id"])
        assert note.kind == "note" and transfer.data["to"] in note.body
        assert detail.messages[0].kind == "customer" and detail.messages[1].id == note.id
        assert transfer.actor in await _members(desk, transfer.data["from"])
        # History reads in time order, like the thread.
        assert [event.at for event in detail.events] == sorted(event.at for event in detail.events)
        assert [message.created_at for message in detail.messages] == sorted(m.created_at for m in detail.messages)


async def _members(desk: Desk, department: str) -> tuple[str, ...]:
    [view] = [view for view in await desk.departments(Actor.operator()) if view.name == department]
    return view.members


async def test_ticket_fields_agree_with_thread_and_history(desk: Desk, demo: DemoSummary) -> None:
    async with desk.db.reading() as session:
        tickets = (await session.execute(select(Ticket))).scalars().all()
        changes = dict(
            (
                await session.execute(
                    select(Event.ticket_id, func.count())
                    .where(Event.ticket_id.is_not(None), Event.kind != "ticket.created")
                    .group_by(Event.ticket_id)
                )
            ).all()
        )
        threads: dict[int, list[tuple[str, datetime]]] = {}
        for ticket_id, kind, at in await session.execute(
            select(Message.ticket_id, Message.kind, Message.created_at).order_by(Message.id)
        ):
            threads.setdefault(ticket_id, []).append((kind, at))
        last_event = dict(
            (
                await session.execute(
                    select(Event.ticket_id, func.max(Event.at))
                    .where(Event.ticket_id.is_not(None))
                    .group_by(Event.ticket_id)
                )
            ).all()
        )
        for ticket in tickets:
            thread = threads[ticket.id]
            replies = [at for kind, at in thread if kind == "reply"]
            customer = [at for kind, at in thread if kind == "customer"]
            assert ticket.version == 1 + changes.get(ticket.id, 0) >= 1
            assert ticket.message_count == len(thread)
            assert thread[0] == ("customer", ticket.created_at)
            assert ticket.first_response_at == (min(replies) if replies else None)
            assert ticket.last_agent_reply_at == (max(replies) if replies else None)
            assert ticket.last_customer_message_at == max(customer)
            assert ticket.updated_at == max(last_event[ticket.id], max(at for _, at in thread))
            assert ticket.updated_at <= NOW
            assert (ticket.resolved_at is not None) == (ticket.status in ("resolved", "closed"))
            assert (ticket.closed_at is not None) == (ticket.status == "closed")
            if ticket.status == "new":
                assert not replies
            if ticket.status == "pending":
                assert thread[-1][0] == "reply"


async def test_tickets_can_be_created_and_changed_after_the_bulk_load(desk: Desk, demo: DemoSummary) -> None:
    """The bulk load wrote explicit ids; the next ordinary inserts must not collide with them (PostgreSQL sequences)."""
    row = await desk.create_ticket(
        Actor.operator(),
        Intake(department="Billing", contact_email="after.demo@example.org", subject="After the demo", body="Hello"),
    )
    assert row.id == SIZE + 1 and row.ref == f"TD-{SIZE + 1}"
    billing_agent = next(m for m in await _members(desk, "Billing") if m != demo.admin)
    changed = await desk.reply(billing_agent, row.ref, "We are on it.")
    changed = await desk.tag(billing_agent, row.ref, add=["brand-new-tag"])
    assert changed.tags == ("brand-new-tag",) and changed.status == "open" and changed.version == 3
    await desk.add_agent(Actor.operator(), "late.joiner", name="Late Joiner", email="late@northwind.example")
    await desk.add_department(Actor.operator(), "Late Desk", email="late-desk@northwind.example")
    assert await desk.check_counters(repair=False) == 0


async def _fingerprint(desk: Desk) -> tuple[Any, ...]:
    async with desk.db.reading() as session:
        tickets = (
            await session.execute(
                select(
                    Ticket.id,
                    Ticket.subject,
                    Department.name,
                    Ticket.status,
                    Ticket.priority,
                    Ticket.channel,
                    Agent.handle,
                    Contact.email,
                    Ticket.created_at,
                    Ticket.updated_at,
                    Ticket.version,
                )
                .join(Department, Department.id == Ticket.department_id)
                .join(Contact, Contact.id == Ticket.contact_id)
                .outerjoin(Agent, Agent.id == Ticket.assignee_id)
                .order_by(Ticket.id)
            )
        ).all()
        messages = (
            await session.execute(
                select(
                    Message.ticket_id, Message.kind, Message.body_text, Message.created_at, Message.message_id
                ).order_by(Message.id)
            )
        ).all()
        history = (
            await session.execute(
                select(Event.ticket_id, Event.kind, Event.at, Event.data)
                .where(Event.ticket_id.is_not(None))
                .order_by(Event.id)
            )
        ).all()
        tags = (
            await session.execute(
                select(TicketTag.ticket_id, Tag.name)
                .join(Tag, Tag.id == TicketTag.tag_id)
                .order_by(TicketTag.ticket_id, Tag.name)
            )
        ).all()
    return tuple(map(tuple, tickets)), tuple(map(tuple, messages)), tuple(map(tuple, history)), tuple(map(tuple, tags))


async def _sqlite_demo(path: Path, seed: int) -> tuple[Any, ...]:
    other = Desk(Database(str(path)))
    try:
        await other.init()
        await build_demo(other, tickets=SIZE, seed=seed, now=NOW)
        return await _fingerprint(other)
    finally:
        await other.close()


async def test_the_same_seed_builds_the_same_desk(desk: Desk, demo: DemoSummary, tmp_path: Path) -> None:
    mine = await _fingerprint(desk)
    assert mine == await _sqlite_demo(tmp_path / "again.sqlite3", seed=7)
    other = await _sqlite_demo(tmp_path / "other.sqlite3", seed=8)
    assert mine[0] != other[0] and mine[1] != other[1]


async def test_a_long_thread_can_be_asked_for(desk: Desk) -> None:
    summary = await build_demo(desk, tickets=50, departments=3, agents=5, seed=3, now=NOW, long_thread=50)
    assert summary.long_thread_ref is not None
    detail = await desk.ticket(summary.admin, summary.long_thread_ref)
    assert len(detail.messages) >= 50 and detail.ticket.status == "open"
    assert await desk.check_counters(repair=False) == 0


async def test_more_departments_are_named_like_regions(desk: Desk) -> None:
    summary = await build_demo(desk, tickets=30, departments=12, agents=15, seed=1, now=NOW)
    assert summary.department_names[6:8] == ("EMEA", "APAC")
    assert len(set(summary.department_names)) == 12
    for department in await desk.departments(summary.admin):
        assert department.members, department.name


def test_romanise_makes_ascii_handles() -> None:
    assert romanise("Jørgensen") == "joergensen"
    assert romanise("Đặng") == "dang"
    assert romanise("Смирнова") == "smirnova"
    assert romanise("Hương") == "huong"


async def test_every_department_has_canned_responses_that_fill_in(desk: Desk, demo: DemoSummary) -> None:
    for department in await desk.departments(demo.admin):
        found = await desk.canned_responses(demo.admin, department.name)
        assert len(found) >= 3, department.name
        [row] = (await desk.queue(demo.admin, QueueFilter(department=department.name, limit=1))).rows
        for item in found:
            text = await desk.render_canned(demo.admin, row.ref, item.id)
            assert "{{" not in text and text.strip()
