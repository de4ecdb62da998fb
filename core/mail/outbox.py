"""Queueing outgoing mail: replies, auto-acknowledgements, resolved notices and agent notifications.

`MailOutbox` is the real implementation of the `core.tickets.Outbox` seam. It
runs inside the caller's transaction, so an agent's reply and its outbox row
commit together (or not at all); the finished bytes, with a Message-ID fixed
now, wait in the `outbox` table for the worker in `core.mail.sender`.

Automatic mail follows RFC 3834 and RELIABILITY.md: only for mail the loop
guard found nothing automatic about, marked `Auto-Submitted`, `Precedence:
bulk` and our loop header, never to our own or robot addresses, and at most
`[smtp] auto_limit` per recipient per window (fewer for one subject). Mail
that is held back leaves a `mail.suppressed` event on the ticket saying why.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.config import Settings
from core.errors import BadArgument
from core.mail import templates
from core.mail.compose import (
    Identity,
    Outgoing,
    body_with_signature,
    check_address,
    compose,
    message_id_for,
    subject_key,
    text_to_html,
    with_ref,
)
from core.mail.guard import LOOP_HEADER, never_auto_mail
from core.policy import Actor
from core.refs import format_ref
from storage.models import Agent, Contact, Department, Membership, Message, Ticket
from storage.outbox import OutboxMail
from storage.types import MessageKind, utcnow

log = logging.getLogger("termdesk.mail.outbox")

AUTOMATIC_KINDS = ("auto-ack", "resolved", "auto-close")


def identity_of(department: Department) -> Identity:
    """The department's sender: name and address, Reply-To (settings "reply_to") and signature."""
    settings = department.settings or {}
    reply_to = settings.get("reply_to") if isinstance(settings.get("reply_to"), str) else None
    return Identity(
        name=department.sender_name or department.name,
        address=department.email,
        reply_to=reply_to or department.email,
        signature=department.signature or "",
    )


