"""Intake of raw mail: keep it, parse it, thread it onto a ticket or open one — exactly once.

Every source (an IMAP mailbox, `termdesk ingest`) hands batches of raw bytes
to `Intake.ingest_batch`. One transaction per batch stores the raw mails, the
tickets and thread entries made from them, and the mailbox checkpoint, so a
crash at any point loses nothing and imports nothing twice: the caller marks
mail `\\Seen` only after the call returns. A mail's identity is its
Message-ID (or a hash of its bytes when it has none), unique per source.
Whatever cannot be parsed or breaks a limit is kept raw in quarantine with
the reason, and the batch goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import tickets
from core.config import Settings
from core.desk import Desk
from core.errors import DeskError
from core.mail import batch
from core.mail.message import ParsedMail, Unparseable
from core.mail.parse import parse_message
from core.mail.thread import find_thread
from core.policy import Actor
from core.views import Intake as TicketIntake
from storage.models import (
    Attachment,
    Blob,
    Department,
    MailboxCheckpoint,
    Message,
    Ticket,
)
from storage.models import (
    RawMail as RawMailRow,
)
from storage.types import MessageKind, Status, utcnow

log = logging.getLogger("termdesk.mail.intake")

# Two workers importing the same mail race on the unique (source, identity)
# index; the loser re-runs its batch and then sees duplicates.
BATCH_ATTEMPTS = 3


@dataclass(frozen=True)
class RawMail:
    data: bytes
    uid: int | None = None  # IMAP UID, when the mail comes from a mailbox


@dataclass(frozen=True)
class Source:
    """Where a batch comes from: a configured mailbox, or an import (`ingest`)."""

    name: str  # the [[mailbox]] name, or "import" for `termdesk ingest`
    department: str  # default department for new tickets
    uidvalidity: int | None = None  # IMAP only


@dataclass(frozen=True)
class Checkpoint:
    uidvalidity: int
    last_uid: int


@dataclass
class BatchContext:
    """What one batch looks up once instead of once per mail."""

    departments: dict[str, Department]  # by lower-cased address
    known_keys: set[str]  # dedupe keys of this source that exist (or were added in this batch)


@dataclass(frozen=True)
class Prepared:
    """A batch hashed and parsed, ready to commit: (mail, sha256, parse outcome) and the dedupe keys."""

    mails: list[tuple[RawMail, str, ParsedMail | Unparseable]]
    keys: list[str]


@dataclass
class BatchResult:
    stored: int = 0  # raw messages newly kept
    tickets: int = 0  # new tickets opened
    replies: int = 0  # customer messages added to existing tickets
    duplicates: int = 0  # already had it (same source + identity)
    quarantined: int = 0
    dropped: int = 0  # our own loop header came back
    refs: list[str] = field(default_factory=list)

    def add(self, other: BatchResult) -> None:
        for name in ("stored", "tickets", "replies", "duplicates", "quarantined", "dropped"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.refs.extend(other.refs)


class Intake:
    def __init__(self, desk: Desk, settings: Settings | None = None) -> None:
        self.desk = desk
        self.settings = settings or desk.settings
        self.limits = self.settings.mail
        self.actor = Actor.system()

    # -- checkpoints --------------------------------------------------------

    async def checkpoint(self, mailbox: str) -> Checkpoint | None:
        """The last committed (uidvalidity, last_uid) of a mailbox, or None."""
        async with self.desk.db.reading() as session:
            row = await session.get(MailboxCheckpoint, mailbox)
            return Checkpoint(row.uidvalidity, row.last_uid) if row else None

    async def reset_checkpoint(self, mailbox: str, uidvalidity: int) -> None:
        """UIDVALIDITY changed: forget the last UID so the mailbox is rescanned (dedupe prevents duplicates)."""
        async with self.desk.db.writing() as session:
            row = await session.get(MailboxCheckpoint, mailbox)
            if row is None:
                session.add(MailboxCheckpoint(source=mailbox, uidvalidity=uidvalidity, last_uid=0))
            else:
                log.warning(
                    "mailbox %s: UIDVALIDITY changed from %s to %s; rescanning", mailbox, row.uidvalidity, uidvalidity
                )
                row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, 0, utcnow()

    # -- the batch ----------------------------------------------------------

    async def ingest_batch(self, source: Source, mails: Sequence[RawMail]) -> BatchResult:
        """Store, parse and thread a batch in one transaction, with the mailbox checkpoint.

        Returns after commit: only then may the caller set \\Seen. Safe to call
        again with the same mails (they count as duplicates).
        """
        return await self.commit(source, self.prepare(mails))

    async def ingest_stream(
        self, source: Source, batches: Iterable[Sequence[RawMail]]
    ) -> AsyncIterator[tuple[int, BatchResult]]:
        """`ingest_batch` over many batches, parsing the next batch while the current one commits.

        Parsing is Python work and SQLite's (full-text indexing above all) runs
        with the GIL released, so on two cores the two overlap. Batches still
        commit one after the other, in order. Yields (mails in the batch, result).
        """
        parsing: asyncio.Task[Prepared] | None = None
        try:
            for mails in batches:
                upcoming = asyncio.create_task(asyncio.to_thread(self.prepare, list(mails)))
                if parsing is not None:
                    prepared = await parsing
                    parsing = None
                    yield len(prepared.mails), await self.commit(source, prepared)
                parsing = upcoming
            if parsing is not None:
                prepared = await parsing
                parsing = None
                yield len(prepared.mails), await self.commit(source, prepared)
        finally:
            if parsing is not None:  # the consumer stopped early: let the parse finish, keep nothing
                await asyncio.gather(parsing, return_exceptions=True)

    def prepare(self, mails: Sequence[RawMail]) -> Prepared:
        """Hash and parse a batch: pure CPU work, done outside the write transaction (and thread-safe)."""
        parsed = [(mail, _digest(mail.data), self.parse(mail.data)) for mail in mails]
        keys = [_key(item) if isinstance(item, ParsedMail) else f"sha256:{digest}" for _, digest, item in parsed]
        return Prepared(parsed, keys)

    async def commit(self, source: Source, ready: Prepared) -> BatchResult:
        """Write a prepared batch in one transaction, with the mailbox checkpoint; see `ingest_batch`."""
        prepared, keys = ready.mails, ready.keys
        mails = [mail for mail, _, _ in prepared]
        # The set-based path (core/mail/batch.py) takes ordinary batches in a few statements; the
        # per-mail path knows every case. Savepoints cost two statements a mail; take them only
        # when a plain run hit a mail the domain refuses.
        set_based, careful = True, False
        for attempt in range(1, BATCH_ATTEMPTS + 3):
            try:
                async with self.desk.db.writing() as session:
                    context = await self.context(session, source.name, keys)
                    result = None
                    if set_based:
                        result = await batch.import_batch(self, session, source, prepared, keys, context)
                    if result is None:
                        result = BatchResult()
                        for mail, digest, parsed in prepared:
                            if careful:
                                result.add(
                                    await self._import_or_quarantine(session, source, mail, digest, parsed, context)
                                )
                            else:
                                result.add(await self.import_mail(session, source, mail, digest, parsed, context))
                    uids = [mail.uid for mail in mails if mail.uid is not None]
                    if source.uidvalidity is not None and uids:
                        await _advance_checkpoint(session, source.name, source.uidvalidity, max(uids))
                return result
            except IntegrityError:
                if attempt >= BATCH_ATTEMPTS:
                    raise
                log.info("source %s: another worker imported part of this batch; re-running it", source.name)
            except batch.Replan as reason:
                log.info("source %s: %s; importing the batch mail by mail", source.name, reason)
                set_based = False
            except (DeskError, DBAPIError):
                if careful:
                    raise
                set_based, careful = False, True
        raise AssertionError("unreachable")

    async def context(self, session: AsyncSession, source: str, keys: Sequence[str]) -> BatchContext:
        found = await session.execute(
            select(RawMailRow.dedupe_key).where(RawMailRow.source == source, RawMailRow.dedupe_key.in_(set(keys)))
        )
        return BatchContext(departments=await department_addresses(session), known_keys=set(found.scalars()))

    def parse(self, data: bytes, *, relaxed: bool = False) -> ParsedMail | Unparseable:
        """Parse within the configured limits; `relaxed` (for release) lifts the size and MIME limits."""
        limits = self.limits
        if relaxed:
            limits = limits.model_copy(
                update={
                    "max_message_bytes": max(len(data), limits.max_message_bytes),
                    "max_mime_depth": 100,
                    "max_mime_parts": 100_000,
                }
            )
        if len(data) > limits.max_message_bytes:
            return Unparseable(
                f"message of {len(data):,} bytes is over the limit of {limits.max_message_bytes:,} "
                "([mail] max_message_bytes)"
            )
        try:
            return parse_message(data, limits, loop_header_value=limits.loop_header_value)
        except Unparseable as problem:
            return problem
        except Exception as error:  # noqa: BLE001 - a parser bug must quarantine one mail, not stop the sync
            log.exception("parser failed on a message; quarantining it")
            return Unparseable(f"parser error: {type(error).__name__}: {error}")

    async def _import_or_quarantine(
        self,
        session: AsyncSession,
        source: Source,
        mail: RawMail,
        digest: str,
        parsed: ParsedMail | Unparseable,
        context: BatchContext,
    ) -> BatchResult:
        """One mail in its own savepoint: whatever the domain refuses is quarantined, the batch goes on."""
        try:
            async with session.begin_nested():
                return await self.import_mail(session, source, mail, digest, parsed, context)
        except IntegrityError:
            raise  # another worker took this mail: the batch is re-run (see ingest_batch)
        except (DeskError, DBAPIError) as problem:
            reason = problem.message if isinstance(problem, DeskError) else f"database refused it: {problem.orig}"
            log.warning("source %s uid %s quarantined: %s", source.name, mail.uid, reason)
            return await self.import_mail(
                session, source, mail, digest, Unparseable(f"cannot import: {reason}"), context
            )

    async def import_mail(
        self,
        session: AsyncSession,
        source: Source,
        mail: RawMail,
        digest: str,
        parsed: ParsedMail | Unparseable,
        context: BatchContext,
    ) -> BatchResult:
        result = BatchResult()
        if isinstance(parsed, Unparseable):
            raw_key = f"sha256:{digest}"
            if raw_key in context.known_keys and await _raw_exists(session, source.name, raw_key):
                result.duplicates += 1
                return result
            context.known_keys.add(raw_key)
            session.add(self._raw(source, mail, raw_key, digest, "quarantined", parsed.reason))
            result.quarantined += 1
            log.warning("source %s uid %s quarantined: %s", source.name, mail.uid, parsed.reason)
            return result

        key, warnings = await self._identity(session, source.name, parsed, digest, context.known_keys)
        if key is None:
            result.duplicates += 1
            return result
        context.known_keys.add(key)
        if "our-loop" in parsed.automatic:
            session.add(self._raw(source, mail, key, digest, "dropped", "our own loop header came back"))
            result.dropped += 1
            log.warning("source %s: dropped mail %s carrying our loop header", source.name, parsed.message_id)
            return result
        if not parsed.sender.address:
            reason = "no usable From address"
            session.add(self._raw(source, mail, key, digest, "quarantined", reason))
            result.quarantined += 1
            return result

        match = await find_thread(session, parsed, self.desk.prefix)
        ticket = match.ticket if match else None
        if ticket is not None and await _already_on_ticket(session, ticket.id, parsed.message_id):
            # The same mail reached us through a second source (e.g. sent to two of our addresses).
            duplicate = self._raw(source, mail, key, digest, "duplicate", f"already on {self.desk.ref(ticket.id)}")
            duplicate.ticket_id = ticket.id
            session.add(duplicate)
            result.duplicates += 1
            return result
        if ticket is not None and ticket.status in (Status.CLOSED, Status.SPAM):
            warnings.append(f"follow-up to {self.desk.ref(ticket.id)}, which was {ticket.status}")
            ticket = None

        raw = self._raw(source, mail, key, digest, "imported", None)
        session.add(raw)
        await session.flush()
        result.stored += 1
        message = self._message(parsed, raw.id, warnings)
        if ticket is None:
            department = _department_for(parsed, context.departments, source.department)
            ticket, _ = await tickets.create_ticket(
                session,
                self.actor,
                TicketIntake(
                    department=department if isinstance(department, str) else department.name,
                    contact_email=parsed.sender.address,
                    contact_name=parsed.sender.name,
                    subject=_ticket_subject(parsed.subject),
                    body=parsed.text,
                    body_html=parsed.html,
                    message_id=parsed.message_id,
                    channel="email",
                ),
                message,
                None if isinstance(department, str) else department,
            )
            await session.flush()
            await self._attachments(session, message.id, parsed)
            await self.desk.outbox.mail_received(session, ticket, message, new_ticket=True)
            result.tickets += 1
        else:
            await tickets.add_customer_message(
                session, self.actor, ticket, message, data={"how": match.how if match else "", "source": source.name}
            )
            await self._attachments(session, message.id, parsed)
            await self.desk.outbox.mail_received(session, ticket, message, new_ticket=False)
            result.replies += 1
        raw.ticket_id = ticket.id
        result.refs.append(self.desk.ref(ticket.id))
        return result

    async def mail_received(self, session: AsyncSession, stored: Sequence[tuple[int, int, bool]]) -> None:
        """Tell the outbox about (ticket id, message id, new ticket?) the set-based path stored.

        Acknowledgements and notifications are queued in the same transaction; without
        an outbox (no `[smtp]`) nothing is loaded.
        """
        if isinstance(self.desk.outbox, tickets.NoOutbox):
            return
        for ticket_id, message_id, new_ticket in stored:
            ticket = await session.get(Ticket, ticket_id)
            message = await session.get(Message, message_id)
            assert ticket is not None and message is not None, "stored in this transaction"
            await self.desk.outbox.mail_received(session, ticket, message, new_ticket=new_ticket)

    async def _identity(
        self, session: AsyncSession, source: str, parsed: ParsedMail, digest: str, known: set[str]
    ) -> tuple[str | None, list[str]]:
        """The dedupe key for this mail, or None when we already have it; plus warnings."""
        key = _key(parsed)
        if key not in known:
            return key, []
        existing = (
            await session.execute(select(RawMailRow).where(RawMailRow.source == source, RawMailRow.dedupe_key == key))
        ).scalar_one_or_none()
        if existing is None:
            return key, []
        if existing.sha256 == digest or await _same_content(session, existing.id, parsed):
            return None, []
        # Same Message-ID, different content: never silently dropped.
        variant = f"{key}#{digest[:16]}"
        if await _raw_exists(session, source, variant):
            return None, []
        return variant, ["another mail with the same Message-ID but different content arrived earlier"]

    def _raw(self, source: Source, mail: RawMail, key: str, digest: str, state: str, reason: str | None) -> RawMailRow:
        return RawMailRow(
            source=source.name,
            department=source.department,
            uidvalidity=source.uidvalidity,
            uid=mail.uid,
            dedupe_key=key,
            sha256=digest,
            size=len(mail.data),
            data=mail.data,
            state=state,
            reason=reason,
        )

    def _message(self, parsed: ParsedMail, raw_id: int, warnings: list[str]) -> Message:
        notes = list(warnings)
        notes.extend(
            f"attachment {item.filename or '(unnamed)'} ({item.size:,} bytes) dropped: {item.reason}"
            for item in parsed.dropped_attachments
        )
        if parsed.defects:
            notes.append("mail had format defects: " + ", ".join(sorted(set(parsed.defects))))
        return Message(
            kind=MessageKind.CUSTOMER.value,
            body_text=tickets.check_text("body", parsed.text, tickets.MAX_BODY),
            body_html=_storable(parsed.html),
            message_id=parsed.message_id,
            in_reply_to=_storable(" ".join(parsed.in_reply_to)) or None,
            references=_storable(" ".join(parsed.references)) or None,
            subject=_storable(parsed.subject),
            from_address=parsed.sender.address,
            to_addresses=", ".join(address.address for address in (*parsed.to, *parsed.cc) if address.address),
            body_display=_storable(parsed.display_text),
            automatic=sorted(parsed.automatic),
            warnings=notes or None,
            raw_mail_id=raw_id,
            created_at=utcnow(),
        )

    async def _attachments(self, session: AsyncSession, message_id: int, parsed: ParsedMail) -> None:
        for item in parsed.attachments:
            digest = hashlib.sha256(item.data).hexdigest()
            if await session.get(Blob, digest) is None:
                session.add(Blob(sha256=digest, size=len(item.data), data=item.data))
                await session.flush()
            session.add(
                Attachment(
                    message_id=message_id,
                    filename=item.filename[:1000],
                    content_type=item.content_type[:255],
                    size=len(item.data),
                    sha256=digest,
                    inline=item.inline,
                )
            )


def _storable(text: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL; the raw mail keeps the original bytes."""
    return None if text is None else text.replace("\x00", "\ufffd")


