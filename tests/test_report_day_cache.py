"""The report day cache (core/reports/daycache.py) gives the numbers of the base SQL, after any change.

A seeded random desk of past tickets, then seeded random changes written straight to the tables (ORM
updates, deletes and a Core bulk UPDATE, as storage.bulk and the rules write): the triggers of migration
0009 must mark every touched day, whichever path wrote. After each round every grouping x bucket, for two
readers with different departments, is compared cell by cell with `metrics.build_report`: first reading
with the marks still pending (no refresh), then through `Desk.report` (refresh, then read). Minutes are
random reals stored as the write paths store them (`durations.stored_minutes`, multiples of 1/64), and the
averages and medians are also compared before the report's one-decimal rounding, with ==: without that
rounding of the stored minutes the sums would depend on their order and this comparison fails. The
warm-up (`daycache.warm`, run by the scheduler) is checked against the same base SQL. Runs on SQLite and
PostgreSQL.
"""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import delete, func, select, update
from sqlalchemy.engine import Connection

from core import Desk
from core.config import ReportSettings, Settings
from core.policy import Actor, resolve_actor
from core.reports import ReportRequest, build_report, daycache, durations, metrics
from core.reports.metrics import BUCKETS, GROUPINGS
from core.scheduler import Scheduler
from storage.migrate import alembic_config
from storage.models import Agent, Contact, Department, Message, Rating, Tag, Ticket, TicketTag

START = datetime(2026, 2, 23, tzinfo=UTC)  # a Monday, long past
DAYS = 40
SEED = 7007
READERS = ("sam", "tess")
CHANNELS = ("email", "web", "phone")
STATUSES = ("new", "open", "pending", "resolved", "closed", "spam")


def _minutes(rng: random.Random) -> float:
    return durations.stored_minutes(rng.uniform(0, 10_000))


def _moment(rng: random.Random, after: datetime | None = None) -> datetime:
    base = after or START
    return (
        base + timedelta(minutes=rng.randrange(0, 60 * 24 * 6))
        if after
        else START + timedelta(minutes=rng.randrange(0, 60 * 24 * DAYS))
    )


class World:
    def __init__(self, departments: list[int], agents: list[int], tags: list[int], contact: int) -> None:
        self.departments, self.agents, self.tags, self.contact = departments, agents, tags, contact


async def build(desk: Desk) -> World:
    operator = Actor.operator()
    for name in ("Billing", "Technical", "Secret"):
        await desk.add_department(operator, name, email=f"{name.lower()}@example.com")
    await desk.add_agent(
        operator, "sam", name="Sam", email="sam@example.com", role="supervisor", departments=["Billing", "Technical"]
    )
    await desk.add_agent(operator, "tess", name="Tess", email="tess@example.com", departments=["Technical", "Secret"])
    async with desk.db.writing() as session:
        departments = list((await session.execute(select(Department.id).order_by(Department.id))).scalars())
        agents = list((await session.execute(select(Agent.id).order_by(Agent.id))).scalars())
        contact = Contact(email="carla@example.org", name="Carla")
        tags = [Tag(name=name) for name in ("refund", "vip", "bug")]
        session.add_all([contact, *tags])
        await session.flush()
        world = World(departments, agents, [tag.id for tag in tags], contact.id)
    rng = random.Random(SEED)
    for _ in range(60):
        await new_ticket(desk, world, rng)
    return world


