"""Report durations in business time, without pending time, and ratings — through the desk's own calls.

The desk's clock is set by the test (every `utcnow` of core and storage), so
each change happens at a hand-picked moment. Support has hours Mon-Fri
08:00-17:00 UTC (its SLA policy's calendar); Plain has none (calendar time).
2026-11-20 is a Friday.

    T1 Support  created Fri 16:00; note Fri 16:30; out-of-office (automatic) from the customer Fri 16:40;
                reply Mon 09:00 (first answer 60 + 60 = 120 business min; answer 120);
                pending Mon 10:00 .. customer writes Tue 10:00 (540 business min pending);
                reply Tue 11:00 (answer 60); resolved Tue 12:00 (60 + 540 + 240 - 540 = 300);
                customer reopens Wed 09:00; resolved again Wed 10:00 (60 + 540 + 540 + 120 - 540 = 720).
    T2 Plain    created Sat 11-21 12:00; reply 12:45 (45); out-of-office 12:50; customer 13:00; reply 14:00 (60);
                resolved 15:00 (180); rated positive, then negative (its latest rating counts).
    T3 Plain    created Sat 10:00; reply Sun 10:00 (1440); resolved Sun 11:00 (1500); not rated.
    T4 Plain    created Sat 11:00; reply Sat 11:30 (30); pending Sat 11:30 .. resolved Sat 12:30 (30, not 90);
                rated positive.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

import storage.types
from core import Desk
from core.errors import BadArgument, NotFound
from core.policy import Actor
from core.reports import Report, ReportRequest, durations
from core.tickets import add_customer_message
from core.views import Intake
from storage.models import Message, Ticket
from tests.outbox_fixtures import CUSTOMER, MailDesk, customer_mail, mail_desk  # noqa: F401
from tests.smtpserver import smtp_server  # noqa: F401


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


HOURS = {"calendar": {"timezone": "UTC", **{day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}}}
RANGE = (at("2026-11-16 00:00"), at("2026-11-30 00:00"))  # the weeks of Mon 11-16 and Mon 11-23


class Clock:
    def __init__(self) -> None:
        self.moment = at("2026-11-20 00:00")

    def now(self) -> datetime:
        return self.moment

    def set(self, text: str) -> None:
        self.moment = at(text)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The desk's clock: every module of core and storage that reads `storage.types.utcnow`."""
    state = Clock()
    original = storage.types.utcnow
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] in ("core", "storage") and getattr(module, "utcnow", None) is original:
            monkeypatch.setattr(module, "utcnow", state.now)
    return state


async def customer_writes(desk: Desk, ref_id: int, *, automatic: list[str] | None = None) -> None:
    """A customer follow-up as the mail intake stores it (core.tickets.add_customer_message)."""
    async with desk.db.writing() as session:
        ticket = await session.get(Ticket, ref_id)
        assert ticket is not None
        message = Message(body_text="more", created_at=storage.types.utcnow(), automatic=automatic)
        await add_customer_message(session, Actor.operator(), ticket, message, data={})


async def build(desk: Desk, clock: Clock) -> dict[str, str]:
    operator = Actor.operator()
    await desk.add_department(operator, "Support", email="support@example.com")
    await desk.add_department(operator, "Plain", email="plain@example.com")
    await desk.set_automation(operator, "Support", "sla", HOURS)
    await desk.add_agent(
        operator, "sam", name="Sam", email="sam@example.com", role="supervisor", departments=["Support", "Plain"]
    )

    async def create(department: str, when: str) -> tuple[str, int]:
        clock.set(when)
        row = await desk.create_ticket(
            operator, Intake(department=department, contact_email="carla@example.org", subject="help", body="help")
        )
        return row.ref, row.id

    async def step(when: str, call: object) -> None:
        clock.set(when)
        await call  # type: ignore[misc]

    t1, t1_id = await create("Support", "2026-11-20 16:00")
    await step("2026-11-20 16:30", desk.note("sam", t1, "looking into it"))
    clock.set("2026-11-20 16:40")
    await customer_writes(desk, t1_id, automatic=["auto-replied"])
    await step("2026-11-23 09:00", desk.reply("sam", t1, "here you go"))
    await step("2026-11-23 10:00", desk.set_status("sam", t1, "pending"))
    clock.set("2026-11-24 10:00")
    await customer_writes(desk, t1_id)
    await step("2026-11-24 11:00", desk.reply("sam", t1, "and this"))
    await step("2026-11-24 12:00", desk.set_status("sam", t1, "resolved"))
    clock.set("2026-11-25 09:00")
    await customer_writes(desk, t1_id)  # reopens
    await step("2026-11-25 10:00", desk.set_status("sam", t1, "resolved"))

    t2, t2_id = await create("Plain", "2026-11-21 12:00")
    await step("2026-11-21 12:45", desk.reply("sam", t2, "hi"))
    clock.set("2026-11-21 12:50")
    await customer_writes(desk, t2_id, automatic=["auto-replied"])  # an out-of-office answer waits for no one
    clock.set("2026-11-21 13:00")
    await customer_writes(desk, t2_id)
    await step("2026-11-21 14:00", desk.reply("sam", t2, "hi again"))
    await step("2026-11-21 15:00", desk.set_status("sam", t2, "resolved"))
    await desk.rate("sam", t2, "positive", at=at("2026-11-21 16:00"))
    await desk.rate("sam", t2, "negative", comment="changed my mind", at=at("2026-11-21 17:00"))

    t3, _ = await create("Plain", "2026-11-21 10:00")
    await step("2026-11-22 10:00", desk.reply("sam", t3, "late"))
    await step("2026-11-22 11:00", desk.set_status("sam", t3, "resolved"))

    t4, _ = await create("Plain", "2026-11-21 11:00")
    await step("2026-11-21 11:30", desk.reply("sam", t4, "over to you", status="pending"))
    await step("2026-11-21 12:30", desk.set_status("sam", t4, "resolved"))
    await desk.rate("sam", t4, "good")
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4}


