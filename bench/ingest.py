"""Mail ingest benchmark: our intake against the raw limit (P1) and IMAP sync against mbsync (P2).

    .venv/bin/python bench/ingest.py [--messages 20000] [--sync-messages 5000] [--only p1|p2] [--repeat 3] [--keep]

P1 feeds generated mail (bench/mailgen.py) through `Intake.ingest_batch` in
batches of 100 into a fresh SQLite desk, and in the same run through the raw
limit: a stdlib compat32 parse with a walk to the first text part, plus a bare
`executemany` of the same rows into a plain WAL table, one transaction per
100. P2 pulls a mailbox of generated mail from a local Dovecot with
`MailboxSync.run_once` into a fresh desk, and with mbsync (Debian isync) into
a fresh Maildir, with its default fsync and with `FSync no`. Every side runs
`--repeat` times into new files, interleaved so machine noise hits both; the
medians and ratios are printed next to the goals of issue #3. It never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import signal
import sqlite3
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import compat32
from pathlib import Path
from types import FrameType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.mailgen import DEPARTMENT_ADDRESSES, generate  # noqa: E402
from core import Desk  # noqa: E402
from core.mail.imap import MailboxSync  # noqa: E402
from core.mail.intake import BatchResult, Intake, RawMail, Source  # noqa: E402
from core.policy import Actor  # noqa: E402
from storage.database import Database  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
BATCH = 100  # what the IMAP sync and `termdesk ingest` commit per transaction
P1_GOAL = 0.6
P2_GOAL = 0.5


@dataclass
class Side:
    """Throughput samples of one contender, in messages per second."""

    name: str
    rates: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="P1: generated mails through the intake")
    parser.add_argument("--sync-messages", type=int, default=5_000, help="P2: mails in the Dovecot mailbox")
    parser.add_argument("--only", choices=("p1", "p2"), help="run one part only")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side; medians are reported")
    parser.add_argument("--profile-messages", type=int, default=2_000, help="P1: mails in the one profiled run")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary folders (printed at the end)")
    args = parser.parse_args(argv)
    if args.messages < 1 or args.sync_messages < 1 or args.repeat < 1:
        parser.error("--messages, --sync-messages and --repeat must be at least 1")
    return args


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# --- generated mail, cached ------------------------------------------------------------


def generated_mail(count: int, seed: int) -> list[bytes]:
    """The generator makes ~450 mails/s; the bytes are cached in bench/data/ (git-ignored) between runs."""
    cache = DATA / f"mailgen-{seed}-{count}.bin"
    if cache.exists():
        return list(_read_records(cache.read_bytes()))
    say(f"generating {count:,} mails (seed {seed}) …")
    began = time.perf_counter()
    messages = generate(count, seed)
    say(f"  generated in {time.perf_counter() - began:.1f} s; cached in {cache}")
    DATA.mkdir(parents=True, exist_ok=True)
    temporary = cache.with_suffix(".tmp")
    temporary.write_bytes(b"".join(struct.pack(">I", len(raw)) + raw for raw in messages))
    temporary.replace(cache)
    return messages


def _read_records(blob: bytes) -> Iterator[bytes]:
    position = 0
    while position < len(blob):
        (length,) = struct.unpack_from(">I", blob, position)
        position += 4
        yield blob[position : position + length]
        position += length


# --- P1: the full intake ---------------------------------------------------------------


async def fresh_desk(folder: Path) -> Desk:
    """A migrated SQLite desk with the departments whose addresses the generator writes to."""
    desk = Desk(Database(str(folder / "desk.sqlite3")))
    await desk.init()
    for name, address in DEPARTMENT_ADDRESSES:
        await desk.add_department(Actor.operator(), name, email=address)
    return desk


async def ingest_all(messages: list[bytes], folder: Path) -> tuple[float, BatchResult]:
    """Seconds to take every mail through `Intake.ingest_batch`, 100 per call, into a fresh desk."""
    desk = await fresh_desk(folder)
    try:
        intake = Intake(desk)
        source = Source("import", DEPARTMENT_ADDRESSES[0][0])
        total = BatchResult()
        began = time.perf_counter()
        batches = (
            [RawMail(raw) for raw in messages[start : start + BATCH]] for start in range(0, len(messages), BATCH)
        )
        async for _, result in intake.ingest_stream(source, batches):  # what `termdesk ingest` runs
            total.add(result)
        return time.perf_counter() - began, total
    finally:
        await desk.close()


def raw_row(raw: bytes) -> tuple[bytes, str, str, str]:
    """The raw limit's parse: compat32 tree, two headers, the first text part decoded."""
    message = message_from_bytes(raw, policy=compat32)
    text = ""
    for part in message.walk():
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                text = payload.decode(_charset(part), "replace")
            break
    return raw, str(message.get("subject", "")), str(message.get("from", "")), text


