"""The outbox worker: delivers queued mail over SMTP (aiosmtplib), one reused connection, exactly once.

A worker claims a batch of due rows in one short transaction (state
`sending`, a claim token and a lease; on PostgreSQL `FOR UPDATE SKIP LOCKED`,
on SQLite the single writer lock, so two workers never take the same row),
sends them one after another over one SMTP connection, and records each
outcome as soon as the server answers:

- 250: `sent`.
- 4xx, a dropped or refused connection, a timeout: `queued` again with
  backoff (`[smtp] retry_delays_seconds`: minutes, then hourly) until
  `give_up_hours` have passed; a timeout after DATA may mean the server took
  the mail, so the retry carries the same bytes and the same Message-ID.
- 5xx: `failed` for good; the reply's thread entry is marked failed and a
  `mail.failed` event lands on the ticket.

A worker that dies leaves its rows `sending`; when the lease runs out any
worker claims them again (same Message-ID). On a graceful stop the message in
flight is finished and the rest of the batch handed back at once.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import cast

import aiosmtplib
from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import SmtpSettings
from core.errors import ConfigError
from core.mail.outbox import record_failure
from storage.database import Database
from storage.models import Message
from storage.outbox import OutboxMail
from storage.types import utcnow

log = logging.getLogger("termdesk.mail.sender")

# Declarative `__table__` is typed FromClause; these models are mapped to Tables.
OUTBOX = cast(Table, OutboxMail.__table__)
MESSAGES = cast(Table, Message.__table__)


@dataclass(frozen=True)
class Claimed:
    id: int
    sender: str
    recipient: str
    data: bytes
    attempts: int
    created_at: datetime
    lease_until: datetime


@dataclass(frozen=True)
class Outcome:
    state: str  # sent | retry | failed
    detail: str = ""


@dataclass
class FlushCounts:
    sent: int = 0
    deferred: int = 0
    failed: int = 0
    released: int = 0  # handed back unsent on a stop
    details: list[str] = field(default_factory=list)

    @property
    def attempted(self) -> int:
        return self.sent + self.deferred + self.failed


class SmtpConnection:
    """One SMTP session, opened on first use and reused for every message until it breaks."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client: aiosmtplib.SMTP | None = None
        self.used = 0  # messages sent on the current connection

    async def open(self) -> aiosmtplib.SMTP:
        if self.client is not None and self.client.is_connected:
            return self.client
        await self.close()
        settings = self.settings
        if not settings.configured:
            raise ConfigError(
                "No SMTP server is configured; add an [smtp] section with host (see config.example.toml)."
            )
        password = settings.password()
        client = aiosmtplib.SMTP(
            hostname=settings.host,
            port=settings.effective_port,
            use_tls=settings.security == "tls",
            start_tls=True if settings.security == "starttls" else False,
            timeout=settings.timeout_seconds,
            cert_bundle=str(settings.ca_file.expanduser()) if settings.ca_file else None,
        )
        await client.connect()
        self.client = client  # from here on close() hangs up, also when the login fails
        self.used = 0
        if settings.username:
            await client.login(settings.username, password or "")
        return client

    async def send(self, item: Claimed) -> Outcome:
        """Deliver one message; never raises for a delivery problem, says what happened instead."""
        for attempt in (1, 2):
            reused = self.client is not None and self.used > 0
            try:
                client = await self.open()
            except ConfigError:
                raise
            except aiosmtplib.SMTPAuthenticationError as error:
                await self.close()
                # Our credentials, not this message: keep it queued until an admin fixes the config.
                return Outcome("retry", f"SMTP login refused: {error.code} {error.message}")
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                await self.close()
                return Outcome("retry", f"cannot connect to {self.settings.host}: {_describe(error)}")
            try:
                errors, _ = await client.sendmail(item.sender, [item.recipient], item.data)
            except aiosmtplib.SMTPRecipientsRefused as error:
                refused = error.recipients[0] if error.recipients else None
                code = refused.code if refused else 0
                return _by_code(code, f"{code} {refused.message if refused else ''}".strip())
            except aiosmtplib.SMTPServerDisconnected as error:
                await self.close()
                if reused and attempt == 1:
                    # A server may close an idle connection; the first message on it finds out.
                    continue
                return Outcome("retry", f"connection lost: {_describe(error)}")
            except aiosmtplib.SMTPTimeoutError as error:
                await self.close()
                return Outcome("retry", f"timed out, maybe sent (retried with the same Message-ID): {_describe(error)}")
            except aiosmtplib.SMTPResponseException as error:
                if error.code == 421:
                    await self.close()
                return _by_code(error.code, f"{error.code} {error.message}")
            except aiosmtplib.SMTPNotSupported as error:
                return Outcome("failed", f"the server cannot take this message: {error}")
            except ValueError as error:
                # aiosmtplib refuses addresses with control characters before sending anything.
                return Outcome("failed", f"unusable address: {error}")
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as error:
                await self.close()
                return Outcome("retry", _describe(error))
            if errors:
                code, message = next(iter(errors.values()))
                return _by_code(code, f"{code} {message}")
            self.used += 1
            return Outcome("sent")
        raise AssertionError("unreachable")

    async def close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            if client.is_connected:
                await asyncio.wait_for(client.quit(), 5)
        except (aiosmtplib.SMTPException, OSError, TimeoutError):
            client.close()


