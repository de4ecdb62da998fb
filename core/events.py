"""The change feed: append one event per change, in the change's own transaction, and read it back.

Events are never updated or deleted. Live screens follow them by id; a
ticket's history is its events in id order.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.policy import Actor, visible_department_ids
from storage.models import Agent, Event, Ticket
from storage.types import utcnow


async def record(
    session: AsyncSession,
    actor: Actor,
    kind: str,
    *,
    ticket: Ticket | None = None,
    department_id: int | None = None,
    prior_department_id: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    # Changes made by a rule carry the rule chain that caused them (core.rules.engine), so a chain
    # of rules stays bounded and each event says which rule did it.
    automation = session.info.get("automation")
    if automation:
        data = {**(data or {}), "automation": automation}
    event = Event(
        at=utcnow(),  # the desk's clock, like the change's own timestamps (pending spans are read from these)
        kind=kind,
        actor_id=actor.id,
        ticket_id=ticket.id if ticket is not None else None,
        department_id=department_id if department_id is not None else (ticket.department_id if ticket else None),
        prior_department_id=prior_department_id,
        data={"by": actor.handle, **(data or {})},
    )
    session.add(event)
    return event


async def latest_id(session: AsyncSession) -> int:
    return (await session.execute(select(Event.id).order_by(Event.id.desc()).limit(1))).scalar() or 0


async def visible_since(
    session: AsyncSession, actor: Actor, after_id: int, limit: int = 500
) -> list[tuple[Event, str | None]]:
    """Events after `after_id` that touch the actor's departments (either side of a transfer)."""
    departments = visible_department_ids(actor)
    rows = await session.execute(
        select(Event, Agent.handle)
        .outerjoin(Agent, Agent.id == Event.actor_id)
        .where(
            Event.id > after_id,
            or_(Event.department_id.in_(departments), Event.prior_department_id.in_(departments)),
        )
        .order_by(Event.id)
        .limit(limit)
    )
    return [(event, handle) for event, handle in rows]
