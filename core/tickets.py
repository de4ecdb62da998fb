"""Changing tickets: creation from an intake, thread entries, and every field change.

All ticket writes go through `apply_change()`, which checks the version the
actor saw, keeps the queue counters in step and appends the event, so no
write path can forget one of the three.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import counters, events, sla
from core.errors import BadArgument, Conflict, NotFound
from core.policy import Actor, is_member
from core.refs import slugify
from core.reports import durations
from core.views import Intake
from storage.models import Agent, Contact, Department, Message, Tag, Ticket, TicketTag
from storage.types import Channel, MessageKind, Priority, Status, utcnow

ACTIVE_STATUSES = (Status.NEW, Status.OPEN, Status.PENDING)
MAX_SUBJECT = 998
MAX_BODY = 5_000_000
_TAG = re.compile(r"^[^\s,]{1,100}$")


class Outbox(Protocol):
    """Seam for outgoing mail: queue it in the same transaction that stored the change causing it."""

    async def queue_reply(self, session: AsyncSession, ticket: Ticket, message: Message) -> None: ...

    async def mail_received(
        self, session: AsyncSession, ticket: Ticket, message: Message, *, new_ticket: bool
    ) -> None: ...

    async def ticket_resolved(self, session: AsyncSession, ticket: Ticket) -> None: ...

    async def ticket_auto_closed(self, session: AsyncSession, ticket: Ticket) -> None: ...

    async def send_template(self, session: AsyncSession, ticket: Ticket, kind: str) -> None: ...

    async def notify(self, session: AsyncSession, ticket: Ticket, event: str) -> None: ...


class NoOutbox:
    """Nothing is mailed; `core.mail.outbox.MailOutbox` plugs in here when `[smtp]` is configured."""

    async def queue_reply(self, session: AsyncSession, ticket: Ticket, message: Message) -> None:
        return None

    async def mail_received(
        self, session: AsyncSession, ticket: Ticket, message: Message, *, new_ticket: bool
    ) -> None:
        return None

    async def ticket_resolved(self, session: AsyncSession, ticket: Ticket) -> None:
        return None

    async def ticket_auto_closed(self, session: AsyncSession, ticket: Ticket) -> None:
        return None

    async def send_template(self, session: AsyncSession, ticket: Ticket, kind: str) -> None:
        return None

    async def notify(self, session: AsyncSession, ticket: Ticket, event: str) -> None:
        return None


def parse_status(text: str) -> Status:
    try:
        return Status(text.strip().lower())
    except ValueError:
        choices = ", ".join(status.value for status in Status)
        raise BadArgument(f"{text!r} is not a ticket status; use one of {choices}.") from None


def parse_priority(text: str) -> Priority:
    try:
        return Priority.parse(text)
    except KeyError:
        choices = ", ".join(priority.label for priority in Priority)
        raise BadArgument(f"{text!r} is not a priority; use one of {choices}.") from None


def parse_channel(text: str) -> Channel:
    try:
        return Channel(text.strip().lower())
    except ValueError:
        choices = ", ".join(channel.value for channel in Channel)
        raise BadArgument(f"{text!r} is not a channel; use one of {choices}.") from None


def normalise_tag(text: str) -> str:
    tag = "-".join(text.strip().lower().split())
    if not _TAG.match(tag):
        raise BadArgument(f"{text!r} is not a usable tag; use 1 to 100 characters without commas.")
    return tag


def check_text(label: str, value: str, limit: int) -> str:
    """Text as stored: NFC-normalised (so search matches however an accent was typed), NUL made U+FFFD.

    Refuses text the database could not store: too long, or not encodable (lone surrogates).
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadArgument(f"The {label} is not valid Unicode text; send it as UTF-8.") from None
    # PostgreSQL text cannot hold NUL; mail keeps its raw bytes, so nothing is lost.
    value = unicodedata.normalize("NFC", value).replace("\x00", "\ufffd")
    if len(value) > limit:
        raise BadArgument(f"The {label} is {len(value)} characters long; shorten it to at most {limit}.")
    return value


