"""IMAP sync: pull new mail from each configured mailbox into the intake, exactly once.

This module owns the IMAP conversation — connect (TLS, STARTTLS or plain),
login, SELECT, `UID SEARCH` / `UID FETCH` in small batches, `\\Seen` after the
database commit, IDLE or polling, reconnect with backoff. What a mail becomes
(ticket, reply, quarantine) is `core.mail.intake`'s business; the intake also
owns the (UIDVALIDITY, last UID) checkpoint, committed with each batch.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import ssl
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

from aioimaplib.aioimaplib import IMAP4, STOP_WAIT_SERVER_PUSH, Command, Response

from core.config import MailboxSettings
from core.errors import ConfigError, DeskError
from core.mail.intake import BatchResult, Intake, RawMail, Source

log = logging.getLogger("termdesk.mail.imap")

T = TypeVar("T")

# Servers may drop an IDLE after 30 minutes (RFC 2177 asks clients to renew
# before 29); renewing at 25 leaves room for slow networks.
IDLE_RENEW_SECONDS: Final = 25 * 60.0
BACKOFF_FIRST_SECONDS: Final = 1.0
BACKOFF_MAX_SECONDS: Final = 300.0
# aioimaplib 2.0.3 recurses once per response line and hits RecursionError when
# one FETCH returns ~1,000 messages (iroco-co/aioimaplib#118); its FETCH
# completion check also rescans the whole response for every line. Measured on
# local Dovecot (5,000 small mails, \Seen included): 100 per FETCH ~3,000-3,800
# msgs/s, 50 ~4,600, 25 ~5,100; 50 keeps round trips few on a distant server.
MAX_UIDS_PER_FETCH: Final = 50
# `+FLAGS.SILENT` answers with one line whatever the count; the limit only keeps the command line short.
MAX_UIDS_PER_STORE: Final = 500

_UIDVALIDITY = re.compile(rb"\[UIDVALIDITY (\d+)\]")
_FETCH_START = re.compile(rb"^\d+ FETCH \(")
_UID_ITEM = re.compile(rb"(?:^|[ (])UID (\d+)")
_BODY_LITERAL = re.compile(rb"BODY\[\](?:<\d+>)? \{(\d+)\}$")
_BODY_QUOTED = re.compile(rb'BODY\[\](?:<\d+>)? "((?:[^"\\]|\\.)*)"')
_BODY_NIL = re.compile(rb"BODY\[\](?:<\d+>)? NIL")


class MailboxUnavailable(DeskError):
    """A mailbox cannot be reached, logged into or read; the sentence says which and what to check."""

    exit_code = 1


class ConnectionDropped(MailboxUnavailable):
    """The server closed the connection or stopped answering in the middle of the conversation."""


@dataclass
class SyncCounts:
    """What one pass over a mailbox did, summed over its batches."""

    mailbox: str
    fetched: int = 0
    stored: int = 0
    tickets: int = 0
    replies: int = 0
    duplicates: int = 0
    quarantined: int = 0
    dropped: int = 0

    def add(self, fetched: int, result: BatchResult) -> None:
        self.fetched += fetched
        self.stored += result.stored
        self.tickets += result.tickets
        self.replies += result.replies
        self.duplicates += result.duplicates
        self.quarantined += result.quarantined
        self.dropped += result.dropped

    def summary(self) -> str:
        return (
            f"{self.mailbox}: fetched {self.fetched}, new tickets {self.tickets}, replies {self.replies}, "
            f"duplicates {self.duplicates}, quarantined {self.quarantined}, dropped {self.dropped}"
        )


@dataclass
class SyncOutcome:
    """One mailbox's result of `sync_once`: counts, or the sentence saying why it failed."""

    mailbox: str
    counts: SyncCounts | None = None
    error: str | None = None


@dataclass(frozen=True)
class SyncTuning:
    """Timings that production leaves at their defaults and tests shorten."""

    idle_renew_seconds: float = IDLE_RENEW_SECONDS
    backoff_first_seconds: float = BACKOFF_FIRST_SECONDS
    backoff_max_seconds: float = BACKOFF_MAX_SECONDS
    # None: verify servers against the system's CAs (the only sane default); tests pass their own.
    ssl_context: ssl.SSLContext | None = field(default=None, compare=False)


