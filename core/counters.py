"""Queue counters: tickets per department, status and assigned-or-not, kept in step with every change.

Reading a dozen counter rows is what makes department counts cost well under
a millisecond on a million tickets. Every ticket write that moves a ticket
between (department, status, assigned) goes through `move()` in the same
transaction; `rebuild()` recomputes them from the tickets for `termdesk check`.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Department, QueueCounter, Ticket
from storage.types import Status

CounterKey = tuple[int, str, bool]


def key_of(ticket: Ticket) -> CounterKey:
    return (ticket.department_id, ticket.status, ticket.assignee_id is not None)


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
    await session.execute(
        update(QueueCounter)
        .where(*_row(key))
        .values(count=QueueCounter.count + delta)
        .execution_options(synchronize_session=False)
    )


async def computed(session: AsyncSession) -> dict[CounterKey, int]:
    """The counts as the tickets say, by a full GROUP BY (slow on big desks; for checks)."""
    assigned = Ticket.assignee_id.is_not(None)
    rows = await session.execute(
        select(Ticket.department_id, Ticket.status, assigned, func.count()).group_by(
            Ticket.department_id, Ticket.status, assigned
        )
    )
    return {(department, status, bool(is_assigned)): count for department, status, is_assigned, count in rows}


async def stored(session: AsyncSession) -> dict[CounterKey, int]:
    rows = await session.execute(
        select(QueueCounter.department_id, QueueCounter.status, QueueCounter.assigned, QueueCounter.count)
    )
    return {(department, status, bool(assigned)): count for department, status, assigned, count in rows}


async def rebuild(session: AsyncSession) -> int:
    """Recompute every counter from the tickets; returns how many rows were wrong."""
    truth = await computed(session)
    before = await stored(session)
    department_ids = (await session.execute(select(Department.id))).scalars().all()
    await session.execute(delete(QueueCounter))
    for department_id in department_ids:
        await create_for_department(session, department_id)
    for key, count in truth.items():
        await session.execute(
            update(QueueCounter)
            .where(*_row(key))
            .values(count=count)
        )
    keys = set(before) | set(truth)
    return sum(1 for key in keys if before.get(key, 0) != truth.get(key, 0))


def _row(key: CounterKey) -> tuple[ColumnElement[bool], ...]:
    department_id, status, assigned = key
    return (
        QueueCounter.department_id == department_id,
        QueueCounter.status == status,
        QueueCounter.assigned == assigned,
    )