async def department_by_name(session: AsyncSession, name: str) -> Department:
    """An active department by name or slug, case-insensitively."""
    wanted = name.strip()
    department = (
        await session.execute(
            select(Department)
            .where(
                Department.active.is_(True),
                or_(
                    Department.slug == slugify(wanted),
                    Department.name == wanted,
                    func.lower(Department.name) == wanted.lower(),
                ),
            )
            .limit(1)
        )
    ).scalar_one_or_none()
    if department is None:
        raise NotFound(f"No department named {name!r} exists; list them with `termdesk department list`.")
    return department


def contact_address(email: str) -> str:
    """A contact's address as stored (lower-cased), or BadArgument when it cannot be one."""
    address = check_text("email address", email.strip().lower(), 320)
    if "@" not in address or len(address) > 320 or any(ch.isspace() for ch in address):
        raise BadArgument(f"{email!r} is not an email address; give one like name@example.com.")
    return address


async def upsert_contact(session: AsyncSession, email: str, name: str) -> Contact:
    address = contact_address(email)
    contact = (await session.execute(select(Contact).where(Contact.email == address))).scalar_one_or_none()
    if contact is None:
        contact = Contact(email=address, name=check_text("contact name", name.strip(), 200))
        session.add(contact)
        await session.flush()
    elif name.strip() and not contact.name:
        contact.name = name.strip()
        contact.updated_at = utcnow()
    return contact


async def create_ticket(
    session: AsyncSession,
    actor: Actor,
    intake: Intake,
    message: Message | None = None,
    department: Department | None = None,
) -> tuple[Ticket, Message]:
    """Open a ticket with its first customer message.

    Mail passes its own prepared `message` (with addresses, flags, raw mail),
    and the department it already resolved; otherwise the message is made
    from the intake's body and the department looked up by name.
    """
    subject = check_text("subject", " ".join(intake.subject.split()), MAX_SUBJECT)
    if not subject:
        raise BadArgument("The subject is empty; give one with --subject.")
    body = check_text("body", intake.body, MAX_BODY)
    department = department or await department_by_name(session, intake.department)
    contact = await upsert_contact(session, intake.contact_email, intake.contact_name)
    now = utcnow()
    ticket = Ticket(
        subject=subject,
        department_id=department.id,
        contact_id=contact.id,
        status=Status.NEW.value,
        priority=int(parse_priority(intake.priority)),
        channel=parse_channel(intake.channel).value,
        created_at=now,
        updated_at=now,
        last_customer_message_at=now,
        message_count=1,
    )
    await sla.refresh(session, ticket, now)  # due times go in with the INSERT
    session.add(ticket)
    await session.flush()
    if message is None:
        message = Message(body_text=body, body_html=intake.body_html, message_id=intake.message_id)
    message.ticket_id = ticket.id
    message.kind = MessageKind.CUSTOMER.value
    message.author_contact_id = contact.id
    message.created_at = now
    session.add(message)
    await counters.move(session, None, counters.key_of(ticket))
    await events.record(
        session,
        actor,
        "ticket.created",
        ticket=ticket,
        data={"channel": ticket.channel, "department": department.name, "contact": contact.email},
    )
    return ticket, message


async def add_customer_message(
    session: AsyncSession, actor: Actor, ticket: Ticket, message: Message, *, data: dict[str, Any]
) -> None:
    """A customer wrote again: the message joins the thread and a resolved or pending ticket reopens."""
    message.ticket_id = ticket.id
    message.kind = MessageKind.CUSTOMER.value
    message.author_contact_id = ticket.contact_id
    session.add(message)
    await session.flush()
    changes: dict[str, Any] = {
        "message_count": ticket.message_count + 1,
        "last_customer_message_at": message.created_at,
    }
    reopened = ticket.status == Status.RESOLVED
    # Pending means "waiting on the customer": their answer makes it the agents' turn again.
    if ticket.status in (Status.RESOLVED, Status.PENDING):
        changes.update(status_changes(ticket, Status.OPEN))
    await apply_change(
        session,
        actor,
        ticket,
        "ticket.customer_replied",
        expected_version=None,
        changes=changes,
        data={"message_id": message.id, "reopened": reopened, **data},
    )


