"""Set-based import of one batch of parsed mail: a handful of statements per batch, not per mail.

`Intake.ingest_batch` calls `import_batch` first. It plans the whole batch
from a few reads (dedupe keys, the tickets its Message-IDs and subject
references point at, the senders' contacts), then writes it with one
multi-row INSERT per table, one UPDATE per ticket that got replies and one
per queue counter that moved. The rules are those of the per-mail path in
`core/mail/intake.py` (threading as `core/mail/thread.py`, tickets, counters
and events as `core/tickets.py`): the tests run both paths over the same mail.

Anything out of the ordinary — a Message-ID seen before, the same Message-ID
twice in a batch, a mail the domain would refuse, a ticket changed by
someone else meanwhile — makes `import_batch` answer None before it writes,
or raise `Replan` after, and the caller rolls back and takes the per-mail
path, which knows every case. A batch of ordinary new mail and replies, the
bulk of any sync or import, never needs it.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core import counters, sla
from core.errors import DeskError
from core.mail.message import ParsedMail, Unparseable
from core.mail.thread import bounced_message_ids, subject_ticket_ids
from core.tickets import MAX_BODY, MAX_SUBJECT, check_text, contact_address, status_changes
from storage.models import Agent, Attachment, Blob, Contact, Department, Event, Message, Ticket
from storage.models import RawMail as RawMailRow
from storage.types import MessageKind, Status, utcnow

if TYPE_CHECKING:
    from core.mail.intake import BatchContext, BatchResult, Intake, RawMail, Source

log = logging.getLogger("termdesk.mail.intake")

# Above this many looked-up Message-IDs the per-mail path is as good, and
# the IN lists stay far below SQLite's bound-parameter limit.
MAX_LOOKUPS = 20_000

_TICKET_COLUMNS = (
    Ticket.id,
    Ticket.status,
    Ticket.department_id,
    Ticket.assignee_id,
    Ticket.contact_id,
    Ticket.message_count,
    Ticket.version,
    Ticket.resolved_at,
    Ticket.closed_at,
    Ticket.last_customer_message_at,
)


class Replan(Exception):
    """The set-based write met something its plan did not foresee; roll back and import mail by mail."""


@dataclass
class TicketState:
    """A ticket as the batch sees it: read from the database, or opened by an earlier mail of the batch."""

    id: int | None  # None until a new ticket is inserted
    status: str
    department_id: int
    assignee_id: int | None
    contact_id: int | None  # None for a new ticket whose contact is new too (see `contact_email`)
    contact_email: str
    message_count: int
    version: int
    resolved_at: datetime | None
    closed_at: datetime | None
    last_customer_message_at: datetime | None
    new: bool = False
    touched: bool = False  # got a reply in this batch
    start_version: int = 0
    start_key: counters.CounterKey | None = None
    updated_at: datetime | None = None

    def key(self) -> counters.CounterKey:
        assert self.id is not None or self.new
        return (self.department_id, self.status, self.assignee_id)


@dataclass
class Planned:
    """What one mail of the batch becomes."""

    mail: RawMail
    digest: str
    key: str
    state: str  # imported | quarantined | dropped | duplicate
    reason: str | None = None
    parsed: ParsedMail | None = None
    ticket: TicketState | None = None
    opens: bool = False  # a new ticket, rather than a reply
    how: str = ""  # how a reply was threaded
    warnings: list[str] = field(default_factory=list)
    department: Department | None = None
    subject: str = ""  # the new ticket's subject
    body: str = ""
    created_at: datetime | None = None
    reply_changes: dict[str, Any] = field(default_factory=dict)
    reply_diff: dict[str, Any] = field(default_factory=dict)
    reopened: bool = False
    message_db_id: int | None = None


@dataclass
class Lookups:
    tickets_by_message_id: dict[str, int]  # Message-ID of any stored entry -> its ticket
    tickets_holding: dict[str, set[int]]  # this batch's own Message-IDs -> tickets that already hold them
    tickets: dict[int, TicketState]
    contacts: dict[str, tuple[int, str]]  # lower-cased email -> (id, name)
    contact_emails: dict[int, str]
    our_addresses: set[str]


async def import_batch(
    intake: Intake,
    session: AsyncSession,
    source: Source,
    prepared: Sequence[tuple[RawMail, str, ParsedMail | Unparseable]],
    keys: Sequence[str],
    context: BatchContext,
) -> BatchResult | None:
    """Import the batch set-wise; None (having written nothing) when it needs the per-mail path."""
    if len(set(keys)) != len(keys) or any(key in context.known_keys for key in keys):
        return None
    lookups = await _lookups(intake, session, prepared)
    if lookups is None:
        return None
    plan = _plan(intake, source, prepared, keys, context, lookups)
    if plan is None:
        return None
    return await _write(intake, session, source, plan, lookups)


# -- reads ------------------------------------------------------------------


async def _lookups(
    intake: Intake, session: AsyncSession, prepared: Sequence[tuple[RawMail, str, ParsedMail | Unparseable]]
) -> Lookups | None:
    mails = [parsed for _, _, parsed in prepared if isinstance(parsed, ParsedMail)]
    header_ids: set[str] = set()
    own_ids: set[str] = set()
    ref_ids: set[int] = set()
    senders: set[str] = set()
    for parsed in mails:
        header_ids.update(parsed.in_reply_to)
        header_ids.update(parsed.references)
        if parsed.is_bounce:
            header_ids.update(bounced_message_ids(parsed))
        own_ids.add(parsed.message_id)
        ref_ids.update(subject_ticket_ids(parsed.subject, intake.desk.prefix))
        if parsed.sender.address:
            senders.add(parsed.sender.address.strip().lower())
    if len(header_ids) + len(own_ids) > MAX_LOOKUPS:
        return None

    by_message_id: dict[str, int] = {}
    holding: dict[str, set[int]] = defaultdict(set)
    wanted = sorted(header_ids | own_ids)
    for chunk in _chunks(wanted, 500):
        rows = await session.execute(
            select(Message.message_id, Message.ticket_id).where(Message.message_id.in_(chunk))
        )
        for message_id, ticket_id in rows:
            if message_id is None:
                continue
            by_message_id.setdefault(message_id, ticket_id)
            if message_id in own_ids:
                holding[message_id].add(ticket_id)

    tickets: dict[int, TicketState] = {}
    ticket_ids = sorted(set(by_message_id.values()) | ref_ids)
    for chunk in _chunks(ticket_ids, 500):
        for row in await session.execute(select(*_TICKET_COLUMNS).where(Ticket.id.in_(chunk))):
            tickets[row.id] = TicketState(
                id=row.id,
                status=row.status,
                department_id=row.department_id,
                assignee_id=row.assignee_id,
                contact_id=row.contact_id,
                contact_email="",
                message_count=row.message_count,
                version=row.version,
                resolved_at=row.resolved_at,
                closed_at=row.closed_at,
                last_customer_message_at=row.last_customer_message_at,
                start_version=row.version,
            )
            tickets[row.id].start_key = tickets[row.id].key()

    contacts: dict[str, tuple[int, str]] = {}
    contact_emails: dict[int, str] = {}
    contact_ids = sorted({state.contact_id for state in tickets.values() if state.contact_id is not None})
    for chunk in _chunks(sorted(senders), 500):
        found = await session.execute(select(Contact.id, Contact.email, Contact.name).where(Contact.email.in_(chunk)))
        for contact_id, email, name in found:
            contacts[email] = (contact_id, name)
            contact_emails[contact_id] = email
    missing = [contact_id for contact_id in contact_ids if contact_id not in contact_emails]
    for chunk in _chunks(missing, 500):
        for contact_id, email in await session.execute(select(Contact.id, Contact.email).where(Contact.id.in_(chunk))):
            contact_emails[contact_id] = email
    for state in tickets.values():
        state.contact_email = contact_emails.get(state.contact_id or 0, "")

    our_addresses: set[str] = set()
    if ref_ids:  # only a subject reference asks whether the sender is one of us
        rows = await session.execute(
            select(Department.email).union_all(select(Agent.email))
        )
        our_addresses = {address for address in rows.scalars() if address}
    return Lookups(by_message_id, holding, tickets, contacts, contact_emails, our_addresses)


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- the plan ---------------------------------------------------------------


def _plan(
    intake: Intake,
    source: Source,
    prepared: Sequence[tuple[RawMail, str, ParsedMail | Unparseable]],
    keys: Sequence[str],
    context: BatchContext,
    lookups: Lookups,
) -> list[Planned] | None:
    from core.mail.intake import _department_for, _ticket_subject

    plan: list[Planned] = []
    in_batch: dict[str, TicketState] = {}  # Message-IDs this batch puts on a ticket
    for (mail, digest, parsed), key in zip(prepared, keys, strict=True):
        if isinstance(parsed, Unparseable):
            plan.append(Planned(mail, digest, key, "quarantined", parsed.reason))
            continue
        if "our-loop" in parsed.automatic:
            plan.append(Planned(mail, digest, key, "dropped", "our own loop header came back", parsed))
            continue
        if not parsed.sender.address:
            plan.append(Planned(mail, digest, key, "quarantined", "no usable From address", parsed))
            continue
        try:
            body = check_text("body", parsed.text, MAX_BODY)
        except DeskError:
            return None  # the per-mail path quarantines it with the reason
        item = Planned(mail, digest, key, "imported", parsed=parsed, body=body, created_at=utcnow())
        match = _thread(intake, parsed, lookups, in_batch)
        ticket = match[0] if match else None
        if ticket is not None and ticket.id is not None and ticket.id in lookups.tickets_holding.get(
            parsed.message_id, set()
        ):
            item.state, item.ticket = "duplicate", ticket
            item.reason = f"already on {intake.desk.ref(ticket.id)}"
            plan.append(item)
            continue
        if ticket is not None and ticket.status in (Status.CLOSED, Status.SPAM):
            reference = intake.desk.ref(ticket.id) if ticket.id is not None else "a ticket"
            item.warnings.append(f"follow-up to {reference}, which was {ticket.status}")
            ticket = None
        if ticket is None:
            department = _department_for(parsed, context.departments, source.department)
            if isinstance(department, str):
                return None  # no such department: the per-mail path quarantines it
            try:
                subject = check_text("subject", " ".join(_ticket_subject(parsed.subject).split()), MAX_SUBJECT)
                sender = contact_address(parsed.sender.address)
                check_text("contact name", parsed.sender.name.strip(), 200)
            except DeskError:
                return None  # the per-mail path quarantines it with the reason
            known = lookups.contacts.get(sender)
            ticket = TicketState(
                id=None,
                status=Status.NEW.value,
                department_id=department.id,
                assignee_id=None,
                contact_id=known[0] if known else None,
                contact_email=sender,
                message_count=1,
                version=1,
                resolved_at=None,
                closed_at=None,
                last_customer_message_at=item.created_at,
                new=True,
            )
            item.opens, item.department, item.subject = True, department, subject
        else:
            item.how = match[1] if match else ""
            _reply(ticket, item)
        item.ticket = ticket
        in_batch[parsed.message_id] = ticket
        plan.append(item)
    return plan


def _thread(
    intake: Intake, parsed: ParsedMail, lookups: Lookups, in_batch: dict[str, TicketState]
) -> tuple[TicketState, str] | None:
    """`core.mail.thread.find_thread`, answered from the batch's lookups."""

    def ticket_for(message_id: str) -> TicketState | None:
        if message_id in in_batch:
            return in_batch[message_id]
        ticket_id = lookups.tickets_by_message_id.get(message_id)
        return lookups.tickets.get(ticket_id) if ticket_id is not None else None

    header_ids = [*parsed.in_reply_to, *reversed(parsed.references)]
    answered = {id(state) for state in (ticket_for(message_id) for message_id in header_ids) if state is not None}
    for ticket_id in subject_ticket_ids(parsed.subject, intake.desk.prefix):
        state = lookups.tickets.get(ticket_id)
        if state is None:
            continue
        sender = parsed.sender.address
        if id(state) in answered or (state.contact_email and sender == state.contact_email) or (
            sender and sender in lookups.our_addresses
        ):
            return state, "subject-ref"
    for message_id in parsed.in_reply_to:
        if (state := ticket_for(message_id)) is not None:
            return state, "in-reply-to"
    for message_id in reversed(parsed.references):
        if (state := ticket_for(message_id)) is not None:
            return state, "references"
    if parsed.is_bounce:
        for message_id in bounced_message_ids(parsed):
            if (state := ticket_for(message_id)) is not None:
                return state, "bounce"
    return None


