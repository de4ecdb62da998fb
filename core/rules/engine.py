"""Running the rules on the change feed: every event is offered to the rules exactly once.

`Automation.run_pending()` reads events after the `automation_cursors` row
"rules" and, in the same transaction, runs the matching rules' actions and
moves the cursor on — so an event is processed once whoever runs the rules
(`termdesk serve`, a test, the CLI after a change), and a crash repeats
nothing or everything of a batch. The mail import, set-based or per-mail,
only writes its `ticket.created` / `ticket.customer_replied` events; the
rules see both paths alike.

Chains are bounded: the changes a rule makes carry `automation.chain` (the
rules that led to them) in their events; a rule never fires on an event its
own chain caused, so each rule fires at most once per trigger occurrence, and
no chain is longer than the number of rules (and MAX_CHAIN).

After the rules, a ticket that was created in, or transferred to, a
department with automatic assignment and is still unassigned is assigned
(core.assign).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import assign, events
from core.errors import DeskError
from core.policy import Actor
from core.rules import actions
from core.rules.match import Facts, Prefetched, matches
from core.rules.model import EVENT_TRIGGERS, MAX_CHAIN, RuleSpec, parse_rule
from core.tickets import ACTIVE_STATUSES, NoOutbox, Outbox
from storage.database import Database
from storage.models import Event, Ticket
from storage.rules import AutomationCursor, Rule
from storage.types import utcnow

log = logging.getLogger("termdesk.rules")
CURSOR = "rules"


def spec_of(row: Rule) -> RuleSpec:
    spec = parse_rule({
        "name": row.name, "note": row.note, "active": row.active, "order": row.position, "stop": row.stop,
        "trigger": row.trigger, "when": row.conditions, "actions": row.actions,
    })
    return RuleSpec(**{**spec.__dict__, "id": row.id, "start_event_id": row.start_event_id or 0})


async def active_rules(session: AsyncSession) -> list[RuleSpec]:
    rows = (
        await session.execute(select(Rule).where(Rule.active.is_(True)).order_by(Rule.position, Rule.id))
    ).scalars().all()
    return [spec_of(row) for row in rows]


@dataclass
class Firing:
    rule: str
    ticket_id: int
    did: list[str] = field(default_factory=list)


async def fire(
    session: AsyncSession,
    actor: Actor,
    rule: RuleSpec,
    ticket: Ticket,
    outbox: Outbox,
    *,
    chain: list[int],
    trigger: str,
    cause: int | None,
) -> Firing:
    """Run a matched rule's actions on the ticket and record the `rule.fired` event."""
    assert rule.id is not None
    firing = Firing(rule.name, ticket.id)
    session.info["automation"] = {"rule": rule.name, "chain": [*chain, rule.id]}
    try:
        for action in rule.actions:
            try:
                firing.did.append(await actions.run(session, actor, ticket, action, outbox))
            except DeskError as problem:
                # The rule is wrong for this ticket (a department renamed, an agent left): say so, go on.
                firing.did.append(f"could not {actions.describe(action)}: {problem.message}")
        text = f"rule {rule.name!r} " + "; ".join(firing.did)
        await events.record(
            session, actor, "rule.fired", ticket=ticket,
            data={"rule": rule.name, "trigger": trigger, "cause_event": cause, "did": firing.did, "text": text},
        )
    finally:
        session.info.pop("automation", None)
    return firing


class Automation:
    """Feeds the change feed to the rules; `clock` is injectable so tests can move time."""

    def __init__(self, db: Database, outbox: Outbox | None = None, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.db = db
        self.outbox = outbox or NoOutbox()
        self.clock = clock
        self.actor = Actor.system()

    async def _cursor(self, session: AsyncSession) -> AutomationCursor:
        cursor = (
            await session.execute(select(AutomationCursor).where(AutomationCursor.name == CURSOR).with_for_update())
        ).scalar_one_or_none()
        if cursor is None:  # the migration creates it; a desk built without migrations starts here
            cursor = AutomationCursor(name=CURSOR, last_event_id=0, updated_at=self.clock())
            session.add(cursor)
            await session.flush()
        return cursor

    async def run_pending(self, *, batch: int = 200, limit: int | None = None) -> list[Firing]:
        """Process every event written so far (and those the rules write meanwhile); returns the firings."""
        fired: list[Firing] = []
        processed = 0
        while limit is None or processed < limit:
            async with self.db.writing() as session:
                cursor = await self._cursor(session)
                found = (
                    await session.execute(
                        select(Event).where(Event.id > cursor.last_event_id).order_by(Event.id).limit(batch)
                    )
                ).scalars().all()
                if not found:
                    return fired
                rules = await active_rules(session)
                prefetched = await self._prefetch(session, found, rules)
                for event in found:
                    fired.extend(await self.process(session, event, rules, prefetched))
                cursor.last_event_id = found[-1].id
                cursor.updated_at = self.clock()
                processed += len(found)
        return fired

    async def _prefetch(
        self, session: AsyncSession, found: Sequence[Event], rules: list[RuleSpec]
    ) -> Prefetched | None:
        """The facts of the batch's tickets in a few queries (only events some rule listens to)."""
        triggers = {rule.trigger["on"] for rule in rules}
        wanted = [
            event for event in found if event.ticket_id is not None and EVENT_TRIGGERS.get(event.kind) in triggers
        ]
        if not wanted:
            return None
        message_ids = [int(event.data["message_id"]) for event in wanted
                       if isinstance((event.data or {}).get("message_id"), int)]
        return await Prefetched.load(session, [event.ticket_id for event in wanted if event.ticket_id], message_ids)

    async def process(
        self, session: AsyncSession, event: Event, rules: list[RuleSpec], prefetched: Prefetched | None = None
    ) -> list[Firing]:
        trigger = EVENT_TRIGGERS.get(event.kind)
        if trigger is None or event.ticket_id is None:
            return []
        data: dict[str, Any] = event.data or {}
        chain = list((data.get("automation") or {}).get("chain", []))
        if len(chain) >= MAX_CHAIN:
            log.warning("event %s: rule chain %s is at its bound; no further rules run", event.id, chain)
            return []
        ticket = await session.get(Ticket, event.ticket_id)
        if ticket is None:
            return []
        fired = []
        facts = Facts(session, ticket, message_id=data.get("message_id"), now=self.clock(), prefetched=prefetched)
        for rule in rules:
            if rule.trigger["on"] != trigger or rule.id in chain or event.id <= rule.start_event_id:
                continue
            if not await matches(rule.groups, facts):
                continue
            fired.append(
                await fire(session, self.actor, rule, ticket, self.outbox, chain=chain, trigger=trigger, cause=event.id)
            )
            # The rule changed the ticket: later rules (and later events of the batch) see it as it is now.
            if prefetched is not None:
                prefetched.changed.add(ticket.id)
            facts = Facts(session, ticket, message_id=data.get("message_id"), now=self.clock())
            if rule.stop:
                break
        if trigger in ("ticket_created", "transferred") and ticket.assignee_id is None and (
            ticket.status in ACTIVE_STATUSES
        ):
            await assign.auto_assign(session, self.actor, ticket, why=trigger)
        return fired


async def backlog(session: AsyncSession) -> int:
    """Events the rules have not seen yet."""
    last = (
        await session.execute(select(AutomationCursor.last_event_id).where(AutomationCursor.name == CURSOR))
    ).scalar() or 0
    return int((await session.execute(select(func.count()).select_from(Event).where(Event.id > last))).scalar() or 0)