def _display(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


async def apply_change(
    session: AsyncSession,
    actor: Actor,
    ticket: Ticket,
    kind: str,
    *,
    expected_version: int | None,
    changes: dict[str, Any],
    data: dict[str, Any] | None = None,
    prior_department_id: int | None = None,
) -> bool:
    """Set `changes` on the ticket with counters and one event; False when nothing changed.

    `expected_version` is the version the actor's screen showed: if the
    ticket moved on since, the write is refused instead of overwriting.
    """
    if expected_version is not None and ticket.version != expected_version:
        raise Conflict(
            f"Ticket changed while you were working on it (version {ticket.version}, you saw "
            f"{expected_version}); reload it and try again."
        )
    before_key = counters.key_of(ticket)
    diff = {
        name: {"before": _display(getattr(ticket, name)), "after": _display(value)}
        for name, value in changes.items()
        if getattr(ticket, name) != value
    }
    if not diff and not data:
        return False
    # Durations for reports, before this change's event: a pending span still open ends now.
    await durations.on_change(session, ticket, {name: value for name, value in changes.items() if name in diff})
    for name, value in changes.items():
        setattr(ticket, name, value)
    ticket.updated_at = utcnow()
    await sla.refresh(session, ticket, ticket.updated_at)  # due times move in the same UPDATE
    await counters.move(session, before_key, counters.key_of(ticket))
    await events.record(
        session,
        actor,
        kind,
        ticket=ticket,
        prior_department_id=prior_department_id,
        data={"changes": diff, **(data or {})},
    )
    return True


def status_changes(ticket: Ticket, status: Status) -> dict[str, Any]:
    """The fields a move to `status` sets, with the timestamps reports read."""
    changes: dict[str, Any] = {"status": status.value}
    now = utcnow()
    if status is Status.RESOLVED:
        changes["resolved_at"] = now
    elif status is Status.CLOSED:
        changes["closed_at"] = now
        if ticket.resolved_at is None:
            changes["resolved_at"] = now
    elif status in ACTIVE_STATUSES and ticket.status in (Status.RESOLVED, Status.CLOSED):
        # Reopened: the next resolution is a new one.
        changes["resolved_at"] = None
        changes["closed_at"] = None
    return changes


async def add_entry(
    session: AsyncSession,
    actor: Actor,
    ticket: Ticket,
    kind: MessageKind,
    body: str,
    *,
    expected_version: int | None,
    status: Status | None,
    outbox: Outbox,
) -> Message:
    """An agent reply or internal note, with the ticket's timestamps and status moved along."""
    text = check_text("body", body, MAX_BODY)
    if not text.strip():
        raise BadArgument("The message body is empty; give it with --body or on standard input.")
    now = utcnow()
    answered = await durations.answer_minutes(session, ticket, now) if kind is MessageKind.REPLY else None
    message = Message(
        ticket_id=ticket.id, kind=kind.value, author_agent_id=actor.id, body_text=text, created_at=now,
        answer_minutes=answered,
    )
    session.add(message)
    await session.flush()
    changes: dict[str, Any] = {"message_count": ticket.message_count + 1}
    if kind is MessageKind.REPLY:
        changes["last_agent_reply_at"] = now
        if ticket.first_response_at is None:
            changes["first_response_at"] = now
        target = status or (Status.OPEN if ticket.status == Status.NEW else None)
        if target is not None:
            changes.update(status_changes(ticket, target))
    elif status is not None:
        changes.update(status_changes(ticket, status))
    event_kind = "ticket.replied" if kind is MessageKind.REPLY else "ticket.noted"
    await apply_change(
        session,
        actor,
        ticket,
        event_kind,
        expected_version=expected_version,
        changes=changes,
        data={"message_id": message.id},
    )
    if kind is MessageKind.REPLY:
        await outbox.queue_reply(session, ticket, message)
    return message


async def agent_in_department(session: AsyncSession, handle: str, department: Department) -> Agent:
    agent = (
        await session.execute(select(Agent).where(Agent.handle == handle.strip().lower(), Agent.active.is_(True)))
    ).scalar_one_or_none()
    if agent is None:
        raise NotFound(f"There is no active agent {handle!r}; list them with `termdesk agent list`.")
    if not await is_member(session, agent.id, department.id):
        raise BadArgument(
            f"{agent.handle} is not a member of {department.name}; add them with "
            f"`termdesk agent join {agent.handle} {department.name}` first."
        )
    return agent


async def transfer(
    session: AsyncSession,
    actor: Actor,
    ticket: Ticket,
    target: Department,
    note: str | None,
    *,
    expected_version: int | None,
) -> None:
    """Move the ticket to another department; thread, notes, tags and contact stay with it."""
    if target.id == ticket.department_id:
        raise BadArgument(f"The ticket is already in {target.name}; pick another department.")
    source = await department_of(session, ticket)
    changes: dict[str, Any] = {"department_id": target.id}
    if ticket.assignee_id is not None and not await is_member(session, ticket.assignee_id, target.id):
        changes["assignee_id"] = None  # the assignee could no longer see it
    note_id = None
    if note and note.strip():
        message = Message(
            ticket_id=ticket.id,
            kind=MessageKind.NOTE.value,
            author_agent_id=actor.id,
            body_text=check_text("note", note, MAX_BODY),
        )
        session.add(message)
        await session.flush()
        note_id = message.id
        changes["message_count"] = ticket.message_count + 1
    await apply_change(
        session,
        actor,
        ticket,
        "ticket.transferred",
        expected_version=expected_version,
        changes=changes,
        data={"from": source.name, "to": target.name, "note_id": note_id},
        prior_department_id=source.id,
    )


async def tag_ids(session: AsyncSession, names: list[str]) -> dict[str, int]:
    found = dict(
        (await session.execute(select(Tag.name, Tag.id).where(Tag.name.in_(names)))).all()
    )
    for name in names:
        if name not in found:
            tag = Tag(name=name)
            session.add(tag)
            await session.flush()
            found[name] = tag.id
    return found


async def ticket_tags(session: AsyncSession, ticket_id: int) -> list[str]:
    rows = await session.execute(
        select(Tag.name).join(TicketTag, TicketTag.tag_id == Tag.id).where(TicketTag.ticket_id == ticket_id)
    )
    return sorted(rows.scalars().all())


async def change_tags(
    session: AsyncSession,
    actor: Actor,
    ticket: Ticket,
    add: list[str],
    remove: list[str],
    *,
    expected_version: int | None,
) -> list[str]:
    adding = sorted({normalise_tag(tag) for tag in add})
    removing = sorted({normalise_tag(tag) for tag in remove} - set(adding))
    current = set(await ticket_tags(session, ticket.id))
    really_added = [tag for tag in adding if tag not in current]
    really_removed = [tag for tag in removing if tag in current]
    if really_added:
        ids = await tag_ids(session, really_added)
        session.add_all(TicketTag(ticket_id=ticket.id, tag_id=ids[name]) for name in really_added)
    if really_removed:
        ids = await tag_ids(session, really_removed)
        await session.execute(
            delete(TicketTag).where(
                TicketTag.ticket_id == ticket.id, TicketTag.tag_id.in_([ids[name] for name in really_removed])
            )
        )
    if really_added or really_removed:
        await apply_change(
            session,
            actor,
            ticket,
            "ticket.tagged",
            expected_version=expected_version,
            changes={},
            data={"added": really_added, "removed": really_removed},
        )
    return sorted((current | set(really_added)) - set(really_removed))


async def department_of(session: AsyncSession, ticket: Ticket) -> Department:
    department = await session.get(Department, ticket.department_id)
    assert department is not None, "tickets.department_id is a foreign key"
    return department
