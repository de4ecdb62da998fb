"""The per-ticket export: one row per ticket created in a period, streamed from the database.

A year of a big desk is hundreds of thousands of tickets: the rows come off
a server-side cursor (`AsyncSession.stream` with `yield_per`) a batch at a
time and go out as they come, so memory stays flat however long the period.
Within the viewer's departments, like every report. A ticket's tags come
with its row, aggregated by a correlated subquery of the same statement
(a JSON array: SQLite's json_group_array, PostgreSQL's json_agg), never by a
query per ticket.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, ScalarSelect, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.policy import Actor, ticket_visible
from core.refs import format_ref
from storage.models import Agent, Department, Rating, Tag, Ticket, TicketTag
from storage.types import Priority, Status

TICKET_COLUMNS = (
    "ref",
    "department",
    "subject",
    "status",
    "priority",
    "channel",
    "assignee",
    "created",
    "first_response",
    "resolved",
    "first_response_minutes",
    "resolution_minutes",
    "sla_first_response",
    "sla_resolution",
    "rating",
    "tags",
)
# Rows the cursor hands over at a time: big enough to keep round trips few, small enough to stay flat.
STREAM_BATCH = 1000


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _moment(value: datetime | None) -> str:
    moment = _utc(value)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else ""


def sla_state(due: datetime | None, done: datetime | None, now: datetime) -> str:
    """One target's state, as the report counts it: met, breached, due (running) or '' (no target)."""
    due, done = _utc(due), _utc(done)
    if due is None:
        return ""
    if done is not None:
        return "met" if done <= due else "breached"
    return "breached" if due <= now else "due"


def _tag_names(dialect: str) -> ScalarSelect[Any]:
    """The row's tag names as one JSON array, NULL or [] without tags (unordered: sorted in Python,
    so both dialects sort alike, by code point)."""
    names = func.json_group_array if dialect == "sqlite" else func.json_agg
    return (
        select(names(Tag.name, type_=JSON))
        .select_from(TicketTag)
        .join(Tag, Tag.id == TicketTag.tag_id)
        .where(TicketTag.ticket_id == Ticket.id)
        .correlate(Ticket)
        .scalar_subquery()
    )


def _minutes(value: float | None) -> float | None:
    return None if value is None else round(float(value), 1)


async def iter_ticket_rows(
    session: AsyncSession,
    actor: Actor,
    start: datetime,
    end: datetime,
    prefix: str,
    dialect: str,
    *,
    batch: int = STREAM_BATCH,
) -> AsyncIterator[dict[str, Any]]:
    """Every visible ticket created in [start, end), oldest first, as dicts keyed by TICKET_COLUMNS
    (`tags`: the sorted list of the ticket's tag names)."""
    latest = aliased(Rating)
    newest = select(func.max(latest.id)).where(latest.ticket_id == Ticket.id).correlate(Ticket).scalar_subquery()
    statement = (
        select(
            Ticket.id,
            Department.name,
            Ticket.subject,
            Ticket.status,
            Ticket.priority,
            Ticket.channel,
            Agent.handle,
            Ticket.created_at,
            Ticket.first_response_at,
            Ticket.resolved_at,
            Ticket.first_response_minutes,
            Ticket.resolution_minutes,
            Ticket.first_response_due,
            Ticket.resolution_due,
            Rating.score,
            _tag_names(dialect),
        )
        .select_from(Ticket)
        .join(Department, Department.id == Ticket.department_id)
        .outerjoin(Agent, Agent.id == Ticket.assignee_id)
        .outerjoin(Rating, Rating.id == newest)
        .where(ticket_visible(actor), Ticket.created_at >= start, Ticket.created_at < end)
        .order_by(Ticket.id)
        .execution_options(yield_per=batch)
    )
    now = datetime.now(UTC)
    result = await session.stream(statement)
    try:
        async for row in result:
            (
                ticket_id,
                department,
                subject,
                status,
                priority,
                channel,
                assignee,
                created,
                first,
                resolved,
                first_minutes,
                resolution_minutes,
                first_due,
                resolution_due,
                score,
                tags,
            ) = row
            resolved_at = resolved if status != Status.SPAM.value else None
            yield {
                "ref": format_ref(prefix, ticket_id),
                "department": department,
                "subject": subject,
                "status": status,
                "priority": Priority(priority).label,
                "channel": channel,
                "assignee": assignee,
                "created": _moment(created),
                "first_response": _moment(first),
                "resolved": _moment(resolved_at),
                "first_response_minutes": _minutes(first_minutes),
                "resolution_minutes": _minutes(resolution_minutes) if resolved_at is not None else None,
                "sla_first_response": sla_state(first_due, first, now),
                "sla_resolution": sla_state(resolution_due, resolved, now),
                "rating": "" if score is None else ("positive" if score > 0 else "negative"),
                "tags": sorted(tags or ()),
            }
    finally:
        await result.close()


__all__ = ["STREAM_BATCH", "TICKET_COLUMNS", "iter_ticket_rows", "sla_state"]