def _ticket_subject(subject: str) -> str:
    """The ticket's one-line subject; the message keeps the mail's own, however long."""
    line = " ".join(subject.split())
    if len(line) > tickets.MAX_SUBJECT:
        line = line[: tickets.MAX_SUBJECT - 1] + "…"
    return line or "(no subject)"


def _key(parsed: ParsedMail) -> str:
    return parsed.message_id[:900]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def department_addresses(session: AsyncSession) -> dict[str, Department]:
    rows = await session.execute(select(Department).where(Department.active.is_(True)))
    return {department.email.strip().lower(): department for department in rows.scalars()}


def _department_for(parsed: ParsedMail, departments: dict[str, Department], default: str) -> Department | str:
    """A mail addressed to a department's own address lands there, whichever mailbox it came through.

    When it names several of ours, the source's own department wins, so a mail
    to two departments' mailboxes makes one ticket in each.
    """
    named = [departments[a.address] for a in (*parsed.to, *parsed.cc) if a.address in departments]
    wanted = default.strip().lower()
    for department in named:
        if department.name.lower() == wanted or department.slug == wanted:
            return department
    if named:
        return named[0]
    # The default by name; a name no active department has is left for create_ticket to refuse.
    return next((d for d in departments.values() if d.name.lower() == wanted or d.slug == wanted), default)