async def new_ticket(desk: Desk, world: World, rng: random.Random) -> None:
    async with desk.db.writing() as session:
        created = _moment(rng)
        status = rng.choice(STATUSES)
        answered = rng.random() < 0.7
        first = _moment(rng, created) if answered else None
        resolved = (
            _moment(rng, first or created) if status in ("resolved", "closed", "spam") and rng.random() < 0.9 else None
        )
        ticket = Ticket(
            subject="t",
            department_id=rng.choice(world.departments),
            contact_id=world.contact,
            status=status,
            channel=rng.choice(CHANNELS),
            assignee_id=rng.choice([None, *world.agents]),
            created_at=created,
            updated_at=created,
            first_response_at=first,
            resolved_at=resolved,
            first_response_minutes=_minutes(rng) if first and rng.random() < 0.9 else None,
            resolution_minutes=_minutes(rng) if resolved else None,
            first_response_due=_moment(rng, created) if rng.random() < 0.6 else None,
            resolution_due=_moment(rng, created) if rng.random() < 0.6 else None,
        )
        session.add(ticket)
        await session.flush()
        for _ in range(rng.randrange(0, 5)):
            session.add(message(world, rng, ticket.id, created))
        for tag in rng.sample(world.tags, rng.randrange(0, 3)):
            session.add(TicketTag(ticket_id=ticket.id, tag_id=tag))
        if resolved and rng.random() < 0.5:
            session.add(Rating(ticket_id=ticket.id, score=rng.choice((1, -1)), created_at=resolved))


def message(world: World, rng: random.Random, ticket_id: int, after: datetime) -> Message:
    kind = rng.choice(("customer", "reply", "reply", "note", "system"))
    return Message(
        ticket_id=ticket_id,
        kind=kind,
        body_text=kind,
        created_at=_moment(rng, after),
        author_agent_id=rng.choice(world.agents) if kind in ("reply", "note") else None,
        answer_minutes=_minutes(rng) if kind == "reply" and rng.random() < 0.8 else None,
    )


async def change(desk: Desk, world: World, rng: random.Random) -> str:
    """One random change of the kinds that move a ticket's contributions; returns its name."""
    async with desk.db.writing() as session:
        ids = list((await session.execute(select(Ticket.id))).scalars())
        ticket = await session.get(Ticket, rng.choice(ids))
        assert ticket is not None
        kind = rng.randrange(16)
        if kind == 0:
            ticket.department_id = rng.choice(world.departments)
        elif kind == 1:
            ticket.assignee_id = rng.choice([None, *world.agents])
        elif kind == 2:
            ticket.channel = rng.choice(CHANNELS)
        elif kind == 3:
            ticket.status = rng.choice(STATUSES)
        elif kind == 4:
            ticket.resolved_at = None if ticket.resolved_at else _moment(rng, ticket.created_at)
            ticket.resolution_minutes = _minutes(rng) if ticket.resolved_at else None
        elif kind == 5:
            ticket.first_response_at = _moment(rng, ticket.created_at)
            ticket.first_response_minutes = _minutes(rng)
        elif kind == 6:
            ticket.first_response_due = _moment(rng, ticket.created_at)
            ticket.resolution_due = None if rng.random() < 0.3 else _moment(rng, ticket.created_at)
        elif kind == 7:
            tags = set(
                (await session.execute(select(TicketTag.tag_id).where(TicketTag.ticket_id == ticket.id))).scalars()
            )
            tag = rng.choice(world.tags)
            if tag in tags:
                await session.execute(
                    delete(TicketTag).where(TicketTag.ticket_id == ticket.id, TicketTag.tag_id == tag)
                )
            else:
                session.add(TicketTag(ticket_id=ticket.id, tag_id=tag))
        elif kind == 8:
            session.add(message(world, rng, ticket.id, ticket.created_at))
        elif kind == 9:
            first = (await session.execute(select(Message).where(Message.ticket_id == ticket.id).limit(1))).scalar()
            if first is not None:
                await session.delete(first)
        elif kind == 10:
            first = (await session.execute(select(Message).where(Message.ticket_id == ticket.id).limit(1))).scalar()
            if first is not None:
                first.created_at = _moment(rng)
                first.answer_minutes = _minutes(rng)
        elif kind == 11:
            session.add(Rating(ticket_id=ticket.id, score=rng.choice((1, -1))))
        elif kind == 12:  # a rated ticket, or the change would rarely remove anything
            rated = list((await session.execute(select(Rating.ticket_id))).scalars())
            if rated:
                ticket = await session.get(Ticket, rng.choice(rated))
                assert ticket is not None
            await session.execute(delete(Rating).where(Rating.ticket_id == ticket.id))
        elif kind == 13:
            await session.delete(ticket)
        elif kind == 14:  # a Core bulk UPDATE, as storage.bulk and the rules write
            chosen = rng.sample(ids, min(5, len(ids)))
            await session.execute(
                update(Ticket).where(Ticket.id.in_(chosen)).values(department_id=rng.choice(world.departments))
            )
        else:
            ticket.created_at = _moment(rng)
        return f"change {kind} on ticket {ticket.id}"
    return ""


