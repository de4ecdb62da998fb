"""Kept drafts and presence: the console's per-agent state that must outlive one console process.

A draft is an agent's unsent reply or note on a ticket. Presence is a
heartbeat row per agent and ticket ("viewing" or "replying"); rows older than
PRESENCE_TTL count as gone, so a console that died leaves no ghost for long.
Both only ever touch tickets the agent may see (`core.policy`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadArgument
from core.policy import Actor
from storage.console import Draft, Presence
from storage.models import Agent, Ticket
from storage.types import utcnow

DRAFT_KINDS = ("reply", "note")
ACTIVITIES = ("viewing", "replying")
PRESENCE_TTL = timedelta(seconds=30)
MAX_DRAFT = 5_000_000


@dataclass(frozen=True)
class PresenceView:
    handle: str
    activity: str
    seen_at: datetime


def _kind(kind: str) -> str:
    if kind not in DRAFT_KINDS:
        raise BadArgument(f"{kind!r} is not a draft kind; use reply or note.")
    return kind


def _agent_id(actor: Actor) -> int:
    if actor.id is None:
        raise BadArgument("Only an agent keeps drafts and presence; name one with --as.")
    return actor.id


async def load_draft(session: AsyncSession, actor: Actor, ticket: Ticket, kind: str) -> str | None:
    draft = await session.get(Draft, (_agent_id(actor), ticket.id, _kind(kind)))
    return draft.body if draft else None


async def save_draft(session: AsyncSession, actor: Actor, ticket: Ticket, kind: str, body: str) -> None:
    if len(body) > MAX_DRAFT:
        raise BadArgument(f"A draft holds at most {MAX_DRAFT:,} characters; shorten it.")
    draft = await session.get(Draft, (_agent_id(actor), ticket.id, _kind(kind)))
    if draft is None:
        session.add(Draft(agent_id=actor.id, ticket_id=ticket.id, kind=kind, body=body, updated_at=utcnow()))
    else:
        draft.body = body
        draft.updated_at = utcnow()


async def discard_draft(session: AsyncSession, actor: Actor, ticket: Ticket, kind: str) -> None:
    await session.execute(
        delete(Draft).where(Draft.agent_id == _agent_id(actor), Draft.ticket_id == ticket.id, Draft.kind == _kind(kind))
    )


async def heartbeat(session: AsyncSession, actor: Actor, ticket: Ticket, activity: str | None) -> list[PresenceView]:
    """Record (or with None, end) the actor's presence on the ticket; returns the other agents there now."""
    agent_id = _agent_id(actor)
    now = utcnow()
    row = await session.get(Presence, (agent_id, ticket.id))
    if activity is None:
        if row is not None:
            await session.delete(row)
    else:
        if activity not in ACTIVITIES:
            raise BadArgument(f"{activity!r} is not a presence activity; use viewing or replying.")
        if row is None:
            session.add(Presence(agent_id=agent_id, ticket_id=ticket.id, activity=activity, seen_at=now))
        else:
            row.activity = activity
            row.seen_at = now
    others = await session.execute(
        select(Agent.handle, Presence.activity, Presence.seen_at)
        .join(Agent, Agent.id == Presence.agent_id)
        .where(Presence.ticket_id == ticket.id, Presence.agent_id != agent_id, Presence.seen_at > now - PRESENCE_TTL)
        .order_by(Agent.handle)
    )
    return [PresenceView(handle, kind, seen_at) for handle, kind, seen_at in others]
