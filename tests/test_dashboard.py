"""`Desk.dashboard` against a hand-computed desk, on SQLite and PostgreSQL: counts, SLA, waits, agents, hours, access.

NOW is Tuesday 2026-03-10 15:30 UTC (the desk's time zone is UTC unless a test says otherwise).

    T1  Billing   new, unassigned, created 03-10 09:10, customer 09:10; first response due 10:10 (breached)
    T2  Billing   open, sam, created 03-09 08:00, agent reply 03-09 09:00, customer again 03-10 08:30;
                  next response due 16:30, at risk since 15:00 and already announced (sla_check_at == that due)
    T3  Billing   open, sam, created 03-08 10:00, customer 10:00, agent reply 11:00 (nobody waiting);
                  resolution due 03-11, at risk from 03-10 20:00 (neither at risk nor breached)
    T4  Billing   pending, sam, created 03-05
    T5  Billing   resolved 03-10 11:15, sam, created 03-10 07:00 (customer 07:00, reply 11:00)
    T6  Billing   resolved 03-09 17:00 (yesterday), customer message 03-09 16:00
    T7  Billing   closed, unassigned, resolved 03-10 14:59:59
    T8  Technical new, unassigned, created 03-10 15:00, customer 15:00; at-risk moment 15:00 not yet
                  announced (sla_check_at passed), first response due 16:00
    (The SLA moments and waits core.sla keeps on new and open tickets are written out per ticket.)
    T9  Technical open, tess, created 03-10 00:00, customer 00:00; resolution due 12:00 (breached)
    T10 Technical resolved 03-10 09:30, tess, created 03-09
    T11 Secret    open, zed, created 03-10 09:00, customer 09:00, breached: nobody above may see it
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from core import Desk, counters
from core.config import Settings
from core.errors import Forbidden
from core.policy import Actor
from storage.models import Agent, Contact, Department, Message, Ticket

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=UTC)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


async def build(desk: Desk) -> None:
    operator = Actor.operator()
    for name in ("Billing", "Technical", "Secret"):
        await desk.add_department(operator, name, email=f"{name.lower()}@example.com")
    people = (
        ("sam", "supervisor", ["Billing", "Technical"]),
        ("sue", "supervisor", ["Technical"]),
        ("tess", "agent", ["Technical"]),
        ("zed", "supervisor", ["Secret"]),
    )
    for handle, role, departments in people:
        await desk.add_agent(
            operator, handle, name=handle.title(), email=f"{handle}@example.com", role=role, departments=departments
        )
    async with desk.db.writing() as session:
        departments_by_name = {d.name: d.id for d in (await session.execute(select(Department))).scalars()}
        agents = {a.handle: a.id for a in (await session.execute(select(Agent))).scalars()}
        await session.execute(update(Agent).where(Agent.handle == "tess").values(availability="paused"))
        contact = Contact(email="carla@example.org", name="Carla")
        session.add(contact)
        await session.flush()

        def ticket(number: int, department: str, created: str, status: str, **fields: Any) -> None:
            assignee = fields.pop("assignee", None)
            session.add(
                Ticket(
                    id=number,
                    subject=f"T{number}",
                    department_id=departments_by_name[department],
                    contact_id=contact.id,
                    status=status,
                    created_at=at(created),
                    updated_at=at(created),
                    assignee_id=agents[assignee] if assignee else None,
                    **fields,
                )
            )

        def message(number: int, kind: str, when: str) -> None:
            session.add(Message(ticket_id=number, kind=kind, body_text=kind, created_at=at(when)))

        ticket(
            1,
            "Billing",
            "2026-03-10 09:10",
            "new",
            last_customer_message_at=at("2026-03-10 09:10"),
            first_response_due=at("2026-03-10 10:10"),
            sla_check_at=at("2026-03-10 10:10"),
            sla_risk_at=at("2026-03-10 09:58"),
            sla_breach_at=at("2026-03-10 10:10"),
            waiting_since=at("2026-03-10 09:10"),
        )
        ticket(
            2,
            "Billing",
            "2026-03-09 08:00",
            "open",
            assignee="sam",
            first_response_at=at("2026-03-09 09:00"),
            last_agent_reply_at=at("2026-03-09 09:00"),
            last_customer_message_at=at("2026-03-10 08:30"),
            next_response_due=at("2026-03-10 16:30"),
            sla_check_at=at("2026-03-10 16:30"),
            sla_risk_at=at("2026-03-10 15:00"),
            sla_breach_at=at("2026-03-10 16:30"),
            waiting_since=at("2026-03-10 08:30"),
        )
        ticket(
            3,
            "Billing",
            "2026-03-08 10:00",
            "open",
            assignee="sam",
            last_customer_message_at=at("2026-03-08 10:00"),
            last_agent_reply_at=at("2026-03-08 11:00"),
            resolution_due=at("2026-03-11 10:00"),
            sla_check_at=at("2026-03-10 20:00"),
            sla_risk_at=at("2026-03-10 20:00"),
            sla_breach_at=at("2026-03-11 10:00"),
        )
        ticket(4, "Billing", "2026-03-05 10:00", "pending", assignee="sam")
        ticket(5, "Billing", "2026-03-10 07:00", "resolved", assignee="sam", resolved_at=at("2026-03-10 11:15"))
        ticket(6, "Billing", "2026-03-09 16:00", "resolved", resolved_at=at("2026-03-09 17:00"))
        ticket(
            7,
            "Billing",
            "2026-03-09 12:00",
            "closed",
            resolved_at=at("2026-03-10 14:59:59"),
            closed_at=at("2026-03-10 14:59:59"),
        )
        ticket(
            8,
            "Technical",
            "2026-03-10 15:00",
            "new",
            last_customer_message_at=at("2026-03-10 15:00"),
            first_response_due=at("2026-03-10 16:00"),
            sla_check_at=at("2026-03-10 15:00"),
            sla_risk_at=at("2026-03-10 15:00"),
            sla_breach_at=at("2026-03-10 16:00"),
            waiting_since=at("2026-03-10 15:00"),
        )
        ticket(
            9,
            "Technical",
            "2026-03-10 00:00",
            "open",
            assignee="tess",
            last_customer_message_at=at("2026-03-10 00:00"),
            resolution_due=at("2026-03-10 12:00"),
            sla_check_at=at("2026-03-10 12:00"),
            sla_risk_at=at("2026-03-10 09:36"),
            sla_breach_at=at("2026-03-10 12:00"),
            waiting_since=at("2026-03-10 00:00"),
        )
        ticket(10, "Technical", "2026-03-09 09:00", "resolved", assignee="tess", resolved_at=at("2026-03-10 09:30"))
        ticket(
            11,
            "Secret",
            "2026-03-10 09:00",
            "open",
            assignee="zed",
            last_customer_message_at=at("2026-03-10 09:00"),
            first_response_due=at("2026-03-10 10:00"),
            sla_risk_at=at("2026-03-10 09:48"),
            sla_breach_at=at("2026-03-10 10:00"),
            waiting_since=at("2026-03-10 09:00"),
        )
        await session.flush()
        message(1, "customer", "2026-03-10 09:10")
        message(2, "customer", "2026-03-09 08:00")
        message(2, "reply", "2026-03-09 09:00")
        message(2, "customer", "2026-03-10 08:30")
        message(5, "customer", "2026-03-10 07:00")
        message(5, "reply", "2026-03-10 11:00")
        message(6, "customer", "2026-03-09 16:00")
        message(8, "customer", "2026-03-10 15:00")
        message(9, "customer", "2026-03-10 00:00")
        message(11, "customer", "2026-03-10 09:00")
        await session.flush()
        await counters.rebuild(session)


@pytest.fixture
async def dashboard_desk(desk: Desk) -> Desk:
    await build(desk)
    return desk


async def test_department_numbers_match_the_hand_computed_desk(dashboard_desk: Desk) -> None:
    board = await dashboard_desk.dashboard("sam", now=NOW)
    by_name = {row.department: row for row in board.departments}
    assert list(by_name) == ["Billing", "Technical"]
    billing, technical = by_name["Billing"], by_name["Technical"]
    assert (billing.new, billing.open, billing.pending, billing.unassigned) == (1, 2, 1, 1)
    assert billing.resolved_today == 2  # T5, T7 (T6 was yesterday)
    assert (billing.sla_breached, billing.sla_at_risk) == (1, 1)  # T1; T2
    assert billing.waiting_since == at("2026-03-10 08:30")  # T2's latest customer message, not T1
    assert billing.oldest_waiting(NOW) == timedelta(hours=7)
    assert (technical.new, technical.open, technical.pending, technical.unassigned) == (1, 1, 0, 1)
    assert technical.resolved_today == 1  # T10
    assert (technical.sla_breached, technical.sla_at_risk) == (1, 1)  # T9; T8
    assert technical.waiting_since == at("2026-03-10 00:00")


async def test_agents_show_availability_load_and_resolutions_within_the_viewers_departments(
    dashboard_desk: Desk,
) -> None:
    board = await dashboard_desk.dashboard("sam", now=NOW)
    agents = {row.handle: (row.availability, row.load, row.resolved_today) for row in board.agents}
    # zed is in Secret only: not a member of sam's departments, so not listed.
    assert agents == {
        "sam": ("available", 3, 1),  # T2, T3, T4; T5
        "sue": ("available", 0, 0),
        "tess": ("paused", 1, 1),  # T9; T10
    }


async def test_hours_of_today_count_created_incoming_and_resolved(dashboard_desk: Desk) -> None:
    board = await dashboard_desk.dashboard("sam", now=NOW)
    assert len(board.hours) == 24
    assert board.hours[0].start == at("2026-03-10 00:00")
    found = {
        index: (hour.created, hour.incoming, hour.resolved)
        for index, hour in enumerate(board.hours)
        if hour.created or hour.incoming or hour.resolved
    }
    assert found == {
        0: (1, 1, 0),  # T9
        7: (1, 1, 0),  # T5
        8: (0, 1, 0),  # T2's second customer message
        9: (1, 1, 1),  # T1 created and wrote; T10 resolved 09:30
        11: (0, 0, 1),  # T5 resolved 11:15 (its reply is not incoming)
        14: (0, 0, 1),  # T7 at 14:59:59 stays in hour 14
        15: (1, 1, 0),  # T8
    }


async def test_a_supervisor_never_sees_departments_they_are_not_in(dashboard_desk: Desk) -> None:
    board = await dashboard_desk.dashboard("sue", now=NOW)
    assert [row.department for row in board.departments] == ["Technical"]
    assert {row.handle for row in board.agents} == {"sam", "sue", "tess"}
    sam = next(row for row in board.agents if row.handle == "sam")
    assert (sam.load, sam.resolved_today) == (0, 0)  # sam's Billing tickets are not sue's to see
    assert sum(hour.incoming for hour in board.hours) == 2  # T8, T9; never T11 in Secret
    secret = await dashboard_desk.dashboard("zed", now=NOW)
    assert [(row.department, row.open, row.sla_breached) for row in secret.departments] == [("Secret", 1, 1)]


async def test_an_agent_is_refused_the_dashboard_in_one_sentence(dashboard_desk: Desk) -> None:
    with pytest.raises(Forbidden, match="supervisors and admins"):
        await dashboard_desk.dashboard("tess", now=NOW)


async def test_today_follows_the_desks_time_zone(dashboard_desk: Desk) -> None:
    # 15:30 UTC is 11:30 in New York (EDT from 03-08): the day began at 04:00 UTC, so T9 (00:00 UTC)
    # and T10's resolution (09:30 UTC = 05:30 local) fall on either side of it.
    settings = Settings.model_validate({"desk": {"timezone": "America/New_York"}})
    desk = Desk(dashboard_desk.db, settings)
    board = await desk.dashboard("sue", now=NOW)
    assert board.day_start.utcoffset() == timedelta(hours=-4)
    assert board.day_start.astimezone(UTC) == at("2026-03-10 04:00")
    assert [
        (hour.created, hour.incoming, hour.resolved)
        for hour in board.hours
        if hour.created or hour.resolved or hour.incoming
    ] == [(0, 0, 1), (1, 1, 0)]  # 05:00 local: T10 resolved; 11:00 local (15:00 UTC): T8
    assert board.hours[5].resolved == 1
    assert board.hours[11].created == 1


async def test_hours_follow_a_half_hour_time_zone(dashboard_desk: Desk) -> None:
    # Kolkata is UTC+05:30: 15:30 UTC is 21:00 local, the day began at 18:30 UTC on 03-09. T10's resolution
    # (09:30 UTC = 15:00 local) is in local hour 15; T8 (15:00 UTC = 20:30 local) in hour 20, not 21.
    settings = Settings.model_validate({"desk": {"timezone": "Asia/Kolkata"}})
    desk = Desk(dashboard_desk.db, settings)
    board = await desk.dashboard("sue", now=NOW)
    assert board.day_start.astimezone(UTC) == at("2026-03-09 18:30")
    assert board.hours[15].start.astimezone(UTC) == at("2026-03-10 09:30")
    found = {
        index: (hour.created, hour.incoming, hour.resolved)
        for index, hour in enumerate(board.hours)
        if hour.created or hour.incoming or hour.resolved
    }
    assert found == {5: (1, 1, 0), 15: (0, 0, 1), 20: (1, 1, 0)}  # T9 at 00:00 UTC = 05:30 local