async def _raw_exists(session: AsyncSession, source: str, key: str) -> bool:
    found = await session.execute(
        select(RawMailRow.id).where(RawMailRow.source == source, RawMailRow.dedupe_key == key).limit(1)
    )
    return found.first() is not None


async def _same_content(session: AsyncSession, raw_id: int, parsed: ParsedMail) -> bool:
    """Delivered twice with different transport headers, but the same letter."""
    found = await session.execute(
        select(Message.subject, Message.body_text).where(Message.raw_mail_id == raw_id).limit(1)
    )
    row = found.first()
    return row is not None and row.subject == parsed.subject and row.body_text == parsed.text


async def _already_on_ticket(session: AsyncSession, ticket_id: int, message_id: str) -> bool:
    found = await session.execute(
        select(Message.id).where(Message.ticket_id == ticket_id, Message.message_id == message_id).limit(1)
    )
    return found.first() is not None


async def _advance_checkpoint(session: AsyncSession, source: str, uidvalidity: int, uid: int) -> None:
    row = await session.get(MailboxCheckpoint, source)
    if row is None:
        session.add(MailboxCheckpoint(source=source, uidvalidity=uidvalidity, last_uid=uid))
    elif row.uidvalidity != uidvalidity:
        row.uidvalidity, row.last_uid, row.updated_at = uidvalidity, uid, utcnow()
    elif uid > row.last_uid:
        row.last_uid, row.updated_at = uid, utcnow()
