"""Counters kept in step with every ticket change: tickets per department, status and assigned-or-not
(the queues' counts), and per department, assignee and status (the agents' load on the dashboard).

Reading a dozen counter rows is what makes department counts cost well under
a millisecond on a million tickets. Every ticket write that moves a ticket
between (department, status, assignee) goes through `move()` or `add()` in the
same transaction; `rebuild()` recomputes them from the tickets for `termdesk check`.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AgentLoadCounter, Department, QueueCounter, Ticket
from storage.types import Status

CounterKey = tuple[int, str, int | None]  # (department, status, assignee or None)
QueueKey = tuple[int, str, bool]  # a queue_counters row: (department, status, assigned)
LoadKey = tuple[int, int, str]  # an agent_load_counters row: (department, agent, status)
Counts = tuple[dict[QueueKey, int], dict[LoadKey, int]]


def key_of(ticket: Ticket) -> CounterKey:
    return (ticket.department_id, ticket.status, ticket.assignee_id)


async def create_for_department(session: AsyncSession, department_id: int) -> None:
    await session.execute(
        insert(QueueCounter),
        [
            {"department_id": department_id, "status": status.value, "assigned": assigned, "count": 0}
            for status in Status
            for assigned in (False, True)
        ],
    )


async def move(session: AsyncSession, before: CounterKey | None, after: CounterKey | None) -> None:
    """One ticket left `before` and entered `after` (None: created / deleted)."""
    if before == after:
        return
    for key, delta in ((before, -1), (after, 1)):
        if key is not None:
            await add(session, key, delta)


async def add(session: AsyncSession, key: CounterKey, delta: int) -> None:
    """`delta` tickets entered (or, negative, left) one counter; batch imports move many at once."""
    if not delta:
        return
    department_id, status, assignee_id = key
    await session.execute(
        update(QueueCounter)
        .where(*_queue_row((department_id, status, assignee_id is not None)))
        .values(count=QueueCounter.count + delta)
        .execution_options(synchronize_session=False)
    )
    if assignee_id is not None:
        await _add_load(session, (department_id, assignee_id, status), delta)


async def _add_load(session: AsyncSession, key: LoadKey, delta: int) -> None:
    # Rows appear the first time an agent holds a ticket of a status in a department; an upsert, so two
    # PostgreSQL writers adding the same new row do not collide.
    department_id, agent_id, status = key
    values = {"department_id": department_id, "agent_id": agent_id, "status": status, "count": delta}
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = dialect.insert(AgentLoadCounter).values(**values)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["department_id", "agent_id", "status"],
            set_={"count": AgentLoadCounter.count + statement.excluded.count},
        )
    )


async def computed(session: AsyncSession) -> Counts:
    """The counts as the tickets say, by a full GROUP BY (slow on big desks; for checks)."""
    queues: dict[QueueKey, int] = {}
    loads: dict[LoadKey, int] = {}
    rows = await session.execute(
        select(Ticket.department_id, Ticket.status, Ticket.assignee_id, func.count()).group_by(
            Ticket.department_id, Ticket.status, Ticket.assignee_id
        )
    )
    for department_id, status, assignee_id, count in rows:
        key = (department_id, status, assignee_id is not None)
        queues[key] = queues.get(key, 0) + count
        if assignee_id is not None:
            loads[(department_id, assignee_id, status)] = count
    return queues, loads


async def stored(session: AsyncSession) -> Counts:
    queues = await session.execute(
        select(QueueCounter.department_id, QueueCounter.status, QueueCounter.assigned, QueueCounter.count)
    )
    loads = await session.execute(
        select(AgentLoadCounter.department_id, AgentLoadCounter.agent_id, AgentLoadCounter.status,
               AgentLoadCounter.count)
    )
    return (
        {(department, status, bool(assigned)): count for department, status, assigned, count in queues},
        {(department, agent, status): count for department, agent, status, count in loads},
    )


def disagreements(truth: Counts, kept: Counts) -> int:
    """How many counter rows (of either table) differ between two readings."""
    return _differing(truth[0], kept[0]) + _differing(truth[1], kept[1])


def _differing(truth: dict[Any, int], kept: dict[Any, int]) -> int:
    return sum(1 for key in set(truth) | set(kept) if truth.get(key, 0) != kept.get(key, 0))


async def rebuild(session: AsyncSession) -> int:
    """Recompute every counter from the tickets; returns how many rows were wrong."""
    truth = await computed(session)
    before = await stored(session)
    department_ids = (await session.execute(select(Department.id))).scalars().all()
    await session.execute(delete(QueueCounter))
    await session.execute(delete(AgentLoadCounter))
    for department_id in department_ids:
        await create_for_department(session, department_id)
    queues, loads = truth
    for key, count in queues.items():
        await session.execute(update(QueueCounter).where(*_queue_row(key)).values(count=count))
    if loads:
        await session.execute(
            insert(AgentLoadCounter),
            [
                {"department_id": department_id, "agent_id": agent_id, "status": status, "count": count}
                for (department_id, agent_id, status), count in loads.items()
            ],
        )
    return disagreements(truth, before)


def _queue_row(key: QueueKey) -> tuple[ColumnElement[bool], ...]:
    department_id, status, assigned = key
    return (
        QueueCounter.department_id == department_id,
        QueueCounter.status == status,
        QueueCounter.assigned == assigned,
    )