def _by_code(code: int, detail: str) -> Outcome:
    if 500 <= code < 600:
        return Outcome("failed", detail)
    return Outcome("retry", detail)


def _describe(error: BaseException) -> str:
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class OutboxWorker:
    """Claims and sends due outbox rows; `run` forever, or `flush` what is there and return."""

    def __init__(
        self,
        db: Database,
        settings: SmtpSettings,
        *,
        clock: Callable[[], datetime] = utcnow,
        connection: SmtpConnection | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.connection = connection or SmtpConnection(settings)
        self.token = uuid.uuid4().hex

    # -- claiming and recording --------------------------------------------------

    async def claim(self, limit: int, *, ignore_backoff: bool = False) -> list[Claimed]:
        now = self.clock()
        due = OutboxMail.state == "queued"
        if not ignore_backoff:
            due = and_(due, OutboxMail.next_attempt_at <= now)
        expired = and_(OutboxMail.state == "sending", OutboxMail.claimed_until < now)
        query = select(OutboxMail.id).where(or_(due, expired)).order_by(OutboxMail.id).limit(limit)
        if not self.db.is_sqlite:
            # Concurrent workers skip each other's rows instead of queueing on their locks.
            query = query.with_for_update(skip_locked=True)
        lease = now + timedelta(seconds=self.settings.claim_seconds)
        async with self.db.writing() as session:
            ids = list((await session.execute(query)).scalars())
            if not ids:
                return []
            await session.execute(
                update(OutboxMail)
                .where(OutboxMail.id.in_(ids))
                .values(
                    state="sending",
                    claim_token=self.token,
                    claimed_until=lease,
                    attempts=OutboxMail.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            rows = await session.execute(
                select(
                    OutboxMail.id,
                    OutboxMail.sender,
                    OutboxMail.recipient,
                    OutboxMail.data,
                    OutboxMail.attempts,
                    OutboxMail.created_at,
                ).where(OutboxMail.id.in_(ids)).order_by(OutboxMail.id)
            )
            return [Claimed(*row, lease_until=lease) for row in rows]

    async def record(self, item: Claimed, outcome: Outcome) -> str:
        """Store what happened to one claimed row; returns the row's new state."""
        return (await self.record_many([(item, outcome)]))[0]

    async def record_many(self, results: list[tuple[Claimed, Outcome]]) -> list[str]:
        """Store the outcomes of several claimed rows in one transaction; returns each row's new state.

        Deliveries (the common case) are two statements for the whole group; deferrals and
        failures go row by row. A row whose claim we no longer hold (our lease ran out and
        another worker took it) is left alone: that worker's outcome is the one that counts.
        """
        now = self.clock()
        states: dict[int, str] = {}
        async with self.db.writing() as session:
            sent = [item.id for item, outcome in results if outcome.state == "sent"]
            if sent:
                # Core statements on the tables: the ORM's bulk-update machinery costs more CPU
                # than the SMTP conversation, and this runs once per group of deliveries.
                done = (
                    await session.execute(
                        OUTBOX.update()
                        .where(OUTBOX.c.id.in_(sent), OUTBOX.c.claim_token == self.token, OUTBOX.c.state == "sending")
                        .values(state="sent", sent_at=now, last_error=None, claim_token=None, claimed_until=None)
                        .returning(OUTBOX.c.id, OUTBOX.c.entry_id)
                    )
                ).all()
                entries = [entry_id for _, entry_id in done if entry_id is not None]
                if entries:
                    await session.execute(
                        MESSAGES.update().where(MESSAGES.c.id.in_(entries)).values(delivery_status="sent")
                    )
                states.update((row_id, "sent") for row_id, _ in done)
            for item, outcome in results:
                if outcome.state != "sent":
                    states[item.id] = await self._record_problem(session, item, outcome, now)
        lost = [item.id for item, _ in results if item.id not in states]
        if lost:
            log.warning("outbox %s: claim lost before the result was stored", ", ".join(map(str, lost)))
        return [states.get(item.id, "lost") for item, _ in results]

    async def _record_problem(self, session: AsyncSession, item: Claimed, outcome: Outcome, now: datetime) -> str:
        row = await session.get(OutboxMail, item.id)
        if row is None or row.claim_token != self.token or row.state != "sending":
            return row.state if row is not None else "gone"
        row.claim_token = None
        row.claimed_until = None
        if outcome.state == "retry" and now - row.created_at >= timedelta(hours=self.settings.give_up_hours):
            outcome = Outcome("failed", f"gave up after {row.attempts} attempts: {outcome.detail}")
        if outcome.state == "retry":
            row.state = "queued"
            row.next_attempt_at = now + timedelta(seconds=self.delay(row.attempts))
            row.last_error = outcome.detail
            log.info("outbox %s to %s deferred: %s", row.id, row.recipient, outcome.detail)
        else:
            row.state, row.last_error = "failed", outcome.detail
            log.warning("outbox %s to %s failed: %s", row.id, row.recipient, outcome.detail)
            await session.flush()
            await record_failure(session, row, outcome.detail)
        return row.state

    async def renew(self, items: list[Claimed]) -> list[Claimed]:
        """Extend the lease of rows we still hold; returns them with the new lease."""
        lease = self.clock() + timedelta(seconds=self.settings.claim_seconds)
        async with self.db.writing() as session:
            await session.execute(
                OUTBOX.update()
                .where(OUTBOX.c.id.in_([item.id for item in items]), OUTBOX.c.claim_token == self.token,
                       OUTBOX.c.state == "sending")
                .values(claimed_until=lease)
            )
        return [replace(item, lease_until=lease) for item in items]

    async def release(self, items: list[Claimed]) -> int:
        """Hand claimed rows back unsent (a stop): queued again, the claim's attempt not counted."""
        if not items:
            return 0
        async with self.db.writing() as session:
            result = await session.execute(
                update(OutboxMail)
                .where(
                    OutboxMail.id.in_([item.id for item in items]),
                    OutboxMail.claim_token == self.token,
                    OutboxMail.state == "sending",
                )
                .values(state="queued", claim_token=None, claimed_until=None, attempts=OutboxMail.attempts - 1)
                .execution_options(synchronize_session=False)
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]

    def delay(self, attempts: int) -> float:
        delays = self.settings.retry_delays_seconds
        return delays[min(max(attempts, 1), len(delays)) - 1]

    # -- sending ------------------------------------------------------------------

    async def send_batch(self, items: list[Claimed], counts: FlushCounts, stop: asyncio.Event | None) -> None:
        """Send the claimed rows in order over one connection; outcomes are stored while the next mail goes out.

        Group commit: outcomes are stored together once `[smtp] record_seconds` have passed
        since the oldest unstored one (or a batch is full), in a transaction that runs while the
        following mails are sent, so the database never holds up the SMTP conversation. A
        crash can lose at most that window of outcomes; those mails are offered again after the
        lease with the same Message-ID (which receivers use to drop duplicates).
        """
        items = list(items)  # leases are renewed in place
        pending: list[tuple[Claimed, Outcome]] = []
        oldest = time.monotonic()
        writer: asyncio.Task[list[str]] | None = None
        writing: list[tuple[Claimed, Outcome]] = []

        async def collect() -> None:
            nonlocal writer
            if writer is not None:
                task, writer = writer, None
                self._count(counts, writing, await task)

        try:
            for index, item in enumerate(items):
                if stop is not None and stop.is_set():
                    counts.released += await self.release(items[index:])
                    break
                if (item.lease_until - self.clock()).total_seconds() < 2 * self.settings.timeout_seconds:
                    # A slow server must not let our lease run out mid-batch: another worker
                    # would take the rest (and the sent ones whose outcome is not stored yet)
                    # and send them too.
                    items[:] = await self.renew(items)
                    item = items[index]
                try:
                    outcome = await self.connection.send(item)
                except BaseException:
                    # Cancelled or a config error: what we have not sent goes back to the queue now;
                    # the message in flight keeps its claim and is retried after the lease (maybe sent).
                    await asyncio.shield(self.release(items[index + 1 :]))
                    raise
                if not pending:
                    oldest = time.monotonic()
                pending.append((item, outcome))
                waited = time.monotonic() - oldest
                due = len(pending) >= self.settings.batch_size or waited >= self.settings.record_seconds
                if due and (writer is None or writer.done()):
                    await collect()
                    writing, pending = pending, []
                    writer = asyncio.create_task(self.record_many(writing))
        finally:
            # Store every outcome we have, even when cancelled: an unrecorded delivery would be sent again.
            await asyncio.shield(self._finish(collect, pending, counts))

    async def _finish(self, collect: Callable[[], Awaitable[None]], pending: list[tuple[Claimed, Outcome]],
                      counts: FlushCounts) -> None:
        await collect()
        if pending:
            self._count(counts, pending, await self.record_many(pending))

    @staticmethod
    def _count(counts: FlushCounts, results: list[tuple[Claimed, Outcome]], states: list[str]) -> None:
        for (item, outcome), state in zip(results, states, strict=True):
            if state == "sent":
                counts.sent += 1
            elif state == "failed":
                counts.failed += 1
                counts.details.append(f"outbox {item.id} to {item.recipient}: {outcome.detail}")
            elif state == "queued":
                counts.deferred += 1
                counts.details.append(f"outbox {item.id} to {item.recipient}: {outcome.detail}")

    async def flush(self, *, stop: asyncio.Event | None = None, ignore_backoff: bool = False) -> FlushCounts:
        """Send everything due now (with `ignore_backoff`, everything queued), one attempt each, then return."""
        counts = FlushCounts()
        try:
            await self._drain(counts, stop, ignore_backoff=ignore_backoff, once_each=True)
        finally:
            await self.connection.close()
        return counts

    async def _drain(
        self, counts: FlushCounts, stop: asyncio.Event | None, *, ignore_backoff: bool, once_each: bool
    ) -> None:
        """Claim and send batches until none is due; the next batch is claimed while this one is sent.

        With `once_each`, a row deferred during this drain is not tried again in it (tiny
        retry delays would otherwise keep a flush going for ever).
        """
        seen: set[int] = set()

        def claim_next() -> asyncio.Task[list[Claimed]]:
            return asyncio.create_task(self.claim(self.settings.batch_size, ignore_backoff=ignore_backoff))

        ahead: asyncio.Task[list[Claimed]] | None = claim_next()
        try:
            while ahead is not None:
                items = await ahead
                ahead = None
                if once_each:
                    await self.release([item for item in items if item.id in seen])
                    items = [item for item in items if item.id not in seen]
                    seen.update(item.id for item in items)
                if not items:
                    break
                if stop is not None and stop.is_set():
                    counts.released += await self.release(items)
                    break
                # A full batch suggests more are waiting: claim them while this one goes out.
                ahead = claim_next() if len(items) == self.settings.batch_size else None
                await self.send_batch(items, counts, stop)
                if ahead is None and (stop is None or not stop.is_set()):
                    ahead = claim_next()
        finally:
            if ahead is not None:
                # Claimed ahead but never sent: hand the rows back at once.
                leftover = await asyncio.shield(ahead)
                await asyncio.shield(self.release(leftover))

    async def next_due_in(self) -> float | None:
        """Seconds until the next queued row is due (0 when one is due now), None when nothing waits."""
        async with self.db.reading() as session:
            due = (
                await session.execute(
                    select(OutboxMail.next_attempt_at).where(OutboxMail.state == "queued")
                    .order_by(OutboxMail.next_attempt_at).limit(1)
                )
            ).scalar_one_or_none()
            lease = (
                await session.execute(
                    select(OutboxMail.claimed_until).where(OutboxMail.state == "sending")
                    .order_by(OutboxMail.claimed_until).limit(1)
                )
            ).scalar_one_or_none()
        moments = [moment for moment in (due, lease) if moment is not None]
        if not moments:
            return None
        return max(0.0, (min(moments) - self.clock()).total_seconds())

    async def run(self, stop: asyncio.Event, wake: asyncio.Event | None = None) -> None:
        """Deliver until `stop` is set; a failure of the database or config is logged and retried."""
        failures = 0
        while not stop.is_set():
            try:
                counts = await self._pass(stop)
                failures = 0
                if counts.attempted:
                    continue
                wait = await self.next_due_in()
                timeout = self.settings.poll_seconds if wait is None else min(wait, self.settings.poll_seconds)
            except Exception as error:  # noqa: BLE001 - the worker must outlive a database or config hiccup
                failures += 1
                timeout = min(300.0, 2.0 ** min(failures, 8))
                log.error("outbox worker: %s; retrying in %.0f s", _describe(error), timeout, exc_info=error)
            await self.connection.close()  # do not hold an idle SMTP session open
            await _wait(stop, wake, timeout)
        await self.connection.close()

    async def _pass(self, stop: asyncio.Event) -> FlushCounts:
        counts = FlushCounts()
        await self._drain(counts, stop, ignore_backoff=False, once_each=False)
        return counts


async def _wait(stop: asyncio.Event, wake: asyncio.Event | None, timeout: float) -> None:
    waiters = [asyncio.create_task(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.create_task(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=max(timeout, 0.01), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    if wake is not None:
        wake.clear()


async def _entry_status(session: AsyncSession, row: OutboxMail, status: str) -> None:
    if row.entry_id is None:
        return
    await session.execute(
        update(Message).where(Message.id == row.entry_id).values(delivery_status=status)
        .execution_options(synchronize_session=False)
    )
