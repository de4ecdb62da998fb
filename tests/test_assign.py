"""Automatic assignment: round-robin fairness, least-loaded, paused and full agents skipped, nobody free."""

from __future__ import annotations

from collections import Counter

import pytest
from sqlalchemy import func, select

from core import Desk
from core.errors import BadArgument, Forbidden
from core.policy import Actor
from core.views import Intake
from storage.models import Agent, Ticket

HANDLES = ("ann", "ben", "cat", "dan")


async def setup_desk(desk: Desk, mode: str) -> None:
    operator = Actor.operator()
    await desk.add_department(operator, "Support", email="support@desk.example")
    await desk.add_department(operator, "Sales", email="sales@desk.example")
    for handle in HANDLES:
        await desk.add_agent(operator, handle, name=handle.title(), email=f"{handle}@desk.example",
                             departments=["Support"])
    await desk.add_agent(operator, "sal", name="Sal", email="sal@desk.example", departments=["Sales"])
    await desk.set_automation(operator, "Support", "assignment", mode)


async def ticket(desk: Desk, n: int, department: str = "Support") -> str:
    row = await desk.create_ticket(Actor.system(), Intake(
        department=department, subject=f"Question {n}", body="?", contact_email=f"c{n % 50}@example.org"))
    return row.ref


async def assignees(desk: Desk) -> Counter[str]:
    async with desk.db.reading() as session:
        rows = await session.execute(
            select(Agent.handle, func.count()).join(Ticket, Ticket.assignee_id == Agent.id).group_by(Agent.handle))
        return Counter(dict(rows.all()))


@pytest.mark.slow  # 2,000 transactions per database: the issue asks for fairness over 1,000 tickets
async def test_round_robin_is_fair_over_a_thousand_tickets_and_skips_paused_agents(
    desk: Desk, operator: Actor
) -> None:
    await setup_desk(desk, "round-robin")
    await desk.set_availability("cat", "cat", "paused")  # on a break: gets nothing
    order = []
    for n in range(1000):
        row = await desk.auto_assign("ann", await ticket(desk, n))
        order.append(row.assignee)
        if n == 599:
            await desk.set_availability(operator, "cat", "available")
    counts = Counter(order[:600])
    assert counts == {"ann": 200, "ben": 200, "dan": 200}
    assert order[:6] == ["ann", "ben", "dan", "ann", "ben", "dan"]  # strict turns by agent id
    later = Counter(order[600:])
    assert later == {"ann": 100, "ben": 100, "cat": 100, "dan": 100}
    assert await assignees(desk) == Counter(order)
    async with desk.db.reading() as session:
        events = (await session.execute(select(func.count()).select_from(Ticket).where(Ticket.assignee_id.is_(None))))
        assert events.scalar() == 0


async def test_least_loaded_and_max_load(desk: Desk, operator: Actor) -> None:
    await setup_desk(desk, "least-loaded")
    refs = [await ticket(desk, n) for n in range(6)]
    await desk.assign("ann", refs[0], "ann")
    await desk.assign("ann", refs[1], "ann")
    await desk.assign("ann", refs[2], "ben")
    await desk.set_max_load(operator, "dan", 1)
    picked = [(await desk.auto_assign("ann", ref)).assignee for ref in refs[3:6]]
    # cat and dan have none: cat (lower id) first, then dan; dan is then full (max 1), so cat again
    # (cat 1, ben 1: cat before ben? ben has the lower id) -> ben.
    assert picked == ["cat", "dan", "ben"]
    await desk.set_status("ann", refs[3], "resolved")  # resolved tickets are not load
    extra = await ticket(desk, 99)
    assert (await desk.auto_assign("ann", extra)).assignee == "cat"


@pytest.mark.parametrize("mode", ["round-robin", "least-loaded"])
async def test_nobody_available_leaves_the_ticket_waiting_until_someone_resumes(
    desk: Desk, operator: Actor, mode: str
) -> None:
    from core import assign

    await setup_desk(desk, mode)
    for handle in HANDLES:
        await desk.set_availability(operator, handle, "paused")
    ref = await ticket(desk, 1)
    assert (await desk.auto_assign("ann", ref)).assignee is None
    await desk.set_availability("ben", "ben", "available")
    async with desk.db.writing() as session:
        assert await assign.assign_waiting(session, Actor.system()) == 1
    assert (await desk.ticket("ben", ref)).ticket.assignee == "ben"


async def test_manual_departments_are_left_alone_and_only_admins_or_self_pause(desk: Desk, operator: Actor) -> None:
    await setup_desk(desk, "round-robin")
    ref = await ticket(desk, 1, "Sales")
    assert (await desk.auto_assign("sal", ref)).assignee is None
    with pytest.raises(Forbidden):
        await desk.set_availability("ann", "ben", "paused")
    with pytest.raises(BadArgument, match="assignment mode"):
        await desk.set_automation(operator, "Support", "assignment", "random")
    with pytest.raises(BadArgument, match="maximum load"):
        await desk.set_max_load(operator, "ann", 0)
