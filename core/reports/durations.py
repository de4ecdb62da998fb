"""Report durations, stored when they happen: first response, resolution, and each reply's answer time.

Reports average these over years of tickets; business time needs each
department's calendar (core.hours), which SQL cannot apply, so the minutes
are computed here once — when the first agent reply, a resolution, or a
reply happens (`core.tickets` calls in) — and stored on the ticket or the
reply for `core.reports.metrics` to average (as Zendesk keeps ticket metrics).

Every duration is business minutes where the department has hours (its SLA
policy's calendar), calendar minutes otherwise, and never counts time the
ticket spent pending (waiting on the customer). Pending spans are read from
the ticket's events (each status change is one), so the same function
computes them live and for rows that existed before the columns did
(`backfill`, run by `Desk.init` after migration 0007).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.hours import Calendar
from core.sla import policy_of
from storage.models import Department, Event, Message, Ticket
from storage.types import MessageKind, Status

Span = tuple[datetime, datetime | None]  # a pending span; None: still pending
_BATCH = 500


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def hours_of(department: Department | None) -> Calendar | None:
    """The department's business hours (its SLA policy's calendar), or None: count calendar time."""
    if department is None:
        return None
    policy = policy_of(department)
    if policy is None or not ((department.settings or {}).get("sla") or {}).get("calendar"):
        return None
    return policy.calendar


def pending_spans(events: Iterable[tuple[datetime, dict[str, Any] | None]]) -> list[Span]:
    """The spans a ticket was pending, from its events (at, data) in order: each status change is one."""
    spans: list[Span] = []
    since: datetime | None = None
    for at, data in events:
        change = ((data or {}).get("changes") or {}).get("status")
        if not isinstance(change, dict):
            continue
        before, after = change.get("before"), change.get("after")
        if after == Status.PENDING.value and since is None:
            since = _utc(at)
        elif before == Status.PENDING.value and after != Status.PENDING.value and since is not None:
            spans.append((since, _utc(at)))
            since = None
    if since is not None:
        spans.append((since, None))
    return spans


def _length(calendar: Calendar | None, start: datetime, end: datetime) -> float:
    if end <= start:
        return 0.0
    if calendar is None:
        return (end - start).total_seconds() / 60.0
    return calendar.business_time(start, end).total_seconds() / 60.0


def net_minutes(calendar: Calendar | None, start: datetime, end: datetime, pending: Sequence[Span]) -> float:
    """Minutes from `start` to `end` in the calendar's business time (wall-clock without one), less pending."""
    start, end = _utc(start), _utc(end)
    total = _length(calendar, start, end)
    for began, ended in pending:
        total -= _length(calendar, max(began, start), min(ended or end, end))
    return round(max(total, 0.0), 4)


async def _pending_of(session: AsyncSession, ticket_id: int) -> list[Span]:
    rows = await session.execute(select(Event.at, Event.data).where(Event.ticket_id == ticket_id).order_by(Event.id))
    return pending_spans(rows.all())


def _is_automatic(flags: Any) -> bool:
    return bool(flags)


async def on_change(session: AsyncSession, ticket: Ticket, changes: dict[str, Any]) -> None:
    """Store the first-response and resolution minutes when `changes` sets those moments.

    Called by `core.tickets.apply_change` before the change's own event is
    written: a pending span still open at this moment ends now.
    """
    first = changes.get("first_response_at")
    resolved = changes.get("resolved_at")
    if first is None and resolved is None:
        return
    calendar = hours_of(await session.get(Department, ticket.department_id))
    pending = await _pending_of(session, ticket.id)
    if first is not None:
        ticket.first_response_minutes = net_minutes(calendar, ticket.created_at, first, pending)
    if resolved is not None:
        ticket.resolution_minutes = net_minutes(calendar, ticket.created_at, resolved, pending)


