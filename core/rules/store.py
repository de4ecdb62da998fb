"""Admin side of the rules: list, show, add, edit, enable/disable, delete, import/export, and the dry run.

Every change is an admin operation and leaves a `rule.changed` event. The dry
run (`termdesk rule test`) reads only: it replays the rule's trigger over the
change feed of the period (or, for time triggers, the active tickets) against
each ticket as it is now, and lists what the rule would have done.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.errors import BadArgument, Conflict, NotFound
from core.policy import Actor, require_admin
from core.rules import actions
from core.rules.engine import spec_of
from core.rules.match import Facts, matches
from core.rules.model import EVENT_TRIGGERS, SCHEDULED_TRIGGERS, RuleSpec, parse_rule
from core.rules.time import time_candidates
from storage.models import Event, Ticket
from storage.rules import Rule
from storage.types import utcnow


async def _row(session: AsyncSession, name: str) -> Rule:
    wanted = " ".join(name.split())
    row = (await session.execute(select(Rule).where(Rule.name == wanted))).scalar_one_or_none()
    if row is None and wanted.isdigit():
        row = await session.get(Rule, int(wanted))
    if row is None:
        raise NotFound(f"No rule named {name!r} exists; list them with `termdesk rule list`.")
    return row


async def list_rules(session: AsyncSession, actor: Actor) -> list[RuleSpec]:
    require_admin(actor, "read rules")
    rows = (await session.execute(select(Rule).order_by(Rule.position, Rule.id))).scalars().all()
    return [spec_of(row) for row in rows]


async def show(session: AsyncSession, actor: Actor, name: str) -> RuleSpec:
    require_admin(actor, "read rules")
    return spec_of(await _row(session, name))


async def _start(session: AsyncSession, row: Rule, was_active: bool) -> None:
    """A rule switched on acts from the next event on, not on the history before it."""
    if row.active and not was_active:
        row.start_event_id = await events.latest_id(session)


def _apply(row: Rule, spec: RuleSpec) -> None:
    row.name, row.note, row.active, row.position, row.stop = spec.name, spec.note, spec.active, spec.order, spec.stop
    row.trigger = dict(spec.trigger)
    row.conditions = [[condition.to_dict() for condition in group] for group in spec.groups]
    row.actions = [dict(action) for action in spec.actions]
    row.updated_at = utcnow()


async def add(session: AsyncSession, actor: Actor, data: dict[str, Any]) -> RuleSpec:
    require_admin(actor, "add rules")
    spec = parse_rule(data)
    if (await session.execute(select(Rule.id).where(Rule.name == spec.name))).first() is not None:
        raise Conflict(f"A rule named {spec.name!r} exists already; edit it or pick another name.")
    row = Rule()
    _apply(row, spec)
    await _start(session, row, False)
    session.add(row)
    await session.flush()
    await events.record(session, actor, "rule.changed", data={"rule": spec.name, "change": "added"})
    return spec_of(row)


async def edit(session: AsyncSession, actor: Actor, name: str, changes: dict[str, Any]) -> RuleSpec:
    """Replace the given parts (trigger, when, actions, note, order, stop, active, name) of a rule."""
    require_admin(actor, "change rules")
    row = await _row(session, name)
    current = spec_of(row).to_dict()
    spec = parse_rule({**current, **{key: value for key, value in changes.items() if value is not None}})
    if spec.name != row.name and (await session.execute(select(Rule.id).where(Rule.name == spec.name))).first():
        raise Conflict(f"A rule named {spec.name!r} exists already; pick another name.")
    was_active = row.active
    _apply(row, spec)
    await _start(session, row, was_active)
    await events.record(session, actor, "rule.changed", data={"rule": spec.name, "change": "edited"})
    return spec_of(row)


async def delete_rule(session: AsyncSession, actor: Actor, name: str) -> str:
    require_admin(actor, "delete rules")
    row = await _row(session, name)
    await session.execute(delete(Rule).where(Rule.id == row.id))
    await events.record(session, actor, "rule.changed", data={"rule": row.name, "change": "deleted"})
    return row.name


async def import_rules(session: AsyncSession, actor: Actor, rules: list[RuleSpec]) -> tuple[int, int]:
    """Add new rules and replace those of the same name; (added, replaced)."""
    require_admin(actor, "import rules")
    added = replaced = 0
    for spec in rules:
        row = (await session.execute(select(Rule).where(Rule.name == spec.name))).scalar_one_or_none()
        was_active = row is not None and row.active
        if row is None:
            row = Rule()
            session.add(row)
            added += 1
        else:
            replaced += 1
        _apply(row, spec)
        await _start(session, row, was_active)
    await session.flush()
    await events.record(session, actor, "rule.changed", data={"change": "imported", "added": added,
                                                             "replaced": replaced})
    return added, replaced


@dataclass(frozen=True)
class DryRunHit:
    ticket_id: int
    event_id: int | None
    at: datetime
    would: tuple[str, ...]


async def dry_run(
    session: AsyncSession, actor: Actor, name: str, since: timedelta, *, now: datetime | None = None,
    limit: int = 1000,
) -> tuple[RuleSpec, list[DryRunHit], int]:
    """What the rule would have done over the period: (rule, hits, occurrences looked at). Reads only."""
    require_admin(actor, "test rules")
    spec = spec_of(await _row(session, name))
    now = now or utcnow()
    start = now - since
    hits: list[DryRunHit] = []
    looked = 0
    would = tuple(actions.describe(action) for action in spec.actions)
    if spec.trigger["on"] in SCHEDULED_TRIGGERS:
        for ticket, moment in await time_candidates(session, spec, start, now, limit=limit):
            looked += 1
            if await matches(spec.groups, Facts(session, ticket, now=now)):
                hits.append(DryRunHit(ticket.id, None, moment, would))
        return spec, hits, looked
    kinds = [kind for kind, trigger in EVENT_TRIGGERS.items() if trigger == spec.trigger["on"]]
    found = await session.execute(
        select(Event, Ticket)
        .join(Ticket, Ticket.id == Event.ticket_id)
        .where(Event.kind.in_(kinds), Event.at >= start, Event.at <= now)
        .order_by(Event.id)
        .limit(limit)
    )
    for event, ticket in found:
        looked += 1
        facts = Facts(session, ticket, message_id=(event.data or {}).get("message_id"), now=event.at)
        if await matches(spec.groups, facts):
            hits.append(DryRunHit(ticket.id, event.id, event.at, would))
    return spec, hits, looked


def parse_period(text: str) -> timedelta:
    """"7d", "12h", "30m", "2w" -> a timedelta."""
    value = text.strip().lower()
    units = {"m": 60, "h": 3600, "d": 86400, "w": 604800}
    if len(value) < 2 or value[-1] not in units or not value[:-1].isdigit() or int(value[:-1]) == 0:
        raise BadArgument(f"{text!r} is not a period; write it like 7d, 12h, 30m or 2w.")
    return timedelta(seconds=int(value[:-1]) * units[value[-1]])