def requests() -> list[ReportRequest]:
    whole = (START, START + timedelta(days=DAYS + 7))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    up_to_now = (START + timedelta(days=3), today + timedelta(days=1))  # reaches today: live days too
    return [
        ReportRequest(*span, by=by, bucket=bucket)
        for span in (whole, up_to_now)
        for by in GROUPINGS
        for bucket in BUCKETS
    ]


def rows(report: Any) -> list[dict[str, Any]]:
    return [row.as_dict() for row in report.rows]


def unrounded(table: Any) -> dict[tuple[str, Any, str], float]:
    """The averages and medians of a report table before the report rounds them to one decimal."""
    return {
        (bucket, group, name): value
        for (bucket, group), cell in table.cells.items()
        for name, value in cell.items()
        if name.endswith("_min") and value is not None
    }


async def assert_same(desk: Desk, cached: Desk, when: str) -> None:
    dialect = desk.db.dialect
    for handle in READERS:
        for request in requests():
            async with desk.db.reading() as session:
                actor = await resolve_actor(session, handle)
                expected = rows(await build_report(session, actor, request, dialect))
                pending = rows(await daycache.cached_report(session, actor, request, dialect))
                exact = unrounded(await metrics.base_table(session, actor, request, dialect))
                found = unrounded(await daycache.cached_table(session, actor, request, dialect))
            label = f"{when}: {handle} by {request.by} per {request.bucket} {request.start:%m-%d}..{request.end:%m-%d}"
            assert pending == expected, f"{label}, marks pending"
            assert found == exact, f"{label}, averages before rounding"
            assert rows(await cached.report(handle, request)) == expected, f"{label}, after refresh"


async def test_cached_reports_equal_the_base_sql_after_random_changes_on_every_write_path(desk: Desk) -> None:
    world = await build(desk)
    cached = Desk(desk.db, Settings(reports=ReportSettings(day_cache=True)))
    await assert_same(desk, cached, "built")
    async with desk.db.reading() as session:
        stored = (await session.execute(select(func.count()).select_from(daycache.report_cached_days))).scalar_one()
    assert stored > 0, "the cache was never filled, so nothing was compared"
    rng = random.Random(SEED + 1)
    for round_number in range(6):
        done = [await change(desk, world, rng) for _ in range(10)]
        if round_number == 2:
            await new_ticket(desk, world, rng)
        await assert_same(desk, cached, f"round {round_number} ({'; '.join(done)})")


async def test_a_range_that_starts_mid_day_is_not_served_from_the_cache() -> None:
    assert not daycache.covers(ReportRequest(START + timedelta(hours=5), START + timedelta(days=7)))
    assert daycache.covers(ReportRequest(START, START + timedelta(days=7)))


async def test_check_finds_a_wrong_cached_day_and_repair_empties_the_cache(desk: Desk) -> None:
    await build(desk)
    cached = Desk(desk.db, Settings(reports=ReportSettings(day_cache=True)))
    request = ReportRequest(START, START + timedelta(days=DAYS), by="department", bucket="week")
    expected = rows(await cached.report("sam", request))
    assert await desk.check_report_cache(repair=False) == 0
    async with desk.db.writing() as session:  # a cell gone wrong behind the triggers' back
        cell = daycache.report_day_cells
        day = (await session.execute(select(func.min(cell.c.day)))).scalar_one()
        await session.execute(update(cell).where(cell.c.day == day).values(payload='{"created":999}'))
    assert await desk.check_report_cache(repair=False) >= 1
    assert await desk.check_report_cache(repair=True) >= 1
    async with desk.db.reading() as session:
        assert (await session.execute(select(func.count()).select_from(cell))).scalar_one() == 0
    assert rows(await cached.report("sam", request)) == expected
    assert await desk.check_report_cache(repair=False) == 0