async def answer_minutes(session: AsyncSession, ticket: Ticket, replied_at: datetime) -> float | None:
    """Minutes from the earliest customer message this reply answers (sent after the previous agent
    reply; automatic mail such as out-of-office answers excluded) to `replied_at`; None when none waited.

    Call before the reply changes `ticket.last_agent_reply_at`.
    """
    statement = select(Message.created_at, Message.automatic).where(
        Message.ticket_id == ticket.id, Message.kind == MessageKind.CUSTOMER.value
    )
    if ticket.last_agent_reply_at is not None:
        statement = statement.where(Message.created_at > ticket.last_agent_reply_at)
    rows = (await session.execute(statement.order_by(Message.created_at, Message.id))).all()
    waiting = next((created for created, automatic in rows if not _is_automatic(automatic)), None)
    if waiting is None:
        return None
    calendar = hours_of(await session.get(Department, ticket.department_id))
    return net_minutes(calendar, waiting, replied_at, await _pending_of(session, ticket.id))


async def backfill(session: AsyncSession, *, batch: int = _BATCH) -> int:
    """Compute every stored duration of existing tickets and replies (after migration 0007); returns
    how many tickets it read. Batches of `batch` tickets by id, so memory stays flat on big desks."""
    calendars: dict[int, Calendar | None] = {}
    for department in (await session.execute(select(Department))).scalars():
        calendars[department.id] = hours_of(department)
    last_id, seen = 0, 0
    while True:
        tickets = (
            await session.execute(
                select(Ticket.id, Ticket.department_id, Ticket.created_at, Ticket.first_response_at,
                       Ticket.resolved_at)
                .where(Ticket.id > last_id)
                .order_by(Ticket.id)
                .limit(batch)
            )
        ).all()
        if not tickets:
            return seen
        ids = [row.id for row in tickets]
        last_id, seen = ids[-1], seen + len(ids)
        events: dict[int, list[tuple[datetime, dict[str, Any] | None]]] = defaultdict(list)
        for ticket_id, at, data in await session.execute(
            select(Event.ticket_id, Event.at, Event.data).where(Event.ticket_id.in_(ids)).order_by(Event.id)
        ):
            events[ticket_id].append((at, data))
        messages: dict[int, list[Any]] = defaultdict(list)
        for row in await session.execute(
            select(Message.id, Message.ticket_id, Message.kind, Message.created_at, Message.automatic)
            .where(Message.ticket_id.in_(ids), Message.kind.in_([MessageKind.CUSTOMER.value, MessageKind.REPLY.value]))
            .order_by(Message.ticket_id, Message.created_at, Message.id)
        ):
            messages[row.ticket_id].append(row)
        ticket_values: list[dict[str, Any]] = []
        reply_values: list[dict[str, Any]] = []
        for row in tickets:
            calendar = calendars.get(row.department_id)
            pending = pending_spans(events.get(row.id, []))
            ticket_values.append({
                "id": row.id,
                "first_response_minutes": None if row.first_response_at is None
                else net_minutes(calendar, row.created_at, row.first_response_at, pending),
                "resolution_minutes": None if row.resolved_at is None
                else net_minutes(calendar, row.created_at, row.resolved_at, pending),
            })
            waiting: datetime | None = None
            for message in messages.get(row.id, []):
                if message.kind == MessageKind.CUSTOMER.value:
                    if waiting is None and not _is_automatic(message.automatic):
                        waiting = message.created_at
                elif waiting is not None:
                    reply_values.append(
                        {"id": message.id, "answer_minutes": net_minutes(calendar, waiting, message.created_at, pending)}
                    )
                    waiting = None
        # Core UPDATEs by primary key: the ORM's versioned bulk path would bump nothing but costs a SELECT.
        await session.execute(
            update(Ticket.__table__).where(Ticket.__table__.c.id == _bind("id")).values(
                first_response_minutes=_bind("first_response_minutes"), resolution_minutes=_bind("resolution_minutes")
            ),
            [{"b_" + key: value for key, value in item.items()} for item in ticket_values],
        )
        if reply_values:
            await session.execute(
                update(Message.__table__).where(Message.__table__.c.id == _bind("id")).values(
                    answer_minutes=_bind("answer_minutes")
                ),
                [{"b_" + key: value for key, value in item.items()} for item in reply_values],
            )


def _bind(name: str) -> Any:
    return bindparam("b_" + name)


__all__ = ["answer_minutes", "backfill", "hours_of", "net_minutes", "on_change", "pending_spans"]
