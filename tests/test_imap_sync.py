"""IMAP sync against a real server (Dovecot; pymap where absent) into a real desk: exactly once, whatever happens.

Each test gets a fresh mail account and a fresh SQLite desk. The database is
looked at with sqlite3 directly, independent of the code under test; the
mailbox with the stdlib's imaplib. SQLite only: what IMAP sync does does not
depend on the database, and the intake's own tests cover PostgreSQL.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import Desk
from core.config import MailboxSettings, Settings
from core.mail.imap import MailboxSync, SyncTuning, parse_fetch_response, sync_all, sync_once, uid_set
from core.mail.intake import BatchResult, Intake, Prepared, Source
from core.policy import Actor
from storage.database import Database
from tests.mailserver import MailUser, free_port, sample_message
from tui.cli import app

REPO = Path(__file__).resolve().parents[1]
SEEN = "\\Seen"
# Reconnect fast in tests; production waits 1 s … 5 min.
QUICK = SyncTuning(backoff_first_seconds=0.1, backoff_max_seconds=0.5)


@dataclass
class MailDesk:
    """A migrated SQLite desk with the department `Technical`, and a way to make intakes for it."""

    desk: Desk
    path: Path

    def intake(self, *mailboxes: MailboxSettings) -> Intake:
        return Intake(self.desk, Settings(mailbox=list(mailboxes)))

    def query(self, sql: str, *args: object) -> list[tuple[object, ...]]:
        connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=10)
        try:
            return connection.execute(sql, args).fetchall()
        finally:
            connection.close()

    def ticket_subjects(self) -> list[str]:
        return sorted(str(row[0]) for row in self.query("SELECT subject FROM tickets"))

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])  # noqa: S608 - table names are ours


@pytest.fixture
async def mail_desk(tmp_path: Path) -> AsyncIterator[MailDesk]:
    path = tmp_path / "desk.sqlite3"
    desk = Desk(Database(f"sqlite:///{path}"))
    await desk.init()
    await desk.add_department(Actor.operator(), "Technical", email="support@example.com")
    yield MailDesk(desk, path)
    await desk.close()


def subjects(tag: str, count: int) -> list[str]:
    return sorted(f"{tag} #{index}" for index in range(count))


async def eventually(check: Callable[[], bool], seconds: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {seconds} s")
        await asyncio.sleep(0.05)


# -- the pieces that need no server -------------------------------------------------


def test_uid_set_compacts_runs() -> None:
    assert uid_set([1, 2, 3, 7, 9, 10]) == "1:3,7,9:10"
    assert uid_set([5]) == "5"


def test_fetch_response_is_read_whatever_the_order_of_items() -> None:
    lines: list[bytes | bytearray] = [
        b"1 FETCH (UID 11 BODY[] {5}", bytearray(b"hello"), b")",
        b"2 FETCH (FLAGS (\\Seen))",  # another client's flag change: no body, skipped
        b"3 FETCH (BODY[] {8}", bytearray(b"a) (b\r\n)"), b" UID 13)",  # UID after the literal
        b"4 FETCH (UID 14 BODY[]<0> {3}", bytearray(b"abc"), b")",  # partial fetch
        b'5 FETCH (UID 15 BODY[] "quoted \\"x\\"")',
        b"6 FETCH (UID 16 BODY[] NIL)",
        b"Fetch completed (0.001 + 0.000 secs).",
    ]
    assert parse_fetch_response(lines) == [
        (11, b"hello"), (13, b"a) (b\r\n)"), (14, b"abc"), (15, b'quoted "x"'), (16, b""),
    ]


# -- one pass ------------------------------------------------------------------------


async def test_mail_in_the_mailbox_becomes_tickets_and_is_marked_seen(mail_user: MailUser, mail_desk: MailDesk) -> None:
    mail_user.deliver(sample_message(index, tag="few") for index in range(5))
    settings = mail_user.settings()

    counts = await MailboxSync(settings, mail_desk.intake(settings)).run_once()

    assert (counts.fetched, counts.tickets) == (5, 5)
    assert mail_desk.ticket_subjects() == subjects("few", 5)
    assert all(SEEN in flags for flags in mail_user.flags().values())


async def test_second_sync_makes_no_new_tickets(mail_user: MailUser, mail_desk: MailDesk) -> None:
    mail_user.deliver(sample_message(index, tag="twice") for index in range(4))
    settings = mail_user.settings()
    intake = mail_desk.intake(settings)
    await MailboxSync(settings, intake).run_once()

    again = await MailboxSync(settings, intake).run_once()

    assert again.fetched == 0  # "UID 5:*" still answers UID 4: it must be filtered out
    assert mail_desk.count("tickets") == 4
    mail_user.deliver([sample_message(9, tag="twice")])
    later = await MailboxSync(settings, intake).run_once()
    assert (later.fetched, later.tickets) == (1, 1)
    assert mail_desk.count("tickets") == 5


class WatchingIntake(Intake):
    """The real intake, noting whether the server already showed a mail as read while its batch was committed."""

    def __init__(self, desk: Desk, settings: Settings, user: MailUser) -> None:
        super().__init__(desk, settings)
        self.user = user
        self.seen_before_commit = 0
        self.batches = 0

    async def commit(self, source: Source, ready: Prepared) -> BatchResult:
        flags = await asyncio.to_thread(self.user.flags)
        self.seen_before_commit += sum(SEEN in flags.get(mail.uid or 0, set()) for mail, _, _ in ready.mails)
        self.batches += 1
        return await super().commit(source, ready)


class BrokenIntake(Intake):
    async def commit(self, source: Source, ready: Prepared) -> BatchResult:
        raise RuntimeError("the database is on fire")


async def test_seen_is_set_only_after_the_commit(mail_user: MailUser, mail_desk: MailDesk) -> None:
    mail_user.deliver(sample_message(index, tag="seen") for index in range(25))
    settings = mail_user.settings(batch_size=10)
    intake = WatchingIntake(mail_desk.desk, Settings(mailbox=[settings]), mail_user)

    await MailboxSync(settings, intake).run_once()

    assert intake.batches == 3
    assert intake.seen_before_commit == 0
    assert all(SEEN in flags for flags in mail_user.flags().values())


async def test_a_failing_intake_leaves_the_mail_unread_for_the_next_run(
    mail_user: MailUser, mail_desk: MailDesk
) -> None:
    mail_user.deliver(sample_message(index, tag="broken") for index in range(3))
    settings = mail_user.settings()

    with pytest.raises(RuntimeError, match="on fire"):
        await MailboxSync(settings, BrokenIntake(mail_desk.desk, Settings(mailbox=[settings]))).run_once()

    assert not any(SEEN in flags for flags in mail_user.flags().values())
    assert mail_desk.count("tickets") == 0
    counts = await MailboxSync(settings, mail_desk.intake(settings)).run_once()
    assert counts.tickets == 3


def sized(user: MailUser, dovecot: int, pymap: int) -> int:
    """Mailbox sizes for the big tests: pymap is far slower per message; 1,100 still springs the batch trap."""
    return dovecot if user.server.kind == "dovecot" else pymap


@pytest.mark.slow
async def test_a_mailbox_of_thousands_of_messages_syncs_completely(mail_user: MailUser, mail_desk: MailDesk) -> None:
    # One FETCH of ~1,000 messages makes aioimaplib hit RecursionError and hang (TESTING.md).
    total = sized(mail_user, dovecot=3000, pymap=1100)
    mail_user.deliver(sample_message(index, tag="bulk") for index in range(total))
    settings = mail_user.settings(timeout_seconds=30.0)

    started = time.monotonic()
    counts = await MailboxSync(settings, mail_desk.intake(settings)).run_once()
    seconds = time.monotonic() - started

    assert (counts.fetched, counts.tickets) == (total, total)
    assert mail_desk.ticket_subjects() == subjects("bulk", total)
    assert sum(SEEN in flags for flags in mail_user.flags().values()) == total
    logging.getLogger(__name__).info("%d messages in %.1f s (%.0f msgs/s)", total, seconds, total / seconds)


async def test_uidvalidity_change_rescans_without_duplicate_tickets(mail_user: MailUser, mail_desk: MailDesk) -> None:
    old = [sample_message(index, tag="renumbered") for index in range(20)]
    mail_user.create_folder("Support")
    mail_user.deliver(old, folder="Support")
    settings = mail_user.settings(folder="Support")
    intake = mail_desk.intake(settings)
    await MailboxSync(settings, intake).run_once()
    before = mail_user.uidvalidity("Support")

    # A restored backup or a recreated folder: same mail, new UIDVALIDITY, UIDs from 1 again.
    mail_user.delete_folder("Support")
    mail_user.create_folder("Support")
    mail_user.deliver([*old, *(sample_message(index, tag="renumbered") for index in range(20, 25))], folder="Support")
    assert mail_user.uidvalidity("Support") != before

    counts = await MailboxSync(settings, intake).run_once()

    assert (counts.fetched, counts.duplicates, counts.tickets) == (25, 20, 5)
    assert mail_desk.ticket_subjects() == subjects("renumbered", 25)
    # Dovecot numbers the new folder from 1 again, pymap goes on counting: either way, its highest UID.
    assert mail_desk.query("SELECT uidvalidity, last_uid FROM mailbox_checkpoints") == [
        (mail_user.uidvalidity("Support"), max(mail_user.flags("Support")))
    ]


# -- crashes ---------------------------------------------------------------------------


def write_config(path: Path, user: MailUser, database: Path, log: Path) -> MailboxSettings:
    settings = user.settings(batch_size=50)
    path.write_text(
        f'[database]\nurl = "sqlite:///{database}"\n\n[logging]\npath = "{log}"\n\n'
        f'[[mailbox]]\nname = "{settings.name}"\nhost = "{settings.host}"\nport = {settings.port}\n'
        f'security = "none"\nusername = "{settings.username}"\npassword_env = "{settings.password_env}"\n'
        f'folder = "INBOX"\ndepartment = "Technical"\nbatch_size = {settings.batch_size}\n'
    )
    return settings


@pytest.mark.slow
async def test_sigkill_during_sync_then_restart_imports_every_message_exactly_once(
    mail_user: MailUser, mail_desk: MailDesk, tmp_path: Path
) -> None:
    total = sized(mail_user, dovecot=2000, pymap=400)
    mail_user.deliver(sample_message(index, tag="killed") for index in range(total))
    config = tmp_path / "config.toml"
    write_config(config, mail_user, mail_desk.path, tmp_path / "termdesk.log")
    command = [sys.executable, "-m", "tui.cli", "--config", str(config), "sync", "--once"]
    chance = random.Random(int(os.environ.get("TERMDESK_TEST_SEED", time.time())))
    kills = 0
    for _ in range(4):
        before = mail_desk.count("raw_mails")
        if before >= total:
            break
        process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # Kill only once this run has committed something, at a random point after that:
            # in the middle of a fetch, a parse, a commit, or between a commit and \Seen.
            await eventually(lambda: mail_desk.count("raw_mails") > before or process.poll() is not None, 60)  # noqa: B023 - awaited in this turn
            await asyncio.sleep(chance.uniform(0.0, 0.4))
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.communicate(timeout=30)
    assert kills >= 2, "the sync finished before it could be killed; make the mailbox bigger"

    for _ in range(5):
        finished = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
        assert finished.returncode == 0, finished.stderr
        if mail_desk.count("raw_mails") >= total:
            break

    assert mail_desk.count("raw_mails") == total
    assert mail_desk.ticket_subjects() == subjects("killed", total)
    assert mail_desk.query(
        "SELECT message_id FROM messages WHERE message_id IS NOT NULL GROUP BY message_id HAVING count(*) > 1"
    ) == []
    assert mail_desk.query("SELECT last_uid FROM mailbox_checkpoints") == [(max(mail_user.flags()),)]
    # A run killed between its commit and \Seen leaves that batch unread: harmless, never the reverse.
    assert len(mail_user.flags()) == total


# -- running forever -------------------------------------------------------------------


async def test_new_mail_arrives_through_idle(mail_user: MailUser, mail_desk: MailDesk) -> None:
    settings = mail_user.settings()
    stop = asyncio.Event()
    task = asyncio.create_task(MailboxSync(settings, mail_desk.intake(settings), tuning=QUICK).run(stop))
    try:
        await asyncio.sleep(0.5)  # connected, caught up (nothing), now in IDLE
        mail_user.deliver(sample_message(index, tag="pushed") for index in range(3))
        await eventually(lambda: mail_desk.count("tickets") == 3, what="3 tickets")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert mail_desk.ticket_subjects() == subjects("pushed", 3)


async def test_without_idle_the_mailbox_is_polled(mail_user: MailUser, mail_desk: MailDesk) -> None:
    settings = mail_user.settings(idle=False, poll_seconds=0.2)
    stop = asyncio.Event()
    task = asyncio.create_task(MailboxSync(settings, mail_desk.intake(settings), tuning=QUICK).run(stop))
    try:
        await asyncio.sleep(0.3)
        mail_user.deliver(sample_message(index, tag="polled") for index in range(2))
        await eventually(lambda: mail_desk.count("tickets") == 2, what="2 tickets")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_mail_delivered_while_the_idle_connection_was_dropped_arrives_after_reconnect(
    mail_user: MailUser, mail_desk: MailDesk, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="termdesk.mail.imap")
    mail_user.deliver(sample_message(index, tag="dropped") for index in range(2))
    settings = mail_user.settings()
    stop = asyncio.Event()
    task = asyncio.create_task(MailboxSync(settings, mail_desk.intake(settings), tuning=QUICK).run(stop))
    try:
        await eventually(lambda: mail_desk.count("tickets") == 2, what="the first 2 tickets")
        await asyncio.sleep(0.3)  # back in IDLE
        assert mail_user.drop_connections() >= 1
        # Delivered while nobody listens: only the UID catch-up after reconnecting can find it.
        mail_user.deliver(sample_message(index, tag="dropped") for index in range(2, 5))
        await eventually(lambda: mail_desk.count("tickets") == 5, what="all 5 tickets")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    assert mail_desk.ticket_subjects() == subjects("dropped", 5)
    assert any("closed the connection" in record.getMessage() for record in caplog.records)


async def test_a_mailbox_with_a_wrong_password_or_no_server_does_not_block_the_others(
    mail_user: MailUser, mail_user_factory: Callable[[], MailUser], mail_desk: MailDesk,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="termdesk.mail.imap")
    other = mail_user_factory()
    good = other.settings(name="good")
    wrong_password = mail_user.settings(name="wrong", password="not-the-password")
    unreachable = mail_user.settings(name="gone", port=free_port())
    other.deliver(sample_message(index, tag="good") for index in range(3))
    stop = asyncio.Event()
    mailboxes = [wrong_password, unreachable, good]

    def refusals() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.getMessage().startswith("Mailbox wrong:")]

    task = asyncio.create_task(sync_all(mailboxes, mail_desk.intake(*mailboxes), stop, tuning=QUICK))
    try:
        await eventually(lambda: mail_desk.count("tickets") == 3, what="the good mailbox's tickets")
        # Waiting on the log, not a fixed sleep: a loaded machine may take seconds per login.
        await eventually(lambda: len(refusals()) >= 2, what="a second login attempt of the broken mailbox")
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
    messages = [record.getMessage() for record in caplog.records]
    refused = refusals()
    assert refused and "refused the login" in refused[0] and wrong_password.password_env in refused[0]
    assert len(refused) >= 2, "it retries"
    assert any(m.startswith("Mailbox gone cannot reach 127.0.0.1:") for m in messages)
    assert not any("Traceback" in m for m in messages)


async def test_one_pass_reports_a_broken_mailbox_and_syncs_the_rest(
    mail_user: MailUser, mail_desk: MailDesk
) -> None:
    mail_user.deliver([sample_message(1, tag="once")])
    good = mail_user.settings(name="good")
    broken = mail_user.settings(name="broken", password="nope")

    outcomes = await sync_once([broken, good], mail_desk.intake(broken, good))

    by_name = {outcome.mailbox: outcome for outcome in outcomes}
    assert by_name["good"].counts is not None and by_name["good"].counts.tickets == 1
    assert by_name["broken"].counts is None and "refused the login" in (by_name["broken"].error or "")


async def test_tls_and_starttls_connections_sync(mail_user: MailUser, mail_desk: MailDesk) -> None:
    context = mail_user.server.client_ssl_context()
    if context is None or mail_user.tls_port is None:
        pytest.skip("this server runs without TLS (no openssl to make a certificate, or pymap)")
    mail_user.deliver(sample_message(index, tag="tls") for index in range(2))
    # One mailbox reached two ways: the checkpoint carries over from one to the other.
    tls = mail_user.settings(security="tls", port=mail_user.tls_port)
    starttls = tls.model_copy(update={"security": "starttls", "port": mail_user.port})
    intake = mail_desk.intake(tls)

    first = await MailboxSync(tls, intake, tuning=SyncTuning(ssl_context=context)).run_once()
    mail_user.deliver([sample_message(2, tag="tls")])
    second = await MailboxSync(starttls, intake, tuning=SyncTuning(ssl_context=context)).run_once()

    assert (first.fetched, first.tickets) == (2, 2)
    assert (second.fetched, second.tickets) == (1, 1)
    assert mail_desk.ticket_subjects() == subjects("tls", 3)
    untrusted = mail_user.settings(name="untrusted", security="tls", port=mail_user.tls_port)
    with pytest.raises(Exception, match="cannot reach|TLS"):
        await MailboxSync(untrusted, intake).run_once()  # self-signed: refused with the system's CAs


# -- the command -----------------------------------------------------------------------


def test_sync_without_a_mailbox_in_the_config_says_where_to_add_one(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[logging]\npath = "{tmp_path / "log"}"\n')
    result = CliRunner().invoke(app, ["--config", str(config), "--db", str(tmp_path / "d.sqlite3"), "sync", "--once"])
    assert result.exit_code == 7, result.output
    assert "[[mailbox]]" in result.stderr and str(config) in result.stderr


async def test_sync_once_command_prints_counts_and_refuses_unknown_mailbox_names(
    mail_user: MailUser, mail_desk: MailDesk, tmp_path: Path
) -> None:
    mail_user.deliver(sample_message(index, tag="cli") for index in range(3))
    config = tmp_path / "config.toml"
    write_config(config, mail_user, mail_desk.path, tmp_path / "termdesk.log")
    base = [sys.executable, "-m", "tui.cli", "--config", str(config), "sync", "--once"]

    unknown = await asyncio.to_thread(
        subprocess.run, [*base, "--mailbox", "nope"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "No mailbox is named 'nope'; the configured ones are: support."

    done = await asyncio.to_thread(
        subprocess.run, [*base, "--mailbox", "support"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    header, row = done.stdout.strip().splitlines()
    assert header.split()[:3] == ["MAILBOX", "FETCHED", "NEW"]
    assert row.split()[:3] == ["support", "3", "3"]


@pytest.mark.slow
async def test_sync_command_stops_gracefully_on_sigterm(
    mail_user: MailUser, mail_desk: MailDesk, tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    write_config(config, mail_user, mail_desk.path, tmp_path / "termdesk.log")
    process = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--config", str(config), "sync"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        await asyncio.sleep(1.5)
        mail_user.deliver(sample_message(index, tag="daemon") for index in range(2))
        await eventually(lambda: mail_desk.count("tickets") == 2, what="tickets from the running sync")
        process.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "Stopped." in stderr