@pytest.mark.parametrize("dropped", [False, True], ids=["marked", "mark dropped by another refresher"])
async def test_a_day_changed_while_the_cache_was_computed_is_not_stored(desk: Desk, dropped: bool) -> None:
    world = await build(desk)
    dialect = desk.db.dialect
    request = ReportRequest(START, START + timedelta(days=DAYS), by="department", bucket="week")
    async with desk.db.writing() as session:
        await daycache.drop_marked(session, dialect)
    async with desk.db.reading() as session:
        days, cells, since = await daycache.compute_missing(session, request, dialect)
    async with desk.db.writing() as session:  # committed after the computation read the tickets
        ticket = (await session.execute(select(Ticket).order_by(Ticket.id).limit(1))).scalar_one()
        changed = ticket.created_at.date().isoformat()
        ticket.department_id = next(d for d in world.departments if d != ticket.department_id)
    if dropped:  # another report (or the warm-up) drops the change's mark before this computation stores
        async with desk.db.writing() as session:
            await daycache.drop_marked(session, dialect)
        async with desk.db.reading() as session:
            assert not (await session.execute(select(daycache.report_dirty_days.c.day))).scalars().all()
    async with desk.db.writing() as session:
        stored = await daycache.store(session, "department", days, cells, dialect, since=since)
    assert 0 < stored < len(days)
    async with desk.db.reading() as session:
        cached = set((await session.execute(select(daycache.report_cached_days.c.day))).scalars())
        actor = await resolve_actor(session, "sam")
        expected = rows(await build_report(session, actor, request, dialect))
        found = rows(await daycache.cached_report(session, actor, request, dialect))
    assert changed not in cached
    assert found == expected


async def cached_days(desk: Desk) -> dict[str, set[str]]:
    async with desk.db.reading() as session:
        found: dict[str, set[str]] = {by: set() for by in GROUPINGS}
        for by, day in await session.execute(
            select(daycache.report_cached_days.c.grouping, daycache.report_cached_days.c.day)
        ):
            found[by].add(day)
        return found


async def test_the_warm_up_fills_every_past_day_in_chunks_and_reports_then_read_only_cached_days(desk: Desk) -> None:
    await build(desk)
    today = datetime.now(UTC).date()
    window = (today - START.date()).days - 10  # [today - window, today): it starts after the first ticket's day
    first = today - timedelta(days=window)
    stored = await daycache.warm(desk.db, days=window, chunk=3)
    expected_days = {(first + timedelta(days=n)).isoformat() for n in range(window)}
    assert stored == window * len(GROUPINGS)
    assert await cached_days(desk) == {by: expected_days for by in GROUPINGS}
    assert await daycache.warm(desk.db, days=window) == 0  # nothing missing any more

    # A whole-day range inside the window: nothing left to compute, and the numbers of the base SQL.
    inside = ReportRequest(
        datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(days=1),
        datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=1),
    )
    for by in GROUPINGS:
        for bucket in BUCKETS:
            request = ReportRequest(inside.start, inside.end, by=by, bucket=bucket)
            async with desk.db.reading() as session:
                assert (await daycache.compute_missing(session, request, desk.db.dialect))[:2] == ([], {})
                actor = await resolve_actor(session, "sam")
                assert rows(await daycache.cached_report(session, actor, request, desk.db.dialect)) == rows(
                    await build_report(session, actor, request, desk.db.dialect)
                ), f"by {by} per {bucket}"
                assert unrounded(await daycache.cached_table(session, actor, request, desk.db.dialect)) == unrounded(
                    await metrics.base_table(session, actor, request, desk.db.dialect)
                )