def _reply(ticket: TicketState, item: Planned) -> None:
    """`core.tickets.add_customer_message` on the batch's view of the ticket."""
    changes: dict[str, Any] = {
        "message_count": ticket.message_count + 1,
        "last_customer_message_at": item.created_at,
    }
    item.reopened = ticket.status == Status.RESOLVED
    if ticket.status in (Status.RESOLVED, Status.PENDING):
        changes.update(status_changes(ticket, Status.OPEN))  # type: ignore[arg-type]  # reads status/resolved_at
    item.reply_diff = {
        name: {"before": _display(getattr(ticket, name)), "after": _display(value)}
        for name, value in changes.items()
        if getattr(ticket, name) != value
    }
    for name, value in changes.items():
        setattr(ticket, name, value)
    ticket.version += 1
    ticket.touched = True
    ticket.updated_at = utcnow()
    item.reply_changes = changes


def _display(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


# -- writes -----------------------------------------------------------------


async def _write(
    intake: Intake, session: AsyncSession, source: Source, plan: list[Planned], lookups: Lookups
) -> BatchResult:
    from core.mail.intake import BatchResult, _storable

    result = BatchResult()
    actor = intake.actor
    now = utcnow()

    # Contacts first: new tickets need their ids.
    new_contacts: dict[str, str] = {}
    for item in plan:
        if item.opens and item.ticket is not None and item.ticket.contact_id is None:
            assert item.parsed is not None
            new_contacts.setdefault(item.ticket.contact_email, item.parsed.sender.name.strip())
    if new_contacts:
        ids = await _insert(
            session,
            Contact,
            [
                {"email": email, "name": name, "created_at": now, "updated_at": now}
                for email, name in new_contacts.items()
            ],
        )
        for contact_id, email in zip(ids, new_contacts, strict=True):
            lookups.contacts[email] = (contact_id, new_contacts[email])
    named: dict[int, str] = {}
    for item in plan:
        if item.ticket is not None and item.ticket.new:
            contact_id, name = lookups.contacts[item.ticket.contact_email]
            item.ticket.contact_id = contact_id
            sender_name = item.parsed.sender.name.strip() if item.parsed else ""
            if sender_name and not name and contact_id not in named:
                named[contact_id] = sender_name  # `upsert_contact` fills in a missing name
    for contact_id, name in named.items():
        await session.execute(update(Contact).where(Contact.id == contact_id).values(name=name, updated_at=now))

    opening = [item for item in plan if item.opens]
    if opening:
        ticket_ids = await _insert(
            session,
            Ticket,
            [
                {
                    "subject": item.subject,
                    "department_id": item.ticket.department_id,  # type: ignore[union-attr]
                    "contact_id": item.ticket.contact_id,  # type: ignore[union-attr]
                    "status": Status.NEW.value,
                    "priority": 1,
                    "channel": "email",
                    "created_at": item.created_at,
                    "updated_at": item.created_at,
                    "last_customer_message_at": item.created_at,
                    "message_count": 1,
                    "version": 1,
                }
                for item in opening
            ],
        )
        for item, ticket_id in zip(opening, ticket_ids, strict=True):
            assert item.ticket is not None
            item.ticket.id = ticket_id

    raw_ids = await _insert(
        session,
        RawMailRow,
        [
            {
                "source": source.name,
                "department": source.department,
                "uidvalidity": source.uidvalidity,
                "uid": item.mail.uid,
                "dedupe_key": item.key,
                "sha256": item.digest,
                "size": len(item.mail.data),
                "data": item.mail.data,
                "received_at": now,
                "state": item.state,
                "reason": item.reason,
                "ticket_id": item.ticket.id if item.ticket is not None else None,
            }
            for item in plan
        ],
    )

    entries = [(item, raw_id) for item, raw_id in zip(plan, raw_ids, strict=True) if item.state == "imported"]
    if entries:
        message_rows = [_message_row(item, raw_id, _storable) for item, raw_id in entries]
        message_ids = await _insert(session, Message, message_rows)
        for (item, _), message_id in zip(entries, message_ids, strict=True):
            item.message_db_id = message_id
        await _attachments(session, [item for item, _ in entries])

    # Replies: one UPDATE per ticket with its final state, guarded by the version the plan read.
    touched = {id(item.ticket): item.ticket for item in plan if item.ticket is not None and item.ticket.touched}
    await _update_tickets(session, list(touched.values()))
    # Due times as the per-mail path sets them (core.tickets calls sla.refresh on each change).
    stored = {item.ticket.id for item in plan if item.state == "imported" and item.ticket and item.ticket.id}
    await sla.refresh_ids(session, sorted(stored), now)

    deltas: dict[counters.CounterKey, int] = defaultdict(int)
    for item in opening:
        assert item.ticket is not None
        deltas[(item.ticket.department_id, Status.NEW.value, None)] += 1
    for state in touched.values():
        if not state.new:
            assert state.start_key is not None
            deltas[state.start_key] -= 1
            deltas[state.key()] += 1
        else:
            deltas[(state.department_id, Status.NEW.value, None)] -= 1
            deltas[state.key()] += 1
    # In key order (unassigned first): two PostgreSQL writers lock counter rows alike.
    for key, delta in sorted(deltas.items(), key=lambda item: (item[0][0], item[0][1], item[0][2] or 0)):
        await counters.add(session, key, delta)

    events: list[dict[str, Any]] = []
    for item in plan:
        if item.state != "imported" or item.ticket is None:
            continue
        data: dict[str, Any]
        if item.opens:
            assert item.department is not None
            data = {"channel": "email", "department": item.department.name, "contact": item.ticket.contact_email}
            kind = "ticket.created"
        else:
            data = {
                "changes": item.reply_diff,
                "message_id": item.message_db_id,
                "reopened": item.reopened,
                "how": item.how,
                "source": source.name,
            }
            kind = "ticket.customer_replied"
        events.append(
            {
                "at": now,
                "kind": kind,
                "actor_id": actor.id,
                "ticket_id": item.ticket.id,
                "department_id": item.ticket.department_id,
                "prior_department_id": None,
                "data": {"by": actor.handle, **data},
            }
        )
    if events:
        await session.execute(insert(Event), events)
    await intake.mail_received(
        session,
        [
            (item.ticket.id, item.message_db_id, item.opens)
            for item in plan
            if item.state == "imported" and item.ticket is not None and item.ticket.id is not None
            and item.message_db_id is not None
        ],
    )

    for item in plan:
        if item.state == "quarantined":
            result.quarantined += 1
            log.warning("source %s uid %s quarantined: %s", source.name, item.mail.uid, item.reason)
        elif item.state == "dropped":
            result.dropped += 1
            assert item.parsed is not None
            log.warning("source %s: dropped mail %s carrying our loop header", source.name, item.parsed.message_id)
        elif item.state == "duplicate":
            result.duplicates += 1
        else:
            assert item.ticket is not None and item.ticket.id is not None
            result.stored += 1
            if item.opens:
                result.tickets += 1
            else:
                result.replies += 1
            result.refs.append(intake.desk.ref(item.ticket.id))
    return result


_TICKET_UPDATE = (
    update(Ticket)
    .where(Ticket.id == bindparam("b_id"), Ticket.version == bindparam("b_start"))
    .values(
        status=bindparam("b_status"),
        message_count=bindparam("b_message_count"),
        last_customer_message_at=bindparam("b_last_customer_message_at"),
        resolved_at=bindparam("b_resolved_at"),
        closed_at=bindparam("b_closed_at"),
        updated_at=bindparam("b_updated_at"),
        version=bindparam("b_version"),
    )
)


async def _update_tickets(session: AsyncSession, states: list[TicketState]) -> None:
    """Each replied-to ticket to its final state, guarded by the version the plan read."""
    if not states:
        return
    rows = [
        {
            "b_id": state.id,
            "b_start": 1 if state.new else state.start_version,
            "b_status": state.status,
            "b_message_count": state.message_count,
            "b_last_customer_message_at": state.last_customer_message_at,
            "b_resolved_at": state.resolved_at,
            "b_closed_at": state.closed_at,
            "b_updated_at": state.updated_at,
            "b_version": state.version,
        }
        for state in states
    ]
    statement = _TICKET_UPDATE.execution_options(synchronize_session=False)
    connection = await session.connection()
    if connection.dialect.supports_sane_multi_rowcount:  # SQLite: one executemany, and its rowcount adds up
        batches = [rows]
    else:
        batches = [[row] for row in rows]
    for batch in batches:
        done = await connection.execute(statement, batch)
        if done.rowcount != len(batch):
            raise Replan("a ticket changed while the batch was planned")


async def _insert(session: AsyncSession, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert `rows` in one statement batch and return their new ids, in the order of `rows`.

    SQLite cannot promise the order of RETURNING rows from a multi-row
    INSERT, so SQLAlchemy would fall back to a statement per row there.
    Under SQLite's write lock (BEGIN IMMEDIATE: no other writer until
    commit) the ids past the current largest are ours, so they are given
    explicitly and the rows go in one executemany. PostgreSQL sequences must
    not be bypassed: there RETURNING with the rows' own order does it.
    """
    if not rows:
        return []
    # A None bound to a JSON column makes SQLAlchemy compile that row on its own (it means SQL NULL
    # there, not JSON null); rows are sent in groups of one None-pattern so each group is one batch.
    ids: list[int] = [0] * len(rows)
    if (await session.connection()).dialect.name == "sqlite":
        groups: dict[tuple[bool, ...], list[int]] = defaultdict(list)
        for index, row in enumerate(rows):
            groups[tuple(value is None for value in row.values())].append(index)
        largest = (await session.execute(select(func.max(model.id)))).scalar() or 0
        ids = list(range(largest + 1, largest + 1 + len(rows)))
        for indexes in groups.values():
            await session.execute(insert(model), [{**rows[i], "id": ids[i]} for i in indexes])
        return ids
    # Sequences hand out ids in statement order; runs of consecutive rows keep them in the rows' order.
    runs: list[list[int]] = []
    for index, row in enumerate(rows):
        pattern = tuple(value is None for value in row.values())
        if runs and tuple(value is None for value in rows[runs[-1][0]].values()) == pattern:
            runs[-1].append(index)
        else:
            runs.append([index])
    for indexes in runs:
        result = await session.execute(
            insert(model).returning(model.id, sort_by_parameter_order=True), [rows[i] for i in indexes]
        )
        for index, new_id in zip(indexes, result.scalars(), strict=True):
            ids[index] = new_id
    return ids


def _message_row(item: Planned, raw_id: int, storable: Any) -> dict[str, Any]:
    parsed = item.parsed
    assert parsed is not None and item.ticket is not None
    notes = list(item.warnings)
    notes.extend(
        f"attachment {dropped.filename or '(unnamed)'} ({dropped.size:,} bytes) dropped: {dropped.reason}"
        for dropped in parsed.dropped_attachments
    )
    if parsed.defects:
        notes.append("mail had format defects: " + ", ".join(sorted(set(parsed.defects))))
    return {
        "ticket_id": item.ticket.id,
        "kind": MessageKind.CUSTOMER.value,
        "author_agent_id": None,
        "author_contact_id": item.ticket.contact_id,
        "body_text": item.body,
        "body_html": storable(parsed.html),
        "message_id": parsed.message_id,
        "in_reply_to": storable(" ".join(parsed.in_reply_to)) or None,
        "references": storable(" ".join(parsed.references)) or None,
        "delivery_status": None,
        "created_at": item.created_at,
        "subject": storable(parsed.subject),
        "from_address": parsed.sender.address,
        "to_addresses": ", ".join(a.address for a in (*parsed.to, *parsed.cc) if a.address),
        "body_display": storable(parsed.display_text),
        "automatic": sorted(parsed.automatic),
        "warnings": notes or None,
        "raw_mail_id": raw_id,
    }


async def _attachments(session: AsyncSession, items: list[Planned]) -> None:
    rows: list[dict[str, Any]] = []
    blobs: dict[str, bytes] = {}
    for item in items:
        assert item.parsed is not None
        for attachment in item.parsed.attachments:
            digest = hashlib.sha256(attachment.data).hexdigest()
            blobs.setdefault(digest, attachment.data)
            rows.append(
                {
                    "message_id": item.message_db_id,
                    "filename": attachment.filename[:1000],
                    "content_type": attachment.content_type[:255],
                    "size": len(attachment.data),
                    "sha256": digest,
                    "inline": attachment.inline,
                }
            )
    if not rows:
        return
    stored: set[str] = set()
    for chunk in _chunks(sorted(blobs), 500):
        stored.update((await session.execute(select(Blob.sha256).where(Blob.sha256.in_(chunk)))).scalars())
    fresh = [{"sha256": d, "size": len(data), "data": data} for d, data in blobs.items() if d not in stored]
    if fresh:
        await session.execute(insert(Blob), fresh)
    await session.execute(insert(Attachment), rows)