class MailOutbox:
    """Puts mail into the outbox table in the caller's transaction; `clock` is for tests of the limits."""

    def __init__(self, settings: Settings, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.settings = settings
        self.smtp = settings.smtp
        self.clock = clock
        self.prefix = settings.desk.ref_prefix
        self.actor = Actor.system()

    # -- the Outbox seam -----------------------------------------------------

    async def queue_reply(self, session: AsyncSession, ticket: Ticket, message: Message) -> None:
        """An agent's reply goes to the ticket's contact, threaded under the conversation."""
        department = await _department(session, ticket)
        contact = await session.get(Contact, ticket.contact_id)
        assert contact is not None, "tickets.contact_id is a foreign key"
        parent = await _thread_parent(session, ticket.id, message.id)
        references = [*(parent.references or "").split(), parent.message_id] if parent and parent.message_id else []
        identity = identity_of(department)
        subject = with_ref(ticket.subject, self.ref(ticket), reply=True)
        message_id = message_id_for(department.email)
        html = None
        if (department.settings or {}).get("html_mail"):
            html = text_to_html(body_with_signature(message.body_text, identity.signature))
        message.message_id = message_id
        message.subject = subject
        message.from_address = department.email
        message.to_addresses = contact.email
        message.in_reply_to = parent.message_id if parent else None
        message.references = " ".join(references) or None
        await self._queue(
            session,
            kind="reply",
            ticket=ticket,
            entry=message,
            outgoing=Outgoing(
                identity=identity,
                to_address=contact.email,
                to_name=contact.name,
                subject=subject,
                text=message.body_text,
                html=html,
                message_id=message_id,
                date=self.clock(),
                in_reply_to=message.in_reply_to,
                references=references,
            ),
        )

    async def mail_received(self, session: AsyncSession, ticket: Ticket, message: Message, *, new_ticket: bool) -> None:
        """Customer mail was stored: acknowledge a new ticket (when allowed) and notify the department."""
        flags = set(message.automatic or [])
        department = await _department(session, ticket)
        if new_ticket:
            if flags:
                reason = f"the mail is automatic ({', '.join(sorted(flags))})"
                await self._suppressed(session, ticket, "auto-ack", reason)
            elif (department.settings or {}).get("auto_ack", True):
                await self._automatic(session, ticket, department, "auto-ack", parent=message)
        if "bounce" not in flags and "our-loop" not in flags:
            await self._notify(session, ticket, department, "New ticket" if new_ticket else "Customer reply")

    async def ticket_resolved(self, session: AsyncSession, ticket: Ticket) -> None:
        """The resolved / auto-closed notice, unless the conversation was started by a machine."""
        department = await _department(session, ticket)
        if not (department.settings or {}).get("resolved_notice", True):
            return
        first = await _last_customer_message(session, ticket.id)
        if first is not None and first.automatic:
            await self._suppressed(session, ticket, "resolved", "the customer's mail was automatic")
            return
        await self._automatic(session, ticket, department, "resolved", parent=first)

    # -- for the rules and the scheduler (core.rules, core.scheduler) -------------

    async def ticket_auto_closed(self, session: AsyncSession, ticket: Ticket) -> None:
        """The department's auto-close template, when a pending ticket was closed for lack of an answer."""
        department = await _department(session, ticket)
        await self._automatic(
            session, ticket, department, "auto-close", parent=await _last_customer_message(session, ticket.id)
        )

    async def send_template(self, session: AsyncSession, ticket: Ticket, kind: str) -> None:
        """A rule mails one of the department's templates to the contact (automatic-mail limits apply)."""
        department = await _department(session, ticket)
        await self._automatic(
            session, ticket, department, templates.check_kind(kind),
            parent=await _last_customer_message(session, ticket.id),
        )

    async def notify(self, session: AsyncSession, ticket: Ticket, event: str) -> None:
        """A rule notifies the department's agents who opted in to mail."""
        await self._notify(session, ticket, await _department(session, ticket), event)

    # -- helpers ---------------------------------------------------------------

    def ref(self, ticket: Ticket) -> str:
        return format_ref(self.prefix, ticket.id)

    def loop_headers(self) -> list[tuple[str, str]]:
        return [("Precedence", "bulk"), (LOOP_HEADER, self.settings.mail.loop_header_value)]

    async def _variables(self, session: AsyncSession, ticket: Ticket, department: Department) -> dict[str, str]:
        contact = await session.get(Contact, ticket.contact_id)
        agent = await session.get(Agent, ticket.assignee_id) if ticket.assignee_id else None
        web = self.settings.desk.web_address.rstrip("/")
        ref = self.ref(ticket)
        return {
            "ref": ref,
            "subject": ticket.subject,
            "contact_name": contact.name if contact else "",
            "contact_email": contact.email if contact else "",
            "agent": agent.name if agent else "",
            "department": department.sender_name or department.name,
            "ticket_link": f"{web}/tickets/{ref}" if web else "",
        }

    async def _automatic(
        self, session: AsyncSession, ticket: Ticket, department: Department, kind: str, *, parent: Message | None
    ) -> None:
        contact = await session.get(Contact, ticket.contact_id)
        assert contact is not None, "tickets.contact_id is a foreign key"
        recipient = contact.email.strip().lower()
        if never_auto_mail(recipient, await own_addresses(session)):
            await self._suppressed(session, ticket, kind, f"{recipient} is one of ours or a robot address")
            return
        key = subject_key(ticket.subject)
        reason = await self._over_limit(session, recipient, key)
        if reason:
            await self._suppressed(session, ticket, kind, reason)
            return
        rendered = templates.render(department, kind, await self._variables(session, ticket, department))
        references = []
        if parent is not None and parent.message_id:
            references = [*(parent.references or "").split(), parent.message_id]
        await self._queue(
            session,
            kind=kind,
            ticket=ticket,
            entry=None,
            subject_key=key,
            outgoing=Outgoing(
                identity=identity_of(department),
                to_address=recipient,
                to_name=contact.name,
                subject=with_ref(rendered.subject, self.ref(ticket), reply=True),
                text=rendered.body,
                message_id=message_id_for(department.email),
                date=self.clock(),
                in_reply_to=parent.message_id if parent else None,
                references=references,
                headers=[
                    ("Auto-Submitted", "auto-replied"),
                    ("X-Auto-Response-Suppress", "All"),
                    *self.loop_headers(),
                ],
            ),
        )

    async def _over_limit(self, session: AsyncSession, recipient: str, key: str) -> str | None:
        since = self.clock() - timedelta(minutes=self.smtp.auto_limit_minutes)
        recent = (
            select(OutboxMail.subject_key)
            .where(
                OutboxMail.recipient == recipient,
                OutboxMail.kind.in_(AUTOMATIC_KINDS),
                OutboxMail.created_at >= since,
            )
            .subquery()
        )
        total, same = (
            await session.execute(
                select(func.count(), func.count().filter(recent.c.subject_key == key)).select_from(recent)
            )
        ).one()
        window = f"{self.smtp.auto_limit_minutes:g} minutes"
        if total >= self.smtp.auto_limit:
            return f"{recipient} already got {total} automatic mails in {window} ([smtp] auto_limit)"
        if same >= self.smtp.auto_limit_same_subject:
            return f"{recipient} already got {same} automatic mails on this subject in {window}"
        return None

    async def _notify(self, session: AsyncSession, ticket: Ticket, department: Department, event: str) -> None:
        """Mail the department's members who opted in (agent setting "notify_mail")."""
        agents = (
            await session.execute(
                select(Agent)
                .join(Membership, Membership.agent_id == Agent.id)
                .where(Membership.department_id == department.id, Agent.active.is_(True))
                .order_by(Agent.id)
            )
        ).scalars().all()
        wanted = [agent for agent in agents if (agent.settings or {}).get("notify_mail")]
        if not wanted:
            return
        ours = await own_addresses(session)
        variables = {**await self._variables(session, ticket, department), "event": event}
        rendered = templates.render(department, "notification", variables)
        identity = identity_of(department)
        for agent in wanted:
            if never_auto_mail(agent.email, ours):
                continue
            await self._queue(
                session,
                kind="notification",
                ticket=ticket,
                entry=None,
                outgoing=Outgoing(
                    identity=Identity(identity.name, identity.address, identity.reply_to),
                    to_address=agent.email,
                    to_name=agent.name,
                    subject=with_ref(rendered.subject, self.ref(ticket), reply=False),
                    text=rendered.body,
                    message_id=message_id_for(department.email),
                    date=self.clock(),
                    headers=[
                        ("Auto-Submitted", "auto-generated"),
                        ("X-Auto-Response-Suppress", "All"),
                        *self.loop_headers(),
                    ],
                ),
            )

    async def _queue(
        self,
        session: AsyncSession,
        *,
        kind: str,
        ticket: Ticket,
        entry: Message | None,
        outgoing: Outgoing,
        subject_key: str = "",
    ) -> OutboxMail:
        now = self.clock()
        row = OutboxMail(
            kind=kind,
            ticket_id=ticket.id,
            entry_id=entry.id if entry is not None else None,
            mail_message_id=outgoing.message_id,
            sender=outgoing.identity.address.strip().lower(),
            recipient=outgoing.to_address.strip().lower()[:320],
            subject_key=subject_key,
            state="queued",
            attempts=0,
            created_at=now,
            next_attempt_at=now,
        )
        try:
            check_address(outgoing.identity.address)
            row.data = compose(outgoing)
        except BadArgument as problem:
            # The reply itself is kept; only its delivery fails, visibly on the ticket.
            row.data = b""
            row.state = "failed"
            row.last_error = problem.message
        session.add(row)
        if entry is not None:
            entry.delivery_status = row.state
        await session.flush()
        if row.state == "failed":
            await record_failure(session, row, row.last_error or "")
        return row

    async def _suppressed(self, session: AsyncSession, ticket: Ticket, kind: str, reason: str) -> None:
        log.info("ticket %s: no %s mail: %s", self.ref(ticket), kind, reason)
        await events.record(
            session, self.actor, "mail.suppressed", ticket=ticket, data={"mail": kind, "reason": reason}
        )


async def record_failure(session: AsyncSession, row: OutboxMail, error: str) -> None:
    """A permanent failure: the thread entry says failed, and the ticket's history says why."""
    if row.entry_id is not None:
        entry = await session.get(Message, row.entry_id)
        if entry is not None:
            entry.delivery_status = "failed"
    ticket = await session.get(Ticket, row.ticket_id) if row.ticket_id is not None else None
    await events.record(
        session,
        Actor.system(),
        "mail.failed",
        ticket=ticket,
        data={
            "mail": row.kind,
            "outbox_id": row.id,
            "message_id": row.entry_id,
            "recipient": row.recipient,
            "error": error,
        },
    )


async def own_addresses(session: AsyncSession) -> set[str]:
    rows = await session.execute(select(Department.email, Department.settings))
    found: set[str] = set()
    for address, settings in rows:
        found.add(address.strip().lower())
        reply_to = (settings or {}).get("reply_to")
        if isinstance(reply_to, str):
            found.add(reply_to.strip().lower())
    return found


async def _department(session: AsyncSession, ticket: Ticket) -> Department:
    department = await session.get(Department, ticket.department_id)
    assert department is not None, "tickets.department_id is a foreign key"
    return department


async def _thread_parent(session: AsyncSession, ticket_id: int, exclude_id: int | None) -> Message | None:
    """What a reply answers: the newest customer mail with a Message-ID, else our newest sent mail."""
    for kinds in ((MessageKind.CUSTOMER.value,), (MessageKind.REPLY.value,)):
        query = select(Message).where(
            Message.ticket_id == ticket_id, Message.kind.in_(kinds), Message.message_id.is_not(None)
        )
        if exclude_id is not None:
            query = query.where(Message.id != exclude_id)
        found = (await session.execute(query.order_by(Message.id.desc()).limit(1))).scalar_one_or_none()
        if found is not None:
            return found
    return None


async def _last_customer_message(session: AsyncSession, ticket_id: int) -> Message | None:
    query = (
        select(Message)
        .where(Message.ticket_id == ticket_id, Message.kind == MessageKind.CUSTOMER.value)
        .order_by(Message.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()