@pytest.fixture
async def timed_desk(desk: Desk, clock: Clock) -> Desk:
    await build(desk, clock)
    return desk


async def stored(desk: Desk) -> tuple[dict[int, tuple[float | None, float | None]], list[tuple[int, float | None]]]:
    async with desk.db.reading() as session:
        tickets = {
            row.id: (row.first_response_minutes, row.resolution_minutes)
            for row in await session.execute(
                select(Ticket.id, Ticket.first_response_minutes, Ticket.resolution_minutes)
            )
        }
        replies = [
            (row.ticket_id, row.answer_minutes)
            for row in await session.execute(
                select(Message.ticket_id, Message.answer_minutes).where(Message.kind == "reply").order_by(Message.id)
            )
        ]
    return tickets, replies


EXPECTED_TICKETS = {1: (120.0, 720.0), 2: (45.0, 180.0), 3: (1440.0, 1500.0), 4: (30.0, 30.0)}
EXPECTED_REPLIES = [(1, 120.0), (1, 60.0), (2, 45.0), (2, 60.0), (3, 1440.0), (4, 30.0)]


async def test_durations_are_stored_in_business_time_without_pending_when_they_happen(timed_desk: Desk) -> None:
    tickets, replies = await stored(timed_desk)
    assert tickets == EXPECTED_TICKETS
    assert replies == EXPECTED_REPLIES


async def test_the_backfill_computes_the_same_durations_from_history(timed_desk: Desk) -> None:
    """What `Desk.init` runs after migration 0007 on older rows: same values from messages and events."""
    async with timed_desk.db.writing() as session:
        await session.execute(
            update(Ticket)
            .values(first_response_minutes=None, resolution_minutes=None)
            .execution_options(synchronize_session=False)
        )
        await session.execute(update(Message).values(answer_minutes=None).execution_options(synchronize_session=False))
    async with timed_desk.db.writing() as session:
        assert await durations.backfill(session, batch=2) == 4
    tickets, replies = await stored(timed_desk)
    assert tickets == EXPECTED_TICKETS
    assert replies == EXPECTED_REPLIES


async def test_report_averages_medians_and_ratings_match_the_hand_computed_desk(timed_desk: Desk) -> None:
    report = await timed_desk.report("sam", ReportRequest(*RANGE, by="department", bucket="week"))
    found = {(row.bucket, row.group): row.values for row in report.rows}

    plain = found[("2026-11-16", "Plain")]
    assert plain["first_answer_avg_min"] == 505.0  # (45 + 1440 + 30) / 3
    assert plain["first_answer_median_min"] == 45.0
    assert plain["answer_avg_min"] == 393.8  # (45 + 60 + 1440 + 30) / 4 = 393.75
    assert plain["resolution_avg_min"] == 570.0  # (180 + 1500 + 30) / 3
    assert (plain["rated_positive"], plain["rated_negative"], plain["not_rated"]) == (1, 1, 1)  # T4, T2, T3
    assert (plain["rated_positive_pct"], plain["rated_negative_pct"], plain["not_rated_pct"]) == (33.3, 33.3, 33.3)

    # T1's first answer and its out-of-office both fall in the second week; the note is no answer.
    support_first = found[("2026-11-16", "Support")]
    assert support_first["first_answer_avg_min"] is None and support_first["answers"] == 0
    assert support_first["notes"] == 1
    support = found[("2026-11-23", "Support")]
    assert support["first_answer_avg_min"] == support["first_answer_median_min"] == 120.0
    assert support["answer_avg_min"] == 90.0  # (120 + 60) / 2
    assert support["resolved"] == 1  # resolved twice, counted once: at its latest resolution
    assert support["resolution_avg_min"] == 720.0
    assert (support["not_rated"], support["not_rated_pct"], support["rated_positive_pct"]) == (1, 100.0, 0.0)