def _charset(part: Message) -> str:
    charset = part.get_content_charset() or "utf-8"
    try:
        "".encode(charset)
    except LookupError:
        return "utf-8"
    return charset


def raw_limit(messages: list[bytes], folder: Path, *, search_index: bool = False) -> float:
    """Seconds for the raw limit: parse each mail and executemany the rows, one WAL transaction per 100.

    With `search_index`, the body also goes into a trigram FTS5 index kept by
    a trigger, as every thread entry does in termdesk (migration 0001): what
    substring search in any script costs at write time, without the rest.
    """
    connection = sqlite3.connect(folder / f"raw{'-fts' if search_index else ''}.sqlite3", isolation_level=None)
    try:
        # The same durability as our engine (storage/database.py): WAL, synchronous=NORMAL.
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute(
            "CREATE TABLE mail (id INTEGER PRIMARY KEY, raw BLOB NOT NULL, subject TEXT, sender TEXT, body TEXT)"
        )
        if search_index:
            connection.execute(
                "CREATE VIRTUAL TABLE mail_fts USING fts5(body, content='mail', content_rowid='id', tokenize='trigram')"
            )
            connection.execute(
                "CREATE TRIGGER mail_fts_insert AFTER INSERT ON mail BEGIN "
                "INSERT INTO mail_fts(rowid, body) VALUES (new.id, new.body); END"
            )
        began = time.perf_counter()
        for start in range(0, len(messages), BATCH):
            rows = [raw_row(raw) for raw in messages[start : start + BATCH]]
            connection.execute("BEGIN")
            connection.executemany("INSERT INTO mail (raw, subject, sender, body) VALUES (?, ?, ?, ?)", rows)
            connection.execute("COMMIT")
        return time.perf_counter() - began
    finally:
        connection.close()


def parse_only(messages: list[bytes], folder: Path) -> float:
    """Seconds `Intake.parse` alone takes over all mails (no database): the CPU half of the full path."""
    # Intake only reads the desk's settings here; the engine never connects, so no file is made.
    intake = Intake(Desk(Database(str(folder / "unused.sqlite3"))))
    began = time.perf_counter()
    for raw in messages:
        intake.parse(raw)
    return time.perf_counter() - began


def raw_parse_only(messages: list[bytes]) -> float:
    began = time.perf_counter()
    for raw in messages:
        raw_row(raw)
    return time.perf_counter() - began


# Where the profiled run's time goes, by the functions that own each step (cumulative seconds).
PROFILE_STEPS = (
    ("parse (Intake.parse)", "core/mail/intake.py", "parse"),
    ("  of which HTML to text (inscriptis)", "core/mail/parse.py", "html_to_text"),
    ("  of which quoted-history trim", "core/mail/quoting.py", "trim_quoted"),
    ("dedupe lookup (_identity)", "core/mail/intake.py", "_identity"),
    ("threading (find_thread)", "core/mail/thread.py", "find_thread"),
    ("new ticket (tickets.create_ticket)", "core/tickets.py", "create_ticket"),
    ("reply (tickets.add_customer_message)", "core/tickets.py", "add_customer_message"),
    ("attachments", "core/mail/intake.py", "_attachments"),
    ("ORM flush (Session.flush)", "sqlalchemy/orm/session.py", "flush"),
    ("savepoints (begin_nested)", "sqlalchemy/ext/asyncio/session.py", "begin_nested"),
    ("waiting on the aiosqlite thread (epoll)", "~", "<method 'poll' of 'select.epoll' objects>"),
)


async def profile_ingest(messages: list[bytes], folder: Path) -> tuple[float, pstats.Stats]:
    profiler = cProfile.Profile()
    desk = await fresh_desk(folder)
    try:
        intake = Intake(desk)
        source = Source("import", DEPARTMENT_ADDRESSES[0][0])
        began = time.perf_counter()
        profiler.enable()
        for start in range(0, len(messages), BATCH):
            await intake.ingest_batch(source, [RawMail(raw) for raw in messages[start : start + BATCH]])
        profiler.disable()
        elapsed = time.perf_counter() - began
    finally:
        await desk.close()
    return elapsed, pstats.Stats(profiler)


