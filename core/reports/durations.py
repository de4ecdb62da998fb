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

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.hours import Calendar
from core.sla import policy_of
from storage.models import Department, Event, Message, Ticket
from storage.types import MessageKind, Status

Span = tuple[datetime, datetime | None]  # a pending span; None: still pending
_BATCH = 500
# Stored minutes are whole multiples of 1/64 minute (~0.94 s): any sum of such values below 2**47 minutes
# is exact in a double whatever the order, so the day cache's sums of daily sums and the base SQL's sum
# over the rows are the same number to the last bit (core.reports.metrics.average). Migration 0011
# rounds the rows stored before; its SQL is the same half-up rounding as `stored_minutes`.
MINUTE_STEPS = 64


def stored_minutes(minutes: float) -> float:
    """`minutes` rounded half up to the nearest 1/MINUTE_STEPS minute, as every duration is stored."""
    return math.floor(minutes * MINUTE_STEPS + 0.5) / MINUTE_STEPS


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
    return stored_minutes(max(total, 0.0))


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


def ticket_durations(
    calendar: Calendar | None,
    created: datetime,
    first_response: datetime | None,
    resolved: datetime | None,
    messages: Iterable[tuple[str, datetime, Any]],
    events: Iterable[tuple[datetime, dict[str, Any] | None]],
) -> tuple[float | None, float | None, list[float | None]]:
    """A ticket's stored durations from its history: (first response, resolution, each reply's answer).

    `messages` are its (kind, created_at, automatic flags) in time order, `events` its (at, data) in
    id order; the answers line up with the replies among `messages`.
    """
    pending = pending_spans(events)
    first = None if first_response is None else net_minutes(calendar, created, first_response, pending)
    resolution = None if resolved is None else net_minutes(calendar, created, resolved, pending)
    answers: list[float | None] = []
    waiting: datetime | None = None
    for kind, at, automatic in messages:
        if kind == MessageKind.CUSTOMER.value:
            if waiting is None and not _is_automatic(automatic):
                waiting = at
        elif kind == MessageKind.REPLY.value:
            answers.append(None if waiting is None else net_minutes(calendar, waiting, at, pending))
            waiting = None
    return first, resolution, answers


def fill_rows(
    calendars: dict[int, Calendar | None],
    tickets: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    events: list[dict[str, Any]],
) -> None:
    """Set the stored durations on rows about to be bulk-inserted (the demo and scale desks), in place:
    every ticket dict gets both ticket columns and every message dict `answer_minutes` (same keys on all
    rows, as an executemany needs). `events` must be in the order they will be inserted."""
    by_ticket: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for message in messages:
        message["answer_minutes"] = None
        by_ticket[message["ticket_id"]].append(message)
    history: dict[int, list[tuple[datetime, dict[str, Any] | None]]] = defaultdict(list)
    for event in events:
        if event.get("ticket_id") is not None:
            history[event["ticket_id"]].append((event["at"], event.get("data")))
    for ticket in tickets:
        thread = sorted(by_ticket.get(ticket["id"], []), key=lambda row: (row["created_at"], row["id"]))
        first, resolution, answers = ticket_durations(
            calendars.get(ticket["department_id"]),
            ticket["created_at"],
            ticket.get("first_response_at"),
            ticket.get("resolved_at"),
            [(row["kind"], row["created_at"], row.get("automatic")) for row in thread],
            history.get(ticket["id"], []),
        )
        ticket["first_response_minutes"], ticket["resolution_minutes"] = first, resolution
        replies = iter(answers)
        for row in thread:
            if row["kind"] == MessageKind.REPLY.value:
                row["answer_minutes"] = next(replies)


async def calendars_of(session: AsyncSession) -> dict[int, Calendar | None]:
    return {department.id: hours_of(department) for department in (await session.execute(select(Department))).scalars()}


async def backfill(session: AsyncSession, *, batch: int = _BATCH) -> int:
    """Compute every stored duration of existing tickets and replies (after migration 0007); returns
    how many tickets it read. Batches of `batch` tickets by id, so memory stays flat on big desks."""
    calendars = await calendars_of(session)
    last_id, seen = 0, 0
    while True:
        tickets = (
            await session.execute(
                select(Ticket.id, Ticket.department_id, Ticket.created_at, Ticket.first_response_at, Ticket.resolved_at)
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
        for message_row in await session.execute(
            select(Message.id, Message.ticket_id, Message.kind, Message.created_at, Message.automatic)
            .where(Message.ticket_id.in_(ids), Message.kind.in_([MessageKind.CUSTOMER.value, MessageKind.REPLY.value]))
            .order_by(Message.ticket_id, Message.created_at, Message.id)
        ):
            messages[message_row.ticket_id].append(message_row)
        ticket_values: list[dict[str, Any]] = []
        reply_values: list[dict[str, Any]] = []
        for row in tickets:
            thread = messages.get(row.id, [])
            first, resolution, answers = ticket_durations(
                calendars.get(row.department_id),
                row.created_at,
                row.first_response_at,
                row.resolved_at,
                [(message.kind, message.created_at, message.automatic) for message in thread],
                events.get(row.id, []),
            )
            ticket_values.append({"b_id": row.id, "b_first": first, "b_resolution": resolution})
            replies = [message for message in thread if message.kind == MessageKind.REPLY.value]
            reply_values.extend(
                {"b_id": message.id, "b_answer": answer}
                for message, answer in zip(replies, answers, strict=True)
                if answer is not None
            )
        # Core UPDATEs by primary key (executemany): no ORM identity map to fill over a million rows.
        tickets_table, messages_table = cast(Table, Ticket.__table__), cast(Table, Message.__table__)
        await session.execute(
            update(tickets_table)
            .where(tickets_table.c.id == bindparam("b_id"))
            .values(first_response_minutes=bindparam("b_first"), resolution_minutes=bindparam("b_resolution")),
            ticket_values,
        )
        if reply_values:
            await session.execute(
                update(messages_table)
                .where(messages_table.c.id == bindparam("b_id"))
                .values(answer_minutes=bindparam("b_answer")),
                reply_values,
            )


__all__ = [
    "answer_minutes",
    "backfill",
    "calendars_of",
    "fill_rows",
    "hours_of",
    "net_minutes",
    "on_change",
    "pending_spans",
    "stored_minutes",
    "ticket_durations",
]