async def test_ratings_and_answers_by_agent_and_a_bad_score_named(timed_desk: Desk) -> None:
    report = await timed_desk.report("sam", ReportRequest(*RANGE, by="agent", bucket="month"))
    by_agent = {row.group: row.values for row in report.rows}
    # Nothing is assigned: every resolved ticket counts for (unassigned); answers for their author.
    assert by_agent["(unassigned)"]["rated_positive"] == 1 and by_agent["(unassigned)"]["not_rated"] == 2
    assert by_agent["sam"]["answer_avg_min"] == round((120 + 60 + 45 + 60 + 1440 + 30) / 6, 1)

    with pytest.raises(BadArgument, match="not a rating; use positive or negative"):
        await timed_desk.rate("sam", timed_desk.ref(1), "meh")


async def test_automatic_mail_is_no_first_answer(mail_desk: MailDesk) -> None:  # noqa: F811
    """The acknowledgement the desk mails on a new ticket is automatic: the first answer is the agent's reply."""
    [ref] = (await mail_desk.receive(customer_mail(message_id="<ack@customer.example>"))).refs
    await mail_desk.worker().flush()
    assert len(mail_desk.server.recorder.to(CUSTOMER)) == 1  # the acknowledgement went out
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    request = ReportRequest(today - timedelta(days=1), today + timedelta(days=2), by="department", bucket="month")

    def support(report: Report) -> dict[str, Any]:
        rows = [row.values for row in report.rows if row.group == "Support"]
        return {
            "answers": sum(int(values["answers"] or 0) for values in rows),
            "first": [values["first_answer_avg_min"] for values in rows],
        }

    before = support(await mail_desk.desk.report("alice", request))
    assert before["answers"] == 0 and set(before["first"]) == {None}
    async with mail_desk.desk.db.reading() as session:
        assert (await session.execute(select(Ticket.first_response_minutes))).scalar() is None

    await mail_desk.desk.reply("alice", ref, "We are on it.")
    after = support(await mail_desk.desk.report("alice", request))
    async with mail_desk.desk.db.reading() as session:
        minutes = (await session.execute(select(Ticket.first_response_minutes))).scalar()
    assert after["answers"] == 1 and minutes is not None
    assert [value for value in after["first"] if value is not None] == [round(minutes, 1)]


async def test_init_after_migration_0007_fills_the_durations_of_older_tickets(timed_desk: Desk) -> None:
    """A desk from before 0007 (columns dropped by its downgrade) gets every duration back on `init`."""
    from alembic import command
    from sqlalchemy.engine import Connection

    from storage.migrate import alembic_config
    from storage.schema import SCHEMA_REVISION

    config = alembic_config()

    def downgrade(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, "0006")

    async with timed_desk.db.write_engine.begin() as connection:
        await connection.run_sync(downgrade)
    before, after = await timed_desk.init()
    assert (before, after) == ("0006", SCHEMA_REVISION)
    tickets, replies = await stored(timed_desk)
    assert tickets == EXPECTED_TICKETS
    assert replies == EXPECTED_REPLIES


async def test_the_demo_desk_stores_the_same_durations_the_backfill_computes(desk: Desk) -> None:
    """The demo (and bench/scale.py) fills the columns while generating rows; the backfill, from the stored
    history, must agree ticket for ticket and reply for reply."""
    from core.demo import build_demo

    await build_demo(desk, tickets=300, seed=3)
    generated = await stored(desk)
    assert any(first is not None for first, _ in generated[0].values())
    assert any(answer is not None for _, answer in generated[1])
    async with desk.db.writing() as session:
        await session.execute(
            update(Ticket)
            .values(first_response_minutes=None, resolution_minutes=None)
            .execution_options(synchronize_session=False)
        )
        await session.execute(update(Message).values(answer_minutes=None).execution_options(synchronize_session=False))
        await durations.backfill(session)
    assert await stored(desk) == generated


async def test_a_rating_names_a_message_of_its_own_ticket_and_only_a_visible_ticket(timed_desk: Desk) -> None:
    async with timed_desk.db.reading() as session:
        other = (await session.execute(select(Message.id).where(Message.ticket_id == 2))).scalars().first()
    with pytest.raises(BadArgument, match="not part of this ticket"):
        await timed_desk.rate("sam", timed_desk.ref(1), "positive", message_id=other)
    await timed_desk.add_agent(Actor.operator(), "pat", name="Pat", email="pat@example.com", departments=["Plain"])
    with pytest.raises(NotFound):
        await timed_desk.rate("pat", timed_desk.ref(1), "positive")  # T1 is in Support