def profile_breakdown(stats: pstats.Stats) -> list[tuple[str, float]]:
    found: dict[str, float] = {}
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    for (filename, _line, function), (_cc, _nc, _tt, cumulative, _callers) in table.items():
        for label, path, name in PROFILE_STEPS:
            if function == name and (path == "~" or filename.endswith(path)):
                found[label] = found.get(label, 0.0) + cumulative
    return [(label, found.get(label, 0.0)) for label, _, _ in PROFILE_STEPS]


# Own (not cumulative) time summed by where the code lives: adds up to the whole profiled run.
PACKAGES = (
    ("termdesk core/ and storage/", ("/core/", "/storage/")),
    ("SQLAlchemy (ORM, Core, async adapter)", ("/sqlalchemy/",)),
    ("greenlet switches (SQLAlchemy async bridge)", ("greenlet",)),
    ("aiosqlite and thread hand-offs", ("/aiosqlite/", "_queue.SimpleQueue", "threading.py", "concurrent/futures")),
    ("asyncio event loop", ("/asyncio/", "selectors.py")),
    ("waiting for the SQLite thread (epoll)", ("select.epoll",)),
    ("email package (stdlib)", ("/email/",)),
    ("inscriptis / lxml (HTML to text)", ("/inscriptis/", "lxml")),
)


def package_breakdown(stats: pstats.Stats) -> list[tuple[str, float]]:
    table: dict[tuple[str, int, str], tuple[Any, ...]] = stats.stats  # type: ignore[attr-defined]
    found = {label: 0.0 for label, _ in PACKAGES}
    found["everything else"] = 0.0
    for (filename, _line, function), (_cc, _nc, own, _cumulative, _callers) in table.items():
        where = f"{filename} {function}"
        label = next((label for label, marks in PACKAGES if any(mark in where for mark in marks)), "everything else")
        found[label] += own
    return list(found.items())


def top_functions(stats: pstats.Stats, count: int = 20) -> str:
    out = io.StringIO()
    stats.stream = out  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(count)
    lines = out.getvalue().splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip().startswith("ncalls")), 0)
    return "\n".join(lines[start:])


