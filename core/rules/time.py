"""Scheduled rule triggers: "N hours (or business hours) since created / last customer message / last agent
reply", and "SLA due in N minutes" (the earliest running due time of a new or open ticket).

A rule fires once per ticket per occurrence: the instant it counted from is
remembered in the ticket's `sla_state["rules"]`, so a new customer message
(a new occurrence) can fire it again, but a scan repeated over the same
period cannot. Candidates are the active tickets whose anchor lies in the
period's reach; the exact threshold (in the department's business hours when
asked) decides.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.model import RuleSpec
from core.sla import policy_of
from core.tickets import ACTIVE_STATUSES
from storage.models import Department, Ticket
from storage.types import Status

ANCHORS = {
    "created": Ticket.created_at,
    "customer_message": Ticket.last_customer_message_at,
    "agent_reply": Ticket.last_agent_reply_at,
}
# Business hours stretch a threshold past weekends and holidays; look this far back for anchors.
BUSINESS_SLACK = timedelta(days=30)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _earliest_due(ticket: Ticket) -> datetime | None:
    """The earliest due time of a running clock (core.sla keeps it; a stopped clock keeps its due for reports)."""
    return None if ticket.sla_breach_at is None else _aware(ticket.sla_breach_at)


async def threshold(session: AsyncSession, spec: RuleSpec, ticket: Ticket) -> datetime | None:
    if spec.trigger["on"] == "sla_due_in":
        due = _earliest_due(ticket)
        return None if due is None else due - timedelta(minutes=float(spec.trigger["minutes"]))
    anchor = getattr(ticket, ANCHORS[spec.trigger["since"]].key)
    if anchor is None:
        return None
    hours = float(spec.trigger["hours"])
    if spec.trigger.get("business"):
        department = await session.get(Department, ticket.department_id)
        policy = policy_of(department) if department is not None else None
        if policy is not None:
            return policy.calendar.add(_aware(anchor), hours * 60)
    return _aware(anchor) + timedelta(hours=hours)


async def time_candidates(
    session: AsyncSession, spec: RuleSpec, start: datetime, now: datetime, *, limit: int = 1000
) -> list[tuple[Ticket, datetime]]:
    """Active tickets whose threshold for this rule falls in (start, now], with that threshold."""
    if spec.trigger["on"] == "sla_due_in":
        # The earliest running due time, N minutes ahead: dues in (start + N, now + N].
        ahead = timedelta(minutes=float(spec.trigger["minutes"]))
        rows = (
            await session.execute(
                select(Ticket)
                .where(
                    Ticket.status.in_((Status.NEW.value, Status.OPEN.value)),
                    Ticket.sla_breach_at.between(start + ahead, now + ahead),
                )
                .order_by(Ticket.id)
                .limit(limit)
            )
        ).scalars().all()
        found = []
        for ticket in rows:
            moment = await threshold(session, spec, ticket)
            if moment is not None and start < moment <= now:
                found.append((ticket, moment))
        return found
    column = ANCHORS[spec.trigger["since"]]
    hours = timedelta(hours=float(spec.trigger["hours"]))
    earliest = start - hours - (BUSINESS_SLACK if spec.trigger.get("business") else timedelta())
    rows = (
        await session.execute(
            select(Ticket)
            .where(Ticket.status.in_(ACTIVE_STATUSES), column.is_not(None), column > earliest, column <= now - hours)
            .order_by(column, Ticket.id)
            .limit(limit)
        )
    ).scalars().all()
    out = []
    for ticket in rows:
        moment = await threshold(session, spec, ticket)
        if moment is not None and start < moment <= now:
            out.append((ticket, moment))
    return out


def anchor_key(spec: RuleSpec, ticket: Ticket) -> str | None:
    if spec.trigger["on"] == "sla_due_in":
        due = _earliest_due(ticket)  # a new due time is a new occurrence
        return None if due is None else due.isoformat()
    anchor = getattr(ticket, ANCHORS[spec.trigger["since"]].key)
    return None if anchor is None else _aware(anchor).isoformat()


def already_fired(spec: RuleSpec, ticket: Ticket) -> bool:
    marks = (ticket.sla_state or {}).get("rules", {})
    return marks.get(str(spec.id)) == anchor_key(spec, ticket)


def mark_fired(spec: RuleSpec, ticket: Ticket) -> None:
    state = dict(ticket.sla_state or {})
    state["rules"] = {**state.get("rules", {}), str(spec.id): anchor_key(spec, ticket)}
    ticket.sla_state = state