async def test_the_warm_up_starts_at_the_first_ticket_and_stops_when_asked(desk: Desk) -> None:
    assert await daycache.warm(desk.db, days=400) == 0  # an empty desk has nothing to warm
    await build(desk)
    stop = asyncio.Event()
    stop.set()
    assert await daycache.warm(desk.db, days=400, stop=stop) == 0
    assert await cached_days(desk) == {by: set() for by in GROUPINGS}
    await desk.warm_report_cache(days=400)  # the window reaches back past the first ticket
    assert {min(days) for days in (await cached_days(desk)).values()} == {(await oldest_day(desk)).isoformat()}


async def oldest_day(desk: Desk) -> date:
    async with desk.db.reading() as session:
        return (await session.execute(select(func.min(Ticket.created_at)))).scalar_one().date()


async def test_the_scheduler_warms_the_cache_when_it_starts(desk: Desk) -> None:
    await build(desk)
    stop = asyncio.Event()
    oldest, today = await oldest_day(desk), datetime.now(UTC).date()
    expected = {(oldest + timedelta(days=n)).isoformat() for n in range((today - oldest).days)}
    task = asyncio.create_task(Scheduler(desk.db, warm_days=400).run(stop, interval=3600))

    async def missing() -> set[str]:
        # The scheduler's own pass auto-closes pending tickets meanwhile: the days that marks are not stored.
        async with desk.db.reading() as session:
            marked = set((await session.execute(select(daycache.report_dirty_days.c.day))).scalars())
        return {day for days in (await cached_days(desk)).values() for day in expected - days - marked}

    try:
        deadline = asyncio.get_running_loop().time() + 120
        while await missing():
            assert asyncio.get_running_loop().time() < deadline, "the scheduler did not warm the cache"
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    assert not task.exception()


async def stored_minutes(desk: Desk) -> dict[tuple[str, int], float | None]:
    async with desk.db.reading() as session:
        return {
            (column, row_id): value
            for column, statement in (
                ("first", select(Ticket.id, Ticket.first_response_minutes)),
                ("resolution", select(Ticket.id, Ticket.resolution_minutes)),
                ("answer", select(Message.id, Message.answer_minutes)),
            )
            for row_id, value in await session.execute(statement)
        }


async def test_migration_0011_rounds_the_minutes_stored_before_and_empties_the_cache(desk: Desk) -> None:
    await build(desk)
    await desk.warm_report_cache(days=400)
    config = alembic_config()

    def migrate(connection: Connection, target: str, upgrade: bool) -> None:
        config.attributes["connection"] = connection
        (command.upgrade if upgrade else command.downgrade)(config, target)

    async with desk.db.write_engine.begin() as connection:
        await connection.run_sync(migrate, "0010", False)
    rng = random.Random(SEED + 2)
    async with desk.db.writing() as session:  # minutes as the code before stored them: four decimals
        for ticket in (await session.execute(select(Ticket))).scalars():
            if ticket.first_response_minutes is not None:
                ticket.first_response_minutes = round(rng.uniform(0, 5000), 4)
            if ticket.resolution_minutes is not None:
                ticket.resolution_minutes = round(rng.uniform(0, 5000), 4)
        for reply in (await session.execute(select(Message).where(Message.answer_minutes.is_not(None)))).scalars():
            reply.answer_minutes = round(rng.uniform(0, 5000), 4)
    before = await stored_minutes(desk)
    assert any(value is not None and value != durations.stored_minutes(value) for value in before.values())
    async with desk.db.write_engine.begin() as connection:
        await connection.run_sync(migrate, "head", True)
    after = await stored_minutes(desk)
    async with desk.db.reading() as session:
        for table in (daycache.report_day_cells, daycache.report_cached_days, daycache.report_dirty_days):
            assert (await session.execute(select(func.count()).select_from(table))).scalar_one() == 0
    assert after == {key: None if value is None else durations.stored_minutes(value) for key, value in before.items()}