def run_p1(args: argparse.Namespace, root: Path) -> None:
    messages = generated_mail(args.messages, args.seed)
    size = sum(map(len, messages))
    say(f"P1: {len(messages):,} mails, {size / len(messages) / 1024:.1f} KB on average")
    full, raw = Side("termdesk intake"), Side("raw limit (compat32 walk + executemany)")
    indexed = Side("raw limit + trigram search index (context)")
    result = BatchResult()
    for round_ in range(1, args.repeat + 1):
        # Interleaved, each into a new folder, so a noisy neighbour hits both sides alike.
        folder = Path(tempfile.mkdtemp(prefix=f"p1-full-{round_}-", dir=root))
        seconds, result = asyncio.run(ingest_all(messages, folder))
        full.rates.append(len(messages) / seconds)
        say(f"  run {round_}: intake {full.rates[-1]:,.0f} msgs/s ({seconds:.1f} s)")
        folder = Path(tempfile.mkdtemp(prefix=f"p1-raw-{round_}-", dir=root))
        seconds = raw_limit(messages, folder)
        raw.rates.append(len(messages) / seconds)
        say(f"  run {round_}: raw limit {raw.rates[-1]:,.0f} msgs/s ({seconds:.1f} s)")
        seconds = raw_limit(messages, folder, search_index=True)
        indexed.rates.append(len(messages) / seconds)
        say(f"  run {round_}: raw limit + search index {indexed.rates[-1]:,.0f} msgs/s ({seconds:.1f} s)")

    say("  timing the parse alone …")
    ours_parse = parse_only(messages, root)
    stdlib_parse = raw_parse_only(messages)
    profiled = messages[: max(args.profile_messages, 0)]
    if profiled:
        say(f"  profiling the intake over {len(profiled):,} mails …")
        profile_seconds, stats = asyncio.run(
            profile_ingest(profiled, Path(tempfile.mkdtemp(prefix="p1-profile-", dir=root)))
        )

    ratio = full.median / raw.median
    full_seconds = len(messages) / full.median
    raw_seconds = len(messages) / raw.median
    print()
    print(f"P1  ingest of {len(messages):,} generated mails ({size / len(messages) / 1024:.1f} KB average), "
          f"SQLite, batches of {BATCH}; median of {args.repeat} runs, fresh files each run")
    print(f"    outcome of the last run: {result.tickets:,} tickets, {result.replies:,} replies, "
          f"{result.duplicates:,} duplicates, {result.quarantined:,} quarantined, {result.dropped:,} dropped")
    width = max(len(full.name), len(raw.name), len(indexed.name))
    print(f"    {'side':<{width}}  {'msgs/s':>8}  {'runs':>26}")
    for side in (full, raw, indexed):
        runs = ", ".join(f"{rate:,.0f}" for rate in side.rates)
        print(f"    {side.name:<{width}}  {side.median:>8,.0f}  {runs:>26}")
    print(f"    ratio {ratio:.2f}   goal ≥ {P1_GOAL}   {'ok' if ratio >= P1_GOAL else 'MISSED'}")
    print(f"    (against the raw limit with the same search index: {full.median / indexed.median:.2f})")
    print()
    print("    where the time goes (seconds for all mails, one pass):")
    print(f"      termdesk: full path {full_seconds:6.1f}  = Intake.parse {ours_parse:6.1f} "
          f"({ours_parse / full_seconds:.0%}) + database and domain {full_seconds - ours_parse:6.1f} "
          f"({(full_seconds - ours_parse) / full_seconds:.0%})")
    print(f"      raw limit: full     {raw_seconds:6.1f}  = compat32 walk {stdlib_parse:6.1f} "
          f"({stdlib_parse / raw_seconds:.0%}) + executemany {raw_seconds - stdlib_parse:6.1f}")
    print(f"      parse alone: ours {len(messages) / ours_parse:,.0f} msgs/s, compat32 walk "
          f"{len(messages) / stdlib_parse:,.0f} msgs/s ({stdlib_parse / ours_parse:.2f}x)")
    if not profiled:  # --profile-messages 0
        return
    print()
    print(f"    cProfile of one intake run over {len(profiled):,} mails ({profile_seconds:.1f} s with the profiler on; "
          "cumulative, steps overlap):")
    for label, seconds in profile_breakdown(stats):
        print(f"      {label:<42} {seconds:7.2f} s  {seconds / profile_seconds:5.0%}")
    print()
    print("    own time by package (profiled run; sums to the whole run):")
    for label, seconds in package_breakdown(stats):
        print(f"      {label:<42} {seconds:7.2f} s  {seconds / profile_seconds:5.0%}")
    print()
    print("    top functions by own time (profiled run):")
    print("      " + top_functions(stats).replace("\n", "\n      "))


# --- P2: IMAP sync against mbsync ------------------------------------------------------


def start_dovecot() -> Any:
    """The tests' Dovecot launcher (tests/mailserver.py): loopback port, passwd-file users, nobody-owned Maildirs."""
    from tests.mailserver import DovecotServer

    binary = shutil.which("dovecot") or "/usr/sbin/dovecot"
    if not Path(binary).exists():
        raise SystemExit("P2 needs Dovecot: apt-get install -y --no-install-recommends dovecot-imapd")
    return DovecotServer(binary)


def warm_mailbox(user: Any, expected: int) -> None:
    """Let Dovecot move new/ to cur/ and build its index once, so no timed run pays for it."""
    with user.imap("INBOX") as connection:
        status, data = connection.uid("FETCH", "1:*", "(UID RFC822.SIZE)")
        assert status == "OK", data
        found = sum(1 for item in data if isinstance(item, bytes) and b"UID" in item)
    if found != expected:
        raise SystemExit(f"Dovecot shows {found} mails, {expected} were delivered")


async def termdesk_sync(user: Any, folder: Path, expected: int) -> float:
    """Seconds for `MailboxSync.run_once` to take the whole mailbox into a fresh desk (no checkpoint)."""
    desk = await fresh_desk(folder)
    try:
        settings = user.settings(name="bench", department=DEPARTMENT_ADDRESSES[0][0], timeout_seconds=120.0)
        sync = MailboxSync(settings, Intake(desk))
        began = time.perf_counter()
        counts = await sync.run_once()
        seconds = time.perf_counter() - began
    finally:
        await desk.close()
    if counts.fetched != expected:
        say(f"  warning: termdesk fetched {counts.fetched}, expected {expected}")
    return seconds


MBSYNC_RC = """\
{fsync}
IMAPAccount bench
Host 127.0.0.1
Port {port}
User {user}
Pass {password}
SSLType None
AuthMechs LOGIN

IMAPStore bench-far
Account bench

MaildirStore bench-near
Path {maildir}/
Inbox {maildir}/INBOX

Channel bench
Far :bench-far:
Near :bench-near:
Patterns INBOX
Create Near
Sync Pull
SyncState *
"""


