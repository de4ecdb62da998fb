"""The time-based work of a desk, run by `termdesk serve` on a schedule with an injectable clock.

One pass (`Scheduler.run_once`):

1. SLA moments: tickets whose `sla_check_at` has come (an index range, never a
   full scan) get their `sla.at_risk` / `sla.breached` events — once per due time;
2. time-triggered rules ("N hours since …");
3. auto-close: pending tickets of each department without a customer message for
   `auto_close_days` (default 3) are resolved, each in its own transaction
   guarded by the version read (a customer reply meanwhile wins), with the
   department's auto-close template mailed through the outbox;
4. waiting tickets of automatically assigning departments are handed out;
5. the rules run on every event written so far (including those of 1-4).

Beside the passes, `run` warms the report day cache (`core.reports.daycache.warm`, `warm_days` past days)
at start and again after each UTC midnight, when yesterday became a past day: a task of its own, so a
warm-up of minutes on a big desk never delays the passes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from core import assign, sla, tickets
from core.automation_admin import auto_close_days
from core.policy import Actor
from core.reports import daycache
from core.rules.engine import Automation, active_rules, fire
from core.rules.match import Facts, matches
from core.rules.model import SCHEDULED_TRIGGERS
from core.rules.time import already_fired, mark_fired, time_candidates
from storage.database import Database
from storage.models import Department, Ticket
from storage.types import Status, utcnow

log = logging.getLogger("termdesk.scheduler")
SCAN_BATCH = 500
TIME_RULE_REACH = timedelta(days=7)  # how far back a (re)started scheduler catches up on time triggers
WARM_AFTER_MIDNIGHT = timedelta(minutes=1)  # the day's last writes are committed by then


@dataclass
class PassReport:
    sla_events: int = 0
    time_firings: int = 0
    auto_closed: int = 0
    assigned: int = 0
    rule_firings: int = 0


class Scheduler:
    def __init__(
        self,
        db: Database,
        outbox: tickets.Outbox | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        warm_days: int = 0,
    ) -> None:
        self.db = db
        self.outbox = outbox or tickets.NoOutbox()
        self.clock = clock
        self.warm_days = warm_days  # 0: no report cache warm-up ([reports] day_cache off, or warm_days = 0)
        self.actor = Actor.system()
        self.automation = Automation(db, self.outbox, clock=clock)

    async def run_once(self) -> PassReport:
        report = PassReport()
        now = self.clock()
        report.rule_firings += len(await self.automation.run_pending())
        report.sla_events = await self.sla_scan(now)
        report.time_firings = await self.time_rules(now)
        report.auto_closed = await self.auto_close(now)
        async with self.db.writing() as session:
            report.assigned = await assign.assign_waiting(session, self.actor)
        report.rule_firings += len(await self.automation.run_pending())
        return report

    async def run(self, stop: asyncio.Event, *, interval: float = 30.0) -> None:
        """Passes every `interval` seconds until `stop`; a failing pass is logged and the next one runs.
        The report cache warm-up runs beside them (`warm_reports`) when `warm_days` is set."""
        warming = asyncio.create_task(self.warm_reports(stop), name="scheduler:warm") if self.warm_days else None
        try:
            await self._passes(stop, interval)
        except BaseException:
            if warming is not None:
                warming.cancel()
                await asyncio.gather(warming, return_exceptions=True)
            raise
        if warming is not None:
            await warming  # it looks at `stop` between chunks

    async def warm_reports(self, stop: asyncio.Event) -> None:
        """Warm the report day cache now and after each UTC midnight until `stop`; a failure is logged and
        the next midnight tries again."""
        while not stop.is_set():
            try:
                now = self.clock()
                stored = await daycache.warm(self.db, days=self.warm_days, today=now.astimezone(UTC).date(), stop=stop)
                log.info("report day cache warm-up: %d (grouping, day)s stored", stored)
            except Exception:  # noqa: BLE001 - the cache is an optimisation; reports still work without it
                log.exception("report day cache warm-up failed")
            now = self.clock().astimezone(UTC)
            midnight = datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)
            try:
                await asyncio.wait_for(stop.wait(), timeout=(midnight + WARM_AFTER_MIDNIGHT - now).total_seconds())
            except TimeoutError:
                pass

    async def _passes(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                report = await self.run_once()
                log.info("scheduler pass: %s", report)
            except Exception:  # noqa: BLE001 - one bad pass must not end the service
                log.exception("scheduler pass failed")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass

    async def sla_scan(self, now: datetime) -> int:
        """At-risk and breach events for tickets whose next SLA moment has come (indexed by sla_check_at)."""
        announced = 0
        while True:
            async with self.db.writing() as session:
                due = (
                    await session.execute(
                        select(Ticket).where(Ticket.sla_check_at <= now).order_by(Ticket.sla_check_at)
                        .limit(SCAN_BATCH)
                    )
                ).scalars().all()
                if not due:
                    return announced
                for ticket in due:
                    announced += await self._announce(session, ticket, now)
                    await sla.refresh(session, ticket, now)
                    if ticket.sla_check_at is not None and ticket.sla_check_at <= now:
                        # Nothing left to announce at this moment (policy removed, clocks moved): stop looking.
                        ticket.sla_check_at = None
                if len(due) < SCAN_BATCH:
                    return announced

    async def _announce(self, session: AsyncSession, ticket: Ticket, now: datetime) -> int:
        department = await session.get(Department, ticket.department_id)
        policy = sla.policy_of(department) if department is not None else None
        if policy is None or ticket.status not in (Status.NEW, Status.OPEN):
            return 0
        state = dict(ticket.sla_state or {})
        warned, breached = dict(state.get("warned", {})), dict(state.get("breached", {}))
        announced = []
        for name, warn, due in sla.moments(policy, ticket):
            key = due.isoformat()
            if due <= now and breached.get(name) != key:
                breached[name] = warned[name] = key
                announced.append(("sla.breached", name, due))
            elif warn <= now and warned.get(name) != key:
                warned[name] = key
                announced.append(("sla.at_risk", name, due))
        if not announced:
            return 0
        ticket.sla_state = {**state, "warned": warned, "breached": breached}
        for kind, name, due in announced:
            await tickets.apply_change(
                session, self.actor, ticket, kind, expected_version=None, changes={},
                data={"target": name, "due": due.isoformat()},
            )
        return len(announced)

    async def time_rules(self, now: datetime) -> int:
        async with self.db.reading() as session:
            rules = [rule for rule in await active_rules(session) if rule.trigger["on"] in SCHEDULED_TRIGGERS]
        fired = 0
        for rule in rules:
            async with self.db.writing() as session:
                reach = TIME_RULE_REACH
                if rule.trigger["on"] == "sla_due_in":
                    # Only while the due time is still ahead: a breached ticket is `sla_breached`'s business.
                    reach = min(reach, timedelta(minutes=float(rule.trigger["minutes"])))
                for ticket, _ in await time_candidates(session, rule, now - reach, now):
                    if already_fired(rule, ticket):
                        continue
                    mark_fired(rule, ticket)
                    if await matches(rule.groups, Facts(session, ticket, now=now)):
                        await fire(session, self.actor, rule, ticket, self.outbox, chain=[],
                                   trigger=rule.trigger["on"], cause=None)
                        fired += 1
        return fired

    async def auto_close(self, now: datetime) -> int:
        """Resolve pending tickets the customer left unanswered for the department's days, with one mail each."""
        async with self.db.reading() as session:
            departments = (
                await session.execute(select(Department).where(Department.active.is_(True)))
            ).scalars().all()
            plan = [(department.id, auto_close_days(department)) for department in departments]
        closed = 0
        for department_id, days in plan:
            if days <= 0:
                continue
            cutoff = now - timedelta(days=days)
            async with self.db.reading() as session:
                candidates = (
                    await session.execute(
                        select(Ticket.id, Ticket.version).where(
                            Ticket.department_id == department_id,
                            Ticket.status == Status.PENDING.value,
                            Ticket.updated_at <= cutoff,
                            or_(Ticket.last_customer_message_at.is_(None), Ticket.last_customer_message_at <= cutoff),
                        ).limit(SCAN_BATCH)
                    )
                ).all()
            for ticket_id, version in candidates:
                closed += await self._close_one(ticket_id, version, cutoff, days)
        return closed

    async def _close_one(self, ticket_id: int, version: int, cutoff: datetime, days: int) -> int:
        try:
            async with self.db.writing() as session:
                ticket = await session.get(Ticket, ticket_id, populate_existing=True)
                # Re-checked inside the write: a customer answer since the read reopened it.
                if ticket is None or ticket.version != version or ticket.status != Status.PENDING:
                    return 0
                await tickets.apply_change(
                    session, self.actor, ticket, "ticket.auto_closed", expected_version=version,
                    changes=tickets.status_changes(ticket, Status.RESOLVED),
                    data={"days": days, "text": f"resolved after {days} days without an answer from the customer"},
                )
                await self.outbox.ticket_auto_closed(session, ticket)
                return 1
        except StaleDataError:
            return 0  # the customer answered at the same moment: their answer wins