def uid_set(uids: Sequence[int]) -> str:
    """A compact IMAP sequence set for sorted UIDs: [1, 2, 3, 7] -> "1:3,7"."""
    ranges: list[str] = []
    start = previous = uids[0]
    for uid in uids[1:]:
        if uid == previous + 1:
            previous = uid
            continue
        ranges.append(f"{start}:{previous}" if previous != start else str(start))
        start = previous = uid
    ranges.append(f"{start}:{previous}" if previous != start else str(start))
    return ",".join(ranges)


def _unquote(value: bytes) -> bytes:
    return re.sub(rb"\\(.)", rb"\1", value)


def parse_fetch_response(lines: Sequence[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """(uid, message bytes) for each FETCH record of aioimaplib's response lines.

    aioimaplib hands literals over as `bytearray` items right after the line
    that announced them (`... BODY[] {1234}`) and every other line as `bytes`,
    with the leading "* " removed. The UID may come before or after the body
    (servers choose the order), records without a body (a FLAGS change another
    client caused) are skipped, and a body sent as a quoted string or NIL is
    accepted too.
    """
    found: list[tuple[int, bytes]] = []
    uid: int | None = None
    body: bytes | None = None
    in_record = False
    expecting_literal = False
    for line in lines:
        if isinstance(line, bytearray):
            if expecting_literal:
                body = bytes(line)
            expecting_literal = False
            continue
        if _FETCH_START.match(line):
            if uid is not None and body is not None:
                found.append((uid, body))
            uid, body, in_record = None, None, True
        if not in_record:
            continue
        if uid is None:
            # Only the structure of the record is searched: literals never reach here.
            head = line.split(b"BODY[", 1)[0] if b"BODY[" in line else line
            match = _UID_ITEM.search(head)
            if match:
                uid = int(match.group(1))
        if _BODY_LITERAL.search(line):
            expecting_literal = True
        elif (quoted := _BODY_QUOTED.search(line)) is not None:
            body = _unquote(quoted.group(1))
        elif _BODY_NIL.search(line):
            body = b""
    if uid is not None and body is not None:
        found.append((uid, body))
    return found


def _failed(response: Response) -> bool:
    return response.result != "OK"


def _server_text(response: Response) -> str:
    """The server's own words from a tagged NO/BAD, for the log sentence."""
    last = response.lines[-1] if response.lines else b""
    text = bytes(last).decode("utf-8", "replace").strip()
    return text or response.result


def _quoted_mailbox(name: str) -> str:
    # aioimaplib sends arguments as they are; a folder like "Support Mail" must be quoted.
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _describe(error: BaseException) -> str:
    if isinstance(error, TimeoutError | asyncio.TimeoutError):
        return "no answer in time"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


class _Stopped:
    """Returned by `_await` when the stop event won the race."""


STOPPED: Final = _Stopped()


class MailboxSync:
    """Keeps one configured mailbox flowing into the intake."""

    def __init__(
        self,
        settings: MailboxSettings,
        intake: Intake,
        *,
        max_message_bytes: int | None = None,
        tuning: SyncTuning | None = None,
    ) -> None:
        self.settings = settings
        self.intake = intake
        self.tuning = tuning or SyncTuning()
        # Fetch at most one byte over the limit: the intake sees the mail is too
        # large and quarantines it, and a 2 GB message never sits in memory.
        self.max_message_bytes = max_message_bytes
        self.uidvalidity: int | None = None
        self._client: IMAP4 | None = None
        self._lost = asyncio.Event()
        # UIDs committed to the database whose \Seen could not be set (connection
        # dropped right after the commit); set on the next connection.
        self._seen_pending: list[int] = []
        self._seen_pending_validity: int | None = None

    @property
    def name(self) -> str:
        return self.settings.name

    # -- one pass ---------------------------------------------------------------

    async def run_once(self) -> SyncCounts:
        """Connect, fetch everything new, disconnect. Raises MailboxUnavailable / ConfigError."""
        await self.connect()
        try:
            return await self.catch_up()
        finally:
            await self.close()

    async def catch_up(self, stop: asyncio.Event | None = None) -> SyncCounts:
        """Fetch every mail after the committed checkpoint, batch by batch; stops between batches when asked."""
        assert self.uidvalidity is not None, "connect() first"
        counts = SyncCounts(self.name)
        await self._set_pending_seen()
        checkpoint = await self.intake.checkpoint(self.name)
        last_uid = 0
        if checkpoint is not None:
            if checkpoint.uidvalidity != self.uidvalidity:
                log.info(
                    "Mailbox %s: UIDVALIDITY changed from %d to %d, so its UIDs were renumbered; rescanning it "
                    "(mail already taken is recognised and not imported again).",
                    self.name, checkpoint.uidvalidity, self.uidvalidity,
                )
                await self.intake.reset_checkpoint(self.name, self.uidvalidity)
            else:
                last_uid = checkpoint.last_uid
        uids = await self._uids_after(last_uid)
        source = Source(self.name, self.settings.department, self.uidvalidity)
        batch_size = self.settings.batch_size
        # A pipeline: while batch N commits (SQLite works with the GIL released), batch N+1 is
        # fetched and parsed. Commits stay one at a time and in UID order, so the checkpoint
        # only moves forward; a crash loses at most fetched, uncommitted mail, fetched again.
        committing: tuple[asyncio.Task[BatchResult], list[RawMail]] | None = None
        try:
            for start in range(0, len(uids), batch_size):
                if stop is not None and stop.is_set():
                    break
                batch = uids[start : start + batch_size]
                mails: list[RawMail] = []
                for first in range(0, len(batch), MAX_UIDS_PER_FETCH):
                    mails.extend(await self._fetch(batch[first : first + MAX_UIDS_PER_FETCH]))
                if not mails:
                    continue  # expunged between SEARCH and FETCH
                ready = await asyncio.to_thread(self.intake.prepare, mails)
                if committing is not None:
                    await self._finish(committing, counts)
                    committing = None
                committing = (asyncio.create_task(self.intake.commit(source, ready)), mails)
            if committing is not None:
                await self._finish(committing, counts)
                committing = None
        finally:
            if committing is not None:
                # A fetch failed (or we were stopped) while a batch committed: let the commit
                # finish rather than waste it; its \\Seen is set by the next pass's pending-seen step.
                task, mails = committing
                (outcome,) = await asyncio.gather(task, return_exceptions=True)
                if not isinstance(outcome, BaseException):
                    self._seen_pending.extend(mail.uid for mail in mails if mail.uid is not None)
                    self._seen_pending_validity = self.uidvalidity
        if counts.fetched:
            log.info("Mailbox %s", counts.summary())
        return counts

    async def _finish(self, committing: tuple[asyncio.Task[BatchResult], list[RawMail]], counts: SyncCounts) -> None:
        """Wait for a batch's commit, then mark it \\Seen."""
        task, mails = committing
        result = await task
        counts.add(len(mails), result)
        # Commit first; \Seen only afterwards, so a crash in between leaves the
        # mail unread on the server but never "read, no ticket" (FreeScout #4888).
        await self._mark_seen([mail.uid for mail in mails if mail.uid is not None])

    # -- forever ------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Catch up, then wait for news (IDLE or polling), forever; reconnect with backoff after any failure.

        Never raises for a failure of its own (a broken mailbox must not end the
        others' tasks); returns when `stop` is set, after the batch in flight.
        """
        failures = 0
        delay = 0.0
        while not stop.is_set():
            try:
                await self.connect()
                while not stop.is_set():
                    counts = await self.catch_up(stop)
                    failures = 0  # a complete catch-up proves the connection works
                    if counts.fetched:
                        # Mail that arrived while we fetched was announced (EXISTS) in the
                        # responses to FETCH or STORE, which aioimaplib drops; only a pass
                        # that finds nothing proves IDLE will hear about the next one.
                        continue
                    if stop.is_set():
                        break
                    await self._wait_for_news(stop)
            except (MailboxUnavailable, ConfigError) as error:
                failures += 1
                delay = self._backoff(failures)
                log.warning("%s Retrying in %.0f s.", error.message, delay)
            except Exception:
                # The intake or the library failed in a way we did not foresee: keep the
                # traceback, and keep trying like for a network failure.
                failures += 1
                delay = self._backoff(failures)
                log.exception("Mailbox %s: sync failed unexpectedly; retrying in %.0f s.", self.name, delay)
            finally:
                await self.close()
            if failures and not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), delay)
                except TimeoutError:
                    pass

    def _backoff(self, failures: int) -> float:
        ceiling = min(
            self.tuning.backoff_max_seconds, self.tuning.backoff_first_seconds * 2 ** min(failures - 1, 30)
        )
        # Jitter: many desks restarting after one outage must not reconnect in lockstep.
        return random.uniform(ceiling / 2, ceiling)

    async def _wait_for_news(self, stop: asyncio.Event) -> None:
        """Return when new mail may be there, IDLE is due for renewal, or `stop` is set."""
        client = self._require_client()
        timeout = self.settings.timeout_seconds
        if not (self.settings.idle and client.has_capability("IDLE")):
            waited = await self._await(asyncio.sleep(self.settings.poll_seconds), timeout=None, stop=stop)
            if waited is not STOPPED:
                # NOOP proves the connection lives; the next UID SEARCH sees new mail.
                await self._command(client.noop(), "NOOP")
            return
        try:
            idle = await self._await(client.idle_start(timeout=self.tuning.idle_renew_seconds), timeout=timeout)
        except DeskError:
            raise
        except Exception as error:  # aioimaplib's Abort when the server refuses IDLE
            raise ConnectionDropped(f"Mailbox {self.name}: IDLE failed ({_describe(error)}).") from None
        assert not isinstance(idle, _Stopped)
        try:
            while client.has_pending_idle():
                push = await self._await(client.wait_server_push(timeout=None), timeout=None, stop=stop)
                if isinstance(push, _Stopped) or push == STOP_WAIT_SERVER_PUSH:
                    break
                if any(b"EXISTS" in bytes(line) for line in push):
                    break
        finally:
            if client.has_pending_idle() and not self._lost.is_set():
                client.idle_done()
        done = await self._await(idle, timeout=timeout)
        if isinstance(done, Response) and _failed(done):
            raise ConnectionDropped(f"Mailbox {self.name}: the server ended IDLE with {_server_text(done)}.")

    # -- connection -----------------------------------------------------------------

    async def connect(self) -> None:
        """Connect, log in and select the folder; sets `uidvalidity`."""
        await self.close()
        try:
            await self._connect()
        except BaseException:
            await self.close()
            raise

    async def _connect(self) -> None:
        settings = self.settings
        password = settings.password()
        where = f"{settings.host}:{settings.port}"
        self._lost = asyncio.Event()
        lost = self._lost

        def connection_lost(_error: Exception | None) -> None:
            lost.set()

        context: ssl.SSLContext | None = None
        if settings.security != "none":
            context = self.tuning.ssl_context or ssl.create_default_context()
        # IMAP4 with a context is what IMAP4_SSL does, but IMAP4_SSL drops the
        # connection-lost callback, which is how a dead connection is noticed at once.
        client = IMAP4(
            host=settings.host,
            port=settings.port,
            timeout=settings.timeout_seconds,
            conn_lost_cb=connection_lost,
            ssl_context=context if settings.security == "tls" else None,
        )
        self._client = client
        try:
            await client.wait_hello_from_server()
        except (OSError, TimeoutError, ssl.SSLError) as error:
            raise MailboxUnavailable(
                f"Mailbox {self.name} cannot reach {where} ({_describe(error)}); "
                "check host, port and security in its [[mailbox]] section."
            ) from None
        if settings.security == "starttls":
            assert context is not None
            await self._starttls(client, context)
        response = await self._command(client.login(settings.username, password), "LOGIN")
        if _failed(response):
            raise MailboxUnavailable(
                f"Mailbox {self.name}: {where} refused the login of {settings.username} "
                f"({_server_text(response)}); check the user name and the password in ${settings.password_env}."
            )
        response = await self._command(client.select(_quoted_mailbox(settings.folder)), "SELECT")
        if _failed(response):
            raise MailboxUnavailable(
                f"Mailbox {self.name}: the folder {settings.folder!r} cannot be opened on {where} "
                f"({_server_text(response)}); check `folder` in its [[mailbox]] section."
            )
        validity = next((m for line in response.lines if (m := _UIDVALIDITY.search(bytes(line)))), None)
        if validity is None:
            raise MailboxUnavailable(
                f"Mailbox {self.name}: {where} sent no UIDVALIDITY for {settings.folder!r}, "
                "so mail cannot be tracked exactly once."
            )
        self.uidvalidity = int(validity.group(1))

    async def _starttls(self, client: IMAP4, context: ssl.SSLContext) -> None:
        # aioimaplib has no STARTTLS: send it, then upgrade the transport in place.
        protocol = client.protocol
        if "STARTTLS" not in protocol.capabilities:
            raise MailboxUnavailable(
                f"Mailbox {self.name}: {self.settings.host}:{self.settings.port} does not offer STARTTLS; "
                'use security = "tls" with the TLS port, or fix the port.'
            )
        command = Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        response = await self._command(protocol.execute(command), "STARTTLS")
        if _failed(response):
            raise MailboxUnavailable(f"Mailbox {self.name}: STARTTLS was refused ({_server_text(response)}).")
        loop = asyncio.get_running_loop()
        try:
            transport = await asyncio.wait_for(
                loop.start_tls(protocol.transport, protocol, context, server_hostname=self.settings.host),
                self.settings.timeout_seconds,
            )
        except (OSError, TimeoutError, ssl.SSLError) as error:
            raise MailboxUnavailable(
                f"Mailbox {self.name}: the TLS handshake with {self.settings.host} failed ({_describe(error)})."
            ) from None
        protocol.transport = transport
        # Capabilities announced before TLS may have been tampered with (RFC 3501 6.2.1): ask again.
        await self._await(protocol.capability(), timeout=self.settings.timeout_seconds)

    async def close(self) -> None:
        """Log out politely if the connection still lives, then drop it."""
        client, self._client = self._client, None
        if client is None:
            return
        try:
            if not self._lost.is_set() and client.get_state() in ("AUTH", "SELECTED", "NONAUTH"):
                await asyncio.wait_for(client.logout(), min(5.0, self.settings.timeout_seconds))
        except Exception:  # noqa: BLE001 - the connection is being thrown away anyway
            pass
        transport = client.protocol.transport
        if transport is not None:
            transport.close()
        task = client._client_task  # a connection attempt still running must not outlive us
        if not task.done():
            task.cancel()

    def _require_client(self) -> IMAP4:
        if self._client is None:
            raise ConnectionDropped(f"Mailbox {self.name}: not connected.")
        return self._client

    # -- commands -------------------------------------------------------------------

    async def _await(
        self, awaitable: Awaitable[T], *, timeout: float | None, stop: asyncio.Event | None = None
    ) -> T | _Stopped:
        """Await an IMAP step, but give up at once when the connection drops (or `stop` is set).

        aioimaplib leaves a command waiting forever when the server goes away in
        the middle of it; the connection-lost callback sets `_lost`, which wins here.
        """
        work = asyncio.ensure_future(awaitable)
        watchers = [asyncio.ensure_future(self._lost.wait())]
        if stop is not None:
            watchers.append(asyncio.ensure_future(stop.wait()))
        try:
            done, _ = await asyncio.wait([work, *watchers], timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for watcher in watchers:
                watcher.cancel()
        if work in done:
            return work.result()
        work.cancel()
        if self._lost.is_set():
            raise ConnectionDropped(f"Mailbox {self.name}: the server closed the connection.")
        if stop is not None and stop.is_set():
            return STOPPED
        raise ConnectionDropped(f"Mailbox {self.name}: the server did not answer within {timeout:.0f} s.")

    async def _command(self, awaitable: Awaitable[Response], name: str, *, timeout: float | None = None) -> Response:
        try:
            result = await self._await(
                awaitable, timeout=timeout if timeout is not None else self.settings.timeout_seconds
            )
        except TimeoutError:
            raise ConnectionDropped(f"Mailbox {self.name}: the server did not answer {name} in time.") from None
        except OSError as error:
            raise ConnectionDropped(f"Mailbox {self.name}: {name} failed ({_describe(error)}).") from None
        except DeskError:
            raise
        except Exception as error:
            # aioimaplib raises its own Abort/Error/CommandTimeout; the caller reconnects on any of them.
            raise ConnectionDropped(f"Mailbox {self.name}: {name} failed ({_describe(error)}).") from None
        assert isinstance(result, Response)
        return result

    async def _uids_after(self, last_uid: int) -> list[int]:
        client = self._require_client()
        response = await self._command(client.uid_search(f"UID {last_uid + 1}:*", charset=None), "UID SEARCH")
        if _failed(response):
            raise ConnectionDropped(f"Mailbox {self.name}: UID SEARCH failed ({_server_text(response)}).")
        found: set[int] = set()
        # aioimaplib strips "* SEARCH" from the untagged line ("1 2 3"); the last line is the tagged text.
        for line in response.lines[:-1]:
            words = bytes(line).split()
            if words[:1] == [b"SEARCH"]:
                words = words[1:]
            if words and all(word.isdigit() for word in words):
                found.update(int(word) for word in words)
        # "N:*" always includes the highest UID, even when it is below N (RFC 3501 6.4.8).
        return sorted(uid for uid in found if uid > last_uid)

    async def _fetch(self, uids: Sequence[int]) -> list[RawMail]:
        client = self._require_client()
        limit = self.max_message_bytes
        part = f"BODY.PEEK[]<0.{limit + 1}>" if limit is not None else "BODY.PEEK[]"
        # No overall timeout: aioimaplib's own one restarts with every chunk received,
        # so a big batch on a slow link is fine and a silent server still fails.
        response = await self._command(
            client.uid("fetch", uid_set(uids), f"(UID {part})"), "UID FETCH", timeout=24 * 3600.0
        )
        if _failed(response):
            raise ConnectionDropped(f"Mailbox {self.name}: UID FETCH failed ({_server_text(response)}).")
        wanted = set(uids)
        mails = {uid: data for uid, data in parse_fetch_response(response.lines) if uid in wanted}
        return [RawMail(mails[uid], uid) for uid in sorted(mails)]

    async def _mark_seen(self, uids: Sequence[int]) -> None:
        if not uids:
            return
        self._seen_pending.extend(uids)
        self._seen_pending_validity = self.uidvalidity
        await self._set_pending_seen()

    async def _set_pending_seen(self) -> None:
        if not self._seen_pending:
            return
        if self._seen_pending_validity != self.uidvalidity:
            self._seen_pending.clear()  # those UIDs now name other messages
            return
        client = self._require_client()
        uids = sorted(set(self._seen_pending))
        for first in range(0, len(uids), MAX_UIDS_PER_STORE):
            chunk = uids[first : first + MAX_UIDS_PER_STORE]
            response = await self._command(
                client.uid("store", uid_set(chunk), "+FLAGS.SILENT", r"(\Seen)"), "UID STORE"
            )
            if _failed(response):
                # Not fatal: the mail is committed; an unread flag left on the server loses nothing.
                log.warning("Mailbox %s: could not mark mail as read (%s).", self.name, _server_text(response))
        self._seen_pending.clear()


async def sync_once(
    mailboxes: Sequence[MailboxSettings],
    intake: Intake,
    *,
    max_message_bytes: int | None = None,
    tuning: SyncTuning | None = None,
) -> list[SyncOutcome]:
    """One pass over every mailbox at once; a broken mailbox is reported, never stops the others."""

    async def one(settings: MailboxSettings) -> SyncOutcome:
        sync = MailboxSync(settings, intake, max_message_bytes=max_message_bytes, tuning=tuning)
        try:
            return SyncOutcome(settings.name, counts=await sync.run_once())
        except DeskError as error:
            log.warning("%s", error.message)
            return SyncOutcome(settings.name, error=error.message)

    return list(await asyncio.gather(*(one(settings) for settings in mailboxes)))


async def sync_all(
    mailboxes: Sequence[MailboxSettings],
    intake: Intake,
    stop: asyncio.Event,
    *,
    max_message_bytes: int | None = None,
    tuning: SyncTuning | None = None,
) -> None:
    """Run every mailbox as its own task until `stop` is set; each one retries on its own schedule."""
    syncs = [
        MailboxSync(settings, intake, max_message_bytes=max_message_bytes, tuning=tuning) for settings in mailboxes
    ]
    tasks: list[asyncio.Task[Any]] = [
        asyncio.create_task(sync.run(stop), name=f"imap:{sync.name}") for sync in syncs
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