def mbsync_pull(user: Any, folder: Path, expected: int, *, fsync: bool) -> float:
    """Seconds for mbsync to pull the mailbox into a fresh Maildir."""
    maildir = folder / "Mail"
    maildir.mkdir()  # mbsync creates the INBOX inside, but not the store's own folder
    rc = folder / "mbsyncrc"
    rc.write_text(
        MBSYNC_RC.format(
            fsync="" if fsync else "FSync no",
            port=user.port,
            user=user.name,
            password=user.password,
            maildir=maildir,
        )
    )
    began = time.perf_counter()
    done = subprocess.run(["mbsync", "-q", "-c", str(rc), "bench"], capture_output=True, text=True)
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        raise SystemExit(f"mbsync failed ({done.returncode}): {done.stderr.strip()[-1000:]}")
    pulled = sum(1 for sub in ("cur", "new") for _ in (maildir / "INBOX" / sub).iterdir())
    if pulled != expected:
        say(f"  warning: mbsync pulled {pulled}, expected {expected}")
    return seconds


def run_p2(args: argparse.Namespace, root: Path, servers: list[Any]) -> None:
    if shutil.which("mbsync") is None:
        raise SystemExit("P2 needs mbsync: apt-get install -y isync")
    count = args.sync_messages
    # A different seed from P1's, so the cache files stay independent.
    messages = generated_mail(count, args.seed + 1)
    say(f"P2: starting Dovecot and delivering {count:,} mails into the Maildir …")
    server = start_dovecot()
    servers.append(server)
    user = server.add_user()
    user.deliver(messages)
    warm_mailbox(user, count)

    ours = Side("termdesk MailboxSync.run_once")
    synced = Side("mbsync, default fsync")
    unsynced = Side("mbsync, FSync no")
    for round_ in range(1, args.repeat + 1):
        # New folders every time: TESTING.md measured 2-3x slower runs into just-deleted ones.
        seconds = asyncio.run(termdesk_sync(user, Path(tempfile.mkdtemp(prefix=f"p2-td-{round_}-", dir=root)), count))
        ours.rates.append(count / seconds)
        say(f"  run {round_}: termdesk {ours.rates[-1]:,.0f} msgs/s ({seconds:.1f} s)")
        for side, fsync in ((synced, True), (unsynced, False)):
            folder = Path(tempfile.mkdtemp(prefix=f"p2-mbsync-{'fsync' if fsync else 'nofsync'}-{round_}-", dir=root))
            seconds = mbsync_pull(user, folder, count, fsync=fsync)
            side.rates.append(count / seconds)
            say(f"  run {round_}: {side.name} {side.rates[-1]:,.0f} msgs/s ({seconds:.2f} s)")

    size = sum(map(len, messages))
    print()
    print(f"P2  sync of {count:,} mails ({size / count / 1024:.1f} KB average) from local Dovecot; "
          f"median of {args.repeat} runs, fresh desk / Maildir each run")
    width = max(len(side.name) for side in (ours, synced, unsynced))
    print(f"    {'side':<{width}}  {'msgs/s':>8}  {'runs':>26}")
    for side in (ours, synced, unsynced):
        runs = ", ".join(f"{rate:,.0f}" for rate in side.rates)
        print(f"    {side.name:<{width}}  {side.median:>8,.0f}  {runs:>26}")
    ratio = ours.median / synced.median
    print(f"    ratio vs mbsync with its default fsync (termdesk commits durably too): {ratio:.2f}   "
          f"goal ≥ {P2_GOAL}   {'ok' if ratio >= P2_GOAL else 'MISSED'}")
    print(f"    ratio vs mbsync with FSync no (for reference): {ours.median / unsynced.median:.2f}")


# --- main ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="termdesk-bench-ingest-"))
    # Dovecot's mail processes run as nobody and must traverse into the Maildirs.
    root.chmod(0o755)
    servers: list[Any] = []

    def interrupted(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)  # unwinds through the finally below, which stops Dovecot

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    try:
        if args.only in (None, "p1"):
            run_p1(args, root)
        if args.only in (None, "p2"):
            run_p2(args, root, servers)
    finally:
        for server in servers:
            if args.keep:
                from tests.mailserver import stop_process

                stop_process(server.process)
                say(f"Dovecot folder kept: {server.root}")
            else:
                server.stop()
        if args.keep:
            say(f"temporary folders kept: {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
