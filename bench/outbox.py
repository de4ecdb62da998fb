"""Outbox benchmark: replies per second through the outbox worker against a bare aiosmtplib send loop.

    .venv/bin/python bench/outbox.py [--replies 2000] [--repeat 5] [--db PATH]

Builds a SQLite desk with `--replies` agent replies queued through the real
`Desk.reply` + `MailOutbox` (one reply per ticket), starts a local aiosmtpd
(in its own thread, as in the tests), then times, `--repeat` times and
interleaved so machine noise hits both sides:

- outbox: `OutboxWorker.flush` — claim in batches, send over one reused
  connection, store each outcome (sent, entry marked) as the server answers;
- bare: one `aiosmtplib.SMTP` connection and a `sendmail` loop over the very
  same envelopes and bytes, read from the outbox beforehand, nothing stored.

Between runs the rows are put back to `queued`. It prints each side's median
rate, the ratio of the medians and the median of each round's ratio (the two
sides of a round ran back to back, so that one is less hurt by a shared,
noisy machine); goal: outbox >= 0.8 of the bare loop. It never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiosmtplib
from aiosmtpd.controller import Controller
from sqlalchemy import select, update

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import Desk  # noqa: E402
from core.config import Settings, SmtpSettings  # noqa: E402
from core.mail.outbox import MailOutbox  # noqa: E402
from core.mail.sender import OutboxWorker  # noqa: E402
from core.policy import Actor  # noqa: E402
from core.views import Intake  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.models import Message  # noqa: E402
from storage.outbox import OutboxMail  # noqa: E402

GOAL = 0.8


class Counter:
    def __init__(self) -> None:
        self.count = 0

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.count += 1
        return "250 2.0.0 OK"


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def build(path: Path, replies: int, settings: Settings) -> Desk:
    desk = Desk(Database(f"sqlite:///{path}"), settings, MailOutbox(settings))
    await desk.init()
    operator = Actor.operator()
    await desk.add_department(operator, "Support", email="support@desk.example", sender_name="Acme Support",
                              signature="Acme Support Team\n+1 555 0100")
    await desk.add_agent(operator, "alice", name="Alice Agent", email="alice@staff.example", departments=["Support"])
    started = time.perf_counter()
    for n in range(replies):
        row = await desk.create_ticket(operator, Intake(
            department="Support", contact_email=f"customer{n}@customer.example", contact_name=f"Customer {n}",
            subject=f"Question number {n} about order {100000 + n}", body="Hello,\nwhere is my order?\n",
        ))
        await desk.reply("alice", row.ref, f"Hello Customer {n},\n\nyour order {100000 + n} left today.\n" * 3)
    print(f"queued {replies} replies through Desk.reply in {time.perf_counter() - started:.1f} s", flush=True)
    return desk


async def requeue(desk: Desk) -> None:
    async with desk.db.writing() as session:
        await session.execute(update(OutboxMail).values(state="queued", attempts=0, sent_at=None, claim_token=None,
                                                        claimed_until=None))
        await session.execute(update(Message).where(Message.kind == "reply").values(delivery_status="queued"))


async def run_outbox(desk: Desk, smtp: SmtpSettings, counter: Counter, replies: int) -> float:
    await requeue(desk)
    before = counter.count
    started = time.perf_counter()
    counts = await OutboxWorker(desk.db, smtp).flush(ignore_backoff=True)
    elapsed = time.perf_counter() - started
    assert counts.sent == replies and counter.count - before == replies, (counts, counter.count - before)
    return replies / elapsed


async def run_bare(envelopes: list[tuple[str, str, bytes]], port: int, counter: Counter) -> float:
    before = counter.count
    started = time.perf_counter()
    client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
    await client.connect()
    for sender, recipient, data in envelopes:
        await client.sendmail(sender, [recipient], data)
    await client.quit()
    elapsed = time.perf_counter() - started
    assert counter.count - before == len(envelopes)
    return len(envelopes) / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replies", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--db", type=Path, default=None, help="SQLite file to build (default: a temporary one)")
    args = parser.parse_args()

    counter = Counter()
    port = free_port()
    controller = Controller(counter, hostname="127.0.0.1", port=port)
    controller.start()
    smtp = SmtpSettings(host="127.0.0.1", port=port, security="none")
    settings = Settings(smtp=smtp)
    with tempfile.TemporaryDirectory() as scratch:
        path = args.db or Path(scratch) / "outbox-bench.sqlite3"
        if path.exists():
            path.unlink()
        desk = await build(path, args.replies, settings)
        try:
            async with desk.db.reading() as session:
                envelopes = [
                    (row.sender, row.recipient, row.data)
                    for row in await session.execute(
                        select(OutboxMail.sender, OutboxMail.recipient, OutboxMail.data).order_by(OutboxMail.id)
                    )
                ]
            sizes = sorted(len(data) for _, _, data in envelopes)
            print(f"{len(envelopes)} messages, median {sizes[len(sizes) // 2]} bytes; aiosmtpd on 127.0.0.1:{port}")
            outbox_rates: list[float] = []
            bare_rates: list[float] = []
            for round_ in range(args.repeat):
                # Alternate which side goes first, so warm-up and noise do not favour one.
                order = ("outbox", "bare") if round_ % 2 == 0 else ("bare", "outbox")
                for side in order:
                    if side == "outbox":
                        outbox_rates.append(await run_outbox(desk, smtp, counter, args.replies))
                    else:
                        bare_rates.append(await run_bare(envelopes, port, counter))
                print(f"  round {round_ + 1}: outbox {outbox_rates[-1]:,.0f}/s  bare {bare_rates[-1]:,.0f}/s  "
                      f"ratio {outbox_rates[-1] / bare_rates[-1]:.2f}", flush=True)
        finally:
            await desk.close()
            controller.stop()
    outbox = statistics.median(outbox_rates)
    bare = statistics.median(bare_rates)
    print(f"outbox worker (one reused connection, outcomes group-committed): {outbox:,.0f} replies/s (median of "
          f"{args.repeat})")
    print(f"bare aiosmtplib sendmail loop, same messages:                     {bare:,.0f} messages/s (median of "
          f"{args.repeat})")
    paired = statistics.median(o / b for o, b in zip(outbox_rates, bare_rates, strict=True))
    print(f"ratio outbox / bare: {outbox / bare:.2f} of the medians, {paired:.2f} median of the rounds' ratios "
          f"(goal >= {GOAL})")


if __name__ == "__main__":
    asyncio.run(main())
