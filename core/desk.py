"""`Desk`: the one door into the domain. Every call names its actor; every call is one transaction.

Screens, the CLI, the mail sync and the rules all go through here, so access
checks (core.policy), version checks, counters and events happen on every
path alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.exc import StaleDataError

from core import admin, canned, counters, drafts, events, queues, ratings, sla, tickets
from core.canned import CannedView
from core.config import Settings
from core.errors import Conflict, NotFound
from core.feed import DeskFeed
from core.policy import Actor, current_actor, resolve_actor, ticket_visible, visible_ticket
from core.refs import format_ref, parse_ref
from core.reports import Report, ReportRequest, build_report, daycache, durations, export
from core.reports.dashboard import Dashboard, build_dashboard
from core.views import (
    AgentView,
    AttachmentView,
    DepartmentCounts,
    DepartmentView,
    EventView,
    Intake,
    QueueFilter,
    QueuePage,
    TicketDetail,
    TicketRow,
)
from storage.database import Database, refresh_statistics
from storage.models import Attachment, Blob, Message, Ticket
from storage.schema import require_current_schema
from storage.types import MessageKind, Status

ActorLike = Actor | str
BLIND_WRITE_ATTEMPTS = 5


class RaceLost(Conflict):
    """A concurrent transaction committed a change to the same ticket first."""


class Desk:
    def __init__(
        self, db: Database, settings: Settings | None = None, outbox: tickets.Outbox | None = None
    ) -> None:
        self.db = db
        self.settings = settings or Settings()
        self.outbox: tickets.Outbox = outbox or tickets.NoOutbox()

    @classmethod
    async def open(cls, url: str, settings: Settings | None = None, *, check_schema: bool = True) -> Desk:
        """Connect and insist that `termdesk init` has been run; `check_schema=False` is for init itself
        (and may create the SQLite file)."""
        echo = settings.database.echo if settings else False
        desk = cls(Database(url, echo=echo, create=not check_schema), settings)
        if settings is not None and settings.smtp.configured:
            # Replies, acknowledgements and notifications are queued for the configured SMTP server.
            from core.mail.outbox import MailOutbox  # the mail package imports this module

            desk.outbox = MailOutbox(settings)
        if check_schema:
            try:
                await require_current_schema(desk.db)
            except BaseException:
                await desk.close()
                raise
        return desk

    async def init(self) -> tuple[str | None, str]:
        """Create or upgrade the schema; safe to run again."""
        from storage.migrate import upgrade_to_head  # Alembic is only needed here

        before, after = await upgrade_to_head(self.db)
        if before is not None and before < "0007":
            # Migration 0007 added the stored report durations; business time needs core.hours.
            async with self.db.writing() as session:
                await durations.backfill(session)
        if before is not None and before < "0010":
            # Migration 0010 added the dashboard's SLA moments; they need each department's calendar.
            async with self.db.writing() as session:
                await sla.backfill_moments(session)
        return before, after

    async def close(self) -> None:
        await self.db.dispose()

    @property
    def prefix(self) -> str:
        return self.settings.desk.ref_prefix

    def ref(self, ticket_id: int) -> str:
        return format_ref(self.prefix, ticket_id)

    # -- plumbing ---------------------------------------------------------

    @asynccontextmanager
    async def _writing(self) -> AsyncIterator[AsyncSession]:
        try:
            async with self.db.writing() as session:
                yield session
        except StaleDataError:
            raise RaceLost(
                "Another agent changed this ticket at the same moment; reload it and try again."
            ) from None

    async def _actor(self, session: AsyncSession, actor: ActorLike) -> Actor:
        if isinstance(actor, Actor):
            return await current_actor(session, actor)
        return await resolve_actor(session, actor)

    async def _ticket(self, session: AsyncSession, actor: Actor, ref: str) -> Ticket:
        return await visible_ticket(session, actor, parse_ref(self.prefix, ref), ref.strip())

    async def _row(self, session: AsyncSession, ticket_id: int) -> TicketRow:
        [row] = await queues.ticket_rows(session, queues.row_query().where(Ticket.id == ticket_id), self.prefix)
        return row

    async def _ticket_action(
        self,
        actor: ActorLike,
        ref: str,
        action: Callable[[AsyncSession, Actor, Ticket], Awaitable[Any]],
        *,
        expected_version: int | None,
    ) -> TicketRow:
        """Run one ticket change in its own transaction.

        A write that names the version it saw fails on any later change. A blind
        write (no version: the CLI, rules) only lost a race with a concurrent
        commit on PostgreSQL, so it is run again on the fresh row, as SQLite's
        serialised writers would have done.
        """
        attempts = 1 if expected_version is not None else BLIND_WRITE_ATTEMPTS
        for attempt in range(1, attempts + 1):
            try:
                async with self._writing() as session:
                    who = await self._actor(session, actor)
                    ticket = await self._ticket(session, who, ref)
                    await action(session, who, ticket)
                    await session.flush()
                    return await self._row(session, ticket.id)
            except RaceLost:
                if attempt == attempts:
                    raise
        raise AssertionError("unreachable")

    # -- reading ----------------------------------------------------------

    async def resolve(self, actor: ActorLike) -> Actor:
        """The actor as the database says now (for core modules that run their own transactions)."""
        async with self.db.reading() as session:
            return await self._actor(session, actor)

    async def login(self, handle: str) -> Actor:
        async with self.db.reading() as session:
            return await resolve_actor(session, handle)

    async def queue(self, actor: ActorLike, wanted: QueueFilter) -> QueuePage:
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            return await queues.queue_page(session, who, self.db.dialect, self.prefix, wanted)

    async def report(self, actor: ActorLike, request: ReportRequest) -> Report:
        """The metrics of `core.reports` over a range, within the actor's departments.

        With `[reports] day_cache` on, whole-day ranges come from the day cache (`core.reports.daycache`):
        marked days are dropped, missing past days computed (read) and stored (short write), then one read
        snapshot combines cached and live days; the numbers are those of the base SQL either way."""
        if self.settings.reports.day_cache and daycache.covers(request):
            async with self.db.reading() as session:
                who = await self._actor(session, actor)  # an unknown agent fails before anything is written
            async with self.db.writing() as session:
                await daycache.drop_marked(session, self.db.dialect)
            async with self.db.reading() as session:  # the long part, outside the write lock
                days, cells, since = await daycache.compute_missing(session, request, self.db.dialect)
            if days:
                async with self.db.writing() as session:
                    await daycache.store(session, request.by, days, cells, self.db.dialect, since=since)
            async with self.db.reading() as session:
                who = await self._actor(session, actor)
                return await daycache.cached_report(session, who, request, self.db.dialect)
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            return await build_report(session, who, request, self.db.dialect)

    async def export_tickets(
        self, actor: ActorLike, start: datetime, end: datetime, *, batch: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        """Every ticket created in [start, end) within the actor's departments, streamed from a server-side
        cursor (`core.reports.export`): rows arrive while the query runs, memory stays flat."""
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            async for row in export.iter_ticket_rows(
                session, who, start, end, self.prefix, self.db.dialect, batch=batch or export.STREAM_BATCH
            ):
                yield row

    async def rate(
        self, actor: ActorLike, ref: str, score: str, *, comment: str = "", message_id: int | None = None,
        at: datetime | None = None,
    ) -> None:
        """Record the ticket's customer's rating (positive or negative), as an agent who can see the ticket."""
        async with self._writing() as session:
            who = await self._actor(session, actor)
            ticket = await self._ticket(session, who, ref)
            await ratings.record(session, ticket, score, comment=comment, message_id=message_id, at=at)

    async def dashboard(self, actor: ActorLike, now: datetime | None = None) -> Dashboard:
        """Today's load of the actor's departments and their agents (supervisors and admins only)."""
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            return await build_dashboard(
                session, who, self.db.dialect, now or datetime.now(UTC), self.settings.desk.timezone
            )

    async def counts(self, actor: ActorLike) -> list[DepartmentCounts]:
        async with self.db.reading() as session:
            return await queues.department_counts(session, await self._actor(session, actor))

    async def ticket(self, actor: ActorLike, ref: str) -> TicketDetail:
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            ticket = await self._ticket(session, who, ref)
            return await queues.ticket_detail(session, who, self.prefix, ticket)

    async def attachment(self, actor: ActorLike, attachment_id: int) -> tuple[AttachmentView, bytes]:
        """An attachment's bytes, only through a ticket the actor may see."""
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            row = (
                await session.execute(
                    select(Attachment, Blob.data)
                    .join(Message, Message.id == Attachment.message_id)
                    .join(Ticket, Ticket.id == Message.ticket_id)
                    .join(Blob, Blob.sha256 == Attachment.sha256)
                    .where(Attachment.id == attachment_id, ticket_visible(who))
                )
            ).first()
            if row is None:
                raise NotFound(f"No attachment {attachment_id} exists; check the ticket it belongs to.")
            attachment, data = row
            return queues.attachment_view(attachment), data

    async def latest_event_id(self) -> int:
        async with self.db.reading() as session:
            return await events.latest_id(session)

    def watch(self, poll_seconds: float, safety_seconds: float | None = None) -> DeskFeed:
        """A feed whose `changes()` yield True whenever the desk may have changed (NOTIFY on PostgreSQL,
        polling on SQLite); see core.feed. Close the iterator (`contextlib.aclosing`) to let go of the
        listening connection."""
        safety = safety_seconds if safety_seconds is not None else self.settings.console.feed_safety_seconds
        return DeskFeed(self.db, self.latest_event_id, poll_seconds=poll_seconds, safety_seconds=safety)

    async def events_since(self, actor: ActorLike, after_id: int, limit: int = 500) -> list[EventView]:
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            found = await events.visible_since(session, who, after_id, limit)
            return [
                EventView(
                    id=event.id,
                    kind=event.kind,
                    actor=handle or event.data.get("by"),
                    at=event.at,
                    ticket_ref=self.ref(event.ticket_id) if event.ticket_id else None,
                    data=event.data,
                )
                for event, handle in found
            ]

    # -- changing tickets -------------------------------------------------

    async def create_ticket(self, actor: ActorLike, intake: Intake) -> TicketRow:
        async with self._writing() as session:
            who = await self._actor(session, actor)
            ticket, _ = await tickets.create_ticket(session, who, intake)
            await session.flush()
            return await self._row(session, ticket.id)

    async def reply(
        self, actor: ActorLike, ref: str, body: str, *, expected_version: int | None = None, status: str | None = None
    ) -> TicketRow:
        target = tickets.parse_status(status) if status else None

        async def act(session: AsyncSession, who: Actor, ticket: Ticket) -> None:
            await tickets.add_entry(
                session, who, ticket, MessageKind.REPLY, body,
                expected_version=expected_version, status=target, outbox=self.outbox,
            )

        return await self._ticket_action(actor, ref, act, expected_version=expected_version)

    async def note(self, actor: ActorLike, ref: str, body: str, *, expected_version: int | None = None) -> TicketRow:
        async def act(session: AsyncSession, who: Actor, ticket: Ticket) -> None:
            await tickets.add_entry(
                session, who, ticket, MessageKind.NOTE, body,
                expected_version=expected_version, status=None, outbox=self.outbox,
            )

        return await self._ticket_action(actor, ref, act, expected_version=expected_version)

    async def transfer(
        self,
        actor: ActorLike,
        ref: str,
        department: str,
        note: str | None = None,
        *,
        expected_version: int | None = None,
    ) -> TicketRow:
        async def act(session: AsyncSession, who: Actor, ticket: Ticket) -> None:
            target = await tickets.department_by_name(session, department)
            await tickets.transfer(session, who, ticket, target, note, expected_version=expected_version)

        return await self._ticket_action(actor, ref, act, expected_version=expected_version)

    async def assign(
        self, actor: ActorLike, ref: str, assignee: str | None, *, expected_version: int | None = None
    ) -> TicketRow:
        """Assign to an agent of the ticket's department, or unassign with None."""

        async def act(session: AsyncSession, who: Actor, ticket: Ticket) -> None:
            agent_id = None
            data: dict[str, Any] = {"assignee": None}
            if assignee is not None:
                department = await tickets.department_of(session, ticket)
                agent = await tickets.agent_in_department(session, assignee, department)
                agent_id = agent.id
                data["assignee"] = agent.handle
            kind = "ticket.assigned" if agent_id is not None else "ticket.unassigned"
            await tickets.apply_change(
                session, who, ticket, kind, expected_version=expected_version,
                changes={"assignee_id": agent_id}, data=data if ticket.assignee_id != agent_id else None,
            )

        return await self._ticket_action(actor, ref, act, expected_version=expected_version)

    async def set_status(
        self, actor: ActorLike, ref: str, status: str, *, expected_version: int | None = None
    ) -> TicketRow:
        target = tickets.parse_status(status)

        async def act(session: AsyncSession, who: Actor, ticket: Ticket) -> None:
            newly_resolved = target is Status.RESOLVED and ticket.status != Status.RESOLVED
            await tickets.apply_change(
                session, who, ticket, "ticket.status", expected_version=expected_version,
                changes=tickets.status_changes(ticket, target),
            )
            if newly_resolved:
                await self.outbox.ticket_resolved(session, ticket)

        return await self._ticket_action(actor, ref, act, expected_version=expected_version)

    async def set_priority(
        self, actor: ActorLike, ref: str, priority: str, *, expected_version: int | None = None
    ) -> TicketRow:
        level = tickets.parse_priority(priority)

        async def act(session: AsyncSession, who: Actor, ticket: Ticket) -> None:
            await tickets.apply_change(
                session, who, ticket, "ticket.priority", expected_version=expected_version,
                changes={"priority": int(level)},
            )

        return await self._ticket_action(actor, ref, act, expected_version=expected_version)

    async def tag(
        self,
        actor: ActorLike,
        ref: str,
        add: list[str] | tuple[str, ...] = (),
        remove: list[str] | tuple[str, ...] = (),
        *,
        expected_version: int | None = None,
    ) -> TicketRow:
        async def act(session: AsyncSession, who: Actor, ticket: Ticket) -> None:
            await tickets.change_tags(
                session, who, ticket, list(add), list(remove), expected_version=expected_version
            )

        return await self._ticket_action(actor, ref, act, expected_version=expected_version)

    # -- the console's kept drafts and presence (core.drafts) ---------------

    async def draft(self, actor: ActorLike, ref: str, kind: str) -> str | None:
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            return await drafts.load_draft(session, who, await self._ticket(session, who, ref), kind)

    async def save_draft(self, actor: ActorLike, ref: str, kind: str, body: str) -> None:
        async with self._writing() as session:
            who = await self._actor(session, actor)
            await drafts.save_draft(session, who, await self._ticket(session, who, ref), kind, body)

    async def discard_draft(self, actor: ActorLike, ref: str, kind: str) -> None:
        async with self._writing() as session:
            who = await self._actor(session, actor)
            await drafts.discard_draft(session, who, await self._ticket(session, who, ref), kind)

    async def heartbeat(self, actor: ActorLike, ref: str, activity: str | None) -> list[drafts.PresenceView]:
        """Say the actor is `activity` ("viewing"/"replying", None: left) on the ticket; the others there now."""
        async with self._writing() as session:
            who = await self._actor(session, actor)
            return await drafts.heartbeat(session, who, await self._ticket(session, who, ref), activity)

    # -- canned responses (core.canned): supervisors and admins manage, members use -------

    async def canned_responses(self, actor: ActorLike, department: str) -> list[CannedView]:
        async with self.db.reading() as session:
            return await canned.list_for(session, await self._actor(session, actor), department)

    async def add_canned(self, actor: ActorLike, department: str, name: str, body: str) -> CannedView:
        async with self._writing() as session:
            return await canned.add(session, await self._actor(session, actor), department, name, body)

    async def edit_canned(
        self, actor: ActorLike, department: str, name: str, *, new_name: str | None = None, body: str | None = None
    ) -> CannedView:
        async with self._writing() as session:
            who = await self._actor(session, actor)
            return await canned.edit(session, who, department, name, new_name=new_name, body=body)

    async def delete_canned(self, actor: ActorLike, department: str, name: str) -> str:
        async with self._writing() as session:
            return await canned.delete(session, await self._actor(session, actor), department, name)

    async def canned_for_ticket(self, actor: ActorLike, ref: str) -> list[CannedView]:
        """The canned responses of the ticket's department, for the composer's picker."""
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            return await canned.for_ticket(session, await self._ticket(session, who, ref))

    async def render_canned(self, actor: ActorLike, ref: str, canned_id: int) -> str:
        """A canned response of the ticket's department, filled in for the ticket and the actor."""
        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            ticket = await self._ticket(session, who, ref)
            return await canned.render_for_ticket(session, who, ticket, ref.strip(), canned_id)

    # -- administration ---------------------------------------------------

    async def add_department(
        self, actor: ActorLike, name: str, *, email: str, sender_name: str = "", signature: str = ""
    ) -> DepartmentView:
        async with self._writing() as session:
            who = await self._actor(session, actor)
            department = await admin.add_department(session, who, name, email, sender_name, signature)
            return next(view for view in await admin.department_views(session, who) if view.id == department.id)

    async def update_department(self, actor: ActorLike, name: str, **fields: Any) -> DepartmentView:
        async with self._writing() as session:
            who = await self._actor(session, actor)
            department = await admin.update_department(session, who, name, fields)
            await session.flush()
            return next(view for view in await admin.department_views(session, who) if view.id == department.id)

    async def set_automation(self, actor: ActorLike, department: str, key: str, value: Any) -> dict[str, Any]:
        """Set a department's SLA policy, assignment mode or auto-close days; returns its settings."""
        from core import automation_admin

        async with self._writing() as session:
            who = await self._actor(session, actor)
            found = await automation_admin.set_setting(session, who, department, key, value)
            return dict(found.settings or {})

    async def set_availability(self, actor: ActorLike, handle: str, availability: str) -> AgentView:
        """Pause (a break: no automatic assignment) or resume an agent."""
        from core import assign
        from storage.types import Availability

        async with self._writing() as session:
            who = await self._actor(session, actor)
            agent = await assign.set_availability(session, who, handle, Availability(availability))
            await session.flush()
            views = await admin.agent_views(session, Actor.operator())
            return next(view for view in views if view.id == agent.id)

    async def set_max_load(self, actor: ActorLike, handle: str, limit: int | None) -> None:
        from core import assign

        async with self._writing() as session:
            await assign.set_max_load(session, await self._actor(session, actor), handle, limit)

    async def auto_assign(self, actor: ActorLike, ref: str, mode: str | None = None) -> TicketRow:
        """Assign the ticket by its department's mode (or `mode`); it stays unassigned when nobody is free."""
        from core import assign

        async def act(session: AsyncSession, who: Actor, ticket: Ticket) -> None:
            await assign.auto_assign(session, who, ticket, mode)

        return await self._ticket_action(actor, ref, act, expected_version=None)

    # -- rules (core.rules): admin operations, the dry run, and running them -------

    async def rules(self, actor: ActorLike, name: str | None = None) -> list[Any]:
        """All rules in order, or the one named; RuleSpec values."""
        from core.rules import store

        async with self.db.reading() as session:
            who = await self._actor(session, actor)
            return [await store.show(session, who, name)] if name else await store.list_rules(session, who)

    async def add_rule(self, actor: ActorLike, data: dict[str, Any]) -> Any:
        from core.rules import store

        async with self._writing() as session:
            return await store.add(session, await self._actor(session, actor), data)

    async def edit_rule(self, actor: ActorLike, name: str, changes: dict[str, Any]) -> Any:
        from core.rules import store

        async with self._writing() as session:
            return await store.edit(session, await self._actor(session, actor), name, changes)

    async def delete_rule(self, actor: ActorLike, name: str) -> str:
        from core.rules import store

        async with self._writing() as session:
            return await store.delete_rule(session, await self._actor(session, actor), name)

    async def import_rules(self, actor: ActorLike, text: str) -> tuple[int, int]:
        from core.rules import store
        from core.rules.model import from_toml

        rules = from_toml(text)
        async with self._writing() as session:
            return await store.import_rules(session, await self._actor(session, actor), rules)

    async def export_rules(self, actor: ActorLike) -> str:
        from core.rules.model import to_toml

        return to_toml(await self.rules(actor))

    async def test_rule(
        self, actor: ActorLike, name: str, since: str, *, now: Any = None
    ) -> tuple[Any, list[Any], int]:
        """Dry run: what the rule would have done over the period; changes nothing."""
        from core.rules import store

        period = store.parse_period(since)
        async with self.db.reading() as session:
            return await store.dry_run(session, await self._actor(session, actor), name, period, now=now)

    async def run_automation(self, *, clock: Callable[[], Any] | None = None) -> list[Any]:
        """Run the rules on every event not yet processed (as `termdesk serve` does continuously)."""
        from core.rules.engine import Automation

        automation = Automation(self.db, self.outbox, clock=clock) if clock else Automation(self.db, self.outbox)
        return await automation.run_pending()

    async def departments(self, actor: ActorLike) -> list[DepartmentView]:
        async with self.db.reading() as session:
            return await admin.department_views(session, await self._actor(session, actor))

    async def add_agent(
        self,
        actor: ActorLike,
        handle: str,
        *,
        name: str,
        email: str,
        role: str = "agent",
        departments: list[str] | tuple[str, ...] = (),
    ) -> AgentView:
        async with self._writing() as session:
            who = await self._actor(session, actor)
            agent = await admin.add_agent(session, who, handle, name, email, role, list(departments))
            await session.flush()
            return next(view for view in await admin.agent_views(session, who) if view.id == agent.id)

    async def set_agent(self, actor: ActorLike, handle: str, **fields: Any) -> AgentView:
        async with self._writing() as session:
            who = await self._actor(session, actor)
            agent = await admin.set_agent(session, who, handle, fields)
            await session.flush()
            return next(view for view in await admin.agent_views(session, who) if view.id == agent.id)

    async def agents(self, actor: ActorLike) -> list[AgentView]:
        async with self.db.reading() as session:
            return await admin.agent_views(session, await self._actor(session, actor))

    async def join(self, actor: ActorLike, handle: str, department: str) -> bool:
        async with self._writing() as session:
            return await admin.join(session, await self._actor(session, actor), handle, department)

    async def leave(self, actor: ActorLike, handle: str, department: str) -> bool:
        async with self._writing() as session:
            return await admin.leave(session, await self._actor(session, actor), handle, department)

    async def check_report_cache(self, *, repair: bool) -> int:
        """How many cached report days (per grouping) differ from the base tables; with repair, the cache is
        emptied (days are computed again when next read). Slow on a big desk: every cached day is recomputed."""
        async with self.db.reading() as session:
            wrong = await daycache.verify(session, self.db.dialect)
        if repair:
            async with self._writing() as session:
                await daycache.forget(session)
        return wrong

    async def warm_report_cache(self, *, days: int | None = None) -> int:
        """Fill the report day cache's missing past days (`[reports] warm_days` by default) for every grouping,
        in short chunks (`core.reports.daycache.warm`); returns the (grouping, day)s stored."""
        return await daycache.warm(self.db, days=self.settings.reports.warm_days if days is None else days)

    async def check_counters(self, *, repair: bool) -> int:
        """How many counter rows disagree with the tickets; with repair, rebuild them.

        Also refreshes stale or missing planner statistics (SQLite), the other
        upkeep a desk grown by ordinary use needs (`termdesk check`).
        """
        await refresh_statistics(self.db)
        if repair:
            async with self._writing() as session:
                return await counters.rebuild(session)
        async with self.db.reading() as session:
            return counters.disagreements(await counters.computed(session), await counters.stored(session))
