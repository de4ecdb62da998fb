"""What admins see and do with the outbox: list queued, sent and failed mail; send failed mail again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from core import events
from core.desk import ActorLike, Desk
from core.errors import BadArgument, NotFound
from core.mail import templates
from core.policy import require_admin
from storage.models import Message, Ticket
from storage.outbox import OutboxMail
from storage.types import utcnow

STATES = ("queued", "sending", "sent", "failed")


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    kind: str
    ticket_ref: str | None
    recipient: str
    state: str
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    sent_at: datetime | None
    message_id: str
    last_error: str

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = dict(self.__dict__)
        for name in ("created_at", "next_attempt_at", "sent_at"):
            value = getattr(self, name)
            data[name] = value.isoformat() if value else None
        return data


async def entries(desk: Desk, actor: ActorLike, *, state: str | None = None, limit: int = 200) -> list[OutboxEntry]:
    """The newest outbox rows, optionally of one state (admins only)."""
    require_admin(await desk.resolve(actor), "see the outbox")
    query = select(OutboxMail).order_by(OutboxMail.id.desc()).limit(limit)
    if state is not None:
        wanted = state.strip().lower()
        if wanted not in STATES:
            raise BadArgument(f"{state!r} is not an outbox state; use one of {', '.join(STATES)}.")
        query = query.where(OutboxMail.state == wanted)
    async with desk.db.reading() as session:
        rows = (await session.execute(query)).scalars().all()
        return [
            OutboxEntry(
                id=row.id,
                kind=row.kind,
                ticket_ref=desk.ref(row.ticket_id) if row.ticket_id else None,
                recipient=row.recipient,
                state=row.state,
                attempts=row.attempts,
                created_at=row.created_at,
                next_attempt_at=row.next_attempt_at if row.state == "queued" else None,
                sent_at=row.sent_at,
                message_id=row.mail_message_id,
                last_error=row.last_error or "",
            )
            for row in rows
        ]


async def retry(desk: Desk, actor: ActorLike, ids: list[int], *, all_failed: bool = False) -> int:
    """Queue failed (or deferred) mail to go out at the next worker pass; returns how many rows."""
    who = await desk.resolve(actor)
    require_admin(who, "retry outgoing mail")
    if not ids and not all_failed:
        raise BadArgument("Name the outbox ids to retry, or pass --all-failed.")
    now = utcnow()
    async with desk.db.writing() as session:
        query = select(OutboxMail)
        if all_failed:
            query = query.where(OutboxMail.state == "failed")
        else:
            query = query.where(OutboxMail.id.in_(ids))
        rows = (await session.execute(query)).scalars().all()
        missing = sorted(set(ids) - {row.id for row in rows})
        if missing:
            raise NotFound(f"No outbox mail {missing[0]} exists; list them with `termdesk outbox list`.")
        count = 0
        for row in rows:
            if row.state not in ("failed", "queued"):
                raise BadArgument(f"Outbox mail {row.id} is {row.state}; only failed or queued mail can be retried.")
            if not row.data:
                raise BadArgument(f"Outbox mail {row.id} could not be composed ({row.last_error}); it cannot be sent.")
            was = row.state
            # A retried mail gets a fresh give-up window; its bytes and Message-ID stay the same.
            row.state, row.next_attempt_at, row.created_at = "queued", now, now
            if row.entry_id is not None:
                await session.execute(
                    update(Message).where(Message.id == row.entry_id).values(delivery_status="queued")
                    .execution_options(synchronize_session=False)
                )
            ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id else None
            await events.record(
                session, who, "mail.retried", ticket=ticket, data={"outbox_id": row.id, "was": was}
            )
            count += 1
        return count


async def set_notifications(desk: Desk, actor: ActorLike, handle: str, on: bool) -> bool:
    """Opt an agent in or out of notification mail; agents change their own, admins anyone's."""
    from core.admin import check_handle
    from core.errors import Forbidden
    from storage.models import Agent
    from storage.types import Role

    who = await desk.resolve(actor)
    wanted = check_handle(handle)
    if who.handle != wanted and who.role is not Role.ADMIN:
        raise Forbidden("Agents may only change their own notifications; ask an admin to change someone else's.")
    async with desk.db.writing() as session:
        agent = (await session.execute(select(Agent).where(Agent.handle == wanted))).scalar_one_or_none()
        if agent is None:
            raise NotFound(f"There is no agent {handle!r}; list them with `termdesk agent list`.")
        settings = dict(agent.settings or {})
        before = bool(settings.get("notify_mail"))
        settings["notify_mail"] = on
        agent.settings = settings
        if before != on:
            await events.record(
                session, who, "agent.changed", data={"agent": agent.handle, "changes": {"notify_mail": on}}
            )
        return before != on


async def show_template(desk: Desk, actor: ActorLike, department: str, kind: str) -> templates.TemplateView:
    async with desk.db.reading() as session:
        return await templates.show(session, await desk.resolve(actor), department, kind)


async def set_template(
    desk: Desk, actor: ActorLike, department: str, kind: str, *, subject: str | None, body: str | None
) -> templates.TemplateView:
    who = await desk.resolve(actor)
    async with desk.db.writing() as session:
        view = await templates.store(session, who, department, kind, subject, body)
        await events.record(
            session, who, "department.template", data={"department": view.department, "template": view.kind,
                                                       "reset": subject is None and body is None}
        )
        return view
