"""Console benchmark: drive the agent console with Pilot on a big desk and print how fast it answers.

    .venv/bin/python bench/tui.py [--tickets 1000000] [--db PATH|URL] [--as HANDLE] [--repeat 40] [--live 10]

The desk is the one `bench/scale.py --tickets N` builds (bench/data/
scale-N.sqlite3); build it first. The console runs headless at 160x48 as the
admin (a member of every department, so its queue is the whole desk) unless
--as names another agent. Figures (median, p95), never asserted:

- start → interactive: from making the app to the first queue page on screen;
- keypress → repaint for j, k, page down (ctrl+d, paging new rows in as the
  cursor passes the loaded ones), open ticket (enter until the thread is
  drawn), back (escape until the queue is drawn): the key is sent and the
  app has handled it and refreshed the screen; open and back are timed twice,
  right after moving the cursor and after it rested --rest seconds on the row
  (as an agent reading the row first; the console reads that ticket ahead);
- live update: another OS process creates a ticket; from its commit to the
  row being in the console's queue. On PostgreSQL the console is woken by
  NOTIFY (and its poll interval does not matter); on SQLite it polls every
  --poll seconds. `--only live` measures just this (on a smaller desk, e.g.
  `bench/scale.py --tickets 20000 --db postgresql://…`, to compare the two);
- peak RSS of this process (the console and its SQLite cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# The console package first, as `termdesk tui` imports it: it sets Textual's frame rate, read on Textual's import.
import tui.console  # noqa: E402, F401, I001

from sqlalchemy import func, select  # noqa: E402
from textual import events  # noqa: E402

from core import Desk  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.models import Agent, Membership, Ticket  # noqa: E402
from tui.console.app import ConsoleApp  # noqa: E402
from tui.console.queues import STATUS_FILTERS, QueuesScreen  # noqa: E402
from tui.console.ticket import TicketScreen  # noqa: E402

DATA = ROOT / "bench" / "data"
SIZE = (160, 48)

# Run in another process: create one ticket and print the wall-clock time of its commit.
CREATOR = """
import asyncio, sys, time
sys.path.insert(0, {root!r})
from core import Desk
from core.policy import Actor
from core.views import Intake
from storage.database import Database

async def main():
    desk = Desk(Database({url!r}))
    row = await desk.create_ticket(Actor.system(), Intake(
        department={department!r}, contact_email="bench@example.org", subject="live bench " + str(time.time()),
        body="created by bench/tui.py"))
    committed = time.time()
    print(row.ref, committed, flush=True)
    await desk.close()

asyncio.run(main())
"""


def p95(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def line(name: str, samples: list[float], unit: str, goal: str) -> str:
    return (
        f"{name:<34} n={len(samples):<4} median {statistics.median(samples):8.1f} {unit}"
        f"   p95 {p95(samples):8.1f} {unit}   goal {goal}"
    )


async def until(app: ConsoleApp, condition: Callable[[], bool], limit: float = 120.0) -> None:
    ends = time.monotonic() + limit
    while not condition():
        if time.monotonic() > ends:
            raise SystemExit("the console did not get there in time; is the desk built?")
        await asyncio.sleep(0.001)


class Repaints:
    """Times of the screen updates the app produced (its `_display` calls; headless skips only the tty write)."""

    def __init__(self, app: ConsoleApp) -> None:
        self.times: list[float] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            if renderable is not None:
                self.times.append(time.perf_counter())
            original(screen, renderable)

        app._display = display  # type: ignore[method-assign]


KEY_CHARS = {"enter": "\r", "escape": "\x1b"}


async def timed_key(app: ConsoleApp, repaints: Repaints, key: str, done: Callable[[], bool]) -> float:
    """Milliseconds from the key reaching the app to the first screen update after `done()` holds."""
    began = time.perf_counter()
    event = events.Key(key, key if len(key) == 1 else KEY_CHARS.get(key))
    event.set_sender(app)
    app._driver.send_message(event)  # type: ignore[union-attr]
    reached: float | None = None
    ends = time.monotonic() + 20
    while True:
        await asyncio.sleep(0.0005)
        if reached is None and done():
            reached = time.perf_counter()
        if reached is not None and repaints.times and repaints.times[-1] >= reached:
            return (repaints.times[-1] - began) * 1000 if repaints.times[-1] > began else 0.0
        if time.monotonic() > ends:
            screen = app.screen
            raise SystemExit(f"the console did not answer {key!r} in time: {type(screen).__name__} "
                             f"{getattr(screen, 'loading_more', None)} {len(getattr(screen, 'rows', []))} "
                             f"{getattr(getattr(screen, 'table', None), 'cursor_row', None)}")


async def pick_agent(desk: Desk, handle: str | None) -> str:
    if handle:
        return handle
    async with desk.db.reading() as session:
        admin = (await session.execute(select(Agent.handle).where(Agent.role == "admin").order_by(Agent.id))).scalar()
        if admin:
            return str(admin)
        return str((await session.execute(select(Agent.handle).join(Membership).limit(1))).scalar_one())


async def run(args: argparse.Namespace) -> None:
    url = args.db or str(DATA / f"scale-{args.tickets}.sqlite3")
    if "://" not in url and not Path(url).exists():
        raise SystemExit(f"No desk at {url}; build it with: .venv/bin/python bench/scale.py --tickets {args.tickets}")
    setup = Desk(Database(url))
    await setup.init()  # adds the console's tables to a desk built before them; a no-op otherwise
    handle = await pick_agent(setup, args.as_)
    async with setup.db.reading() as session:
        tickets = (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()
    await setup.close()
    print(f"desk {url}: {tickets:,} tickets; console as {handle} at {SIZE[0]}x{SIZE[1]}, headless Pilot")

    desk = Desk(Database(url))
    began = time.perf_counter()
    app = ConsoleApp(desk, handle, poll_seconds=args.poll)
    figures: list[str] = []
    async with app.run_test(size=SIZE) as pilot:
        await until(app, lambda: isinstance(app.screen, QueuesScreen) and app.screen.loaded)
        await pilot.pause()
        start_ms = (time.perf_counter() - began) * 1000
        figures.append(f"{'start -> interactive queue':<34} {start_ms:8.1f} ms   goal <= 1000 ms")
        queue: QueuesScreen = app.screen  # type: ignore[assignment]
        repaints = Repaints(app)
        if args.only == "all":
            await keys(app, pilot, queue, repaints, args, figures)
        await live(app, pilot, queue, url, args, figures)

    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    figures.append(f"{'peak RSS':<34} {rss_mb:8.1f} MB   goal <= 200 MB")
    await desk.close()
    print("\n".join(figures))
    if args.json:
        print(json.dumps({"start_ms": start_ms, "rss_mb": rss_mb}))


async def keys(
    app: ConsoleApp, pilot: Any, queue: QueuesScreen, repaints: Repaints, args: argparse.Namespace, figures: list[str]
) -> None:
    # The keys are timed on the whole desk: every status (the default view holds only active tickets).
    queue.status_index = len(STATUS_FILTERS) - 1
    queue.load_queue()
    await until(app, lambda: queue.table.row_count > 0 and queue.next_cursor is not None)
    await pilot.pause()

    def moved(key: str) -> float:
        row = queue.table.cursor_row
        return timed_key(app, repaints, key, lambda: queue.table.cursor_row != row)  # type: ignore[return-value]

    down = [await moved("j") for _ in range(args.repeat)]
    up = [await moved("k") for _ in range(args.repeat)]
    figures.append(line("keypress -> repaint: j", down, "ms", "p95 <= 50 ms"))
    figures.append(line("keypress -> repaint: k", up, "ms", "p95 <= 50 ms"))

    pages = []
    for _ in range(args.repeat):
        pages.append(await moved("ctrl+d"))
        await until(app, lambda: not queue.loading_more)
    figures.append(line("keypress -> repaint: page down", pages, "ms", "p95 <= 50 ms"))
    figures.append(f"{'  rows loaded after paging':<34} {len(queue.rows):,} (keyset pages of {app.page_size})")

    opens, backs = [], []
    for _ in range(args.repeat // 2):
        await moved("j")
        opens.append(await timed_key(
            app, repaints, "enter",
            lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None))
        await pilot.pause()
        backs.append(await timed_key(app, repaints, "escape", lambda: isinstance(app.screen, QueuesScreen)))
        await pilot.pause()
    figures.append(line("keypress -> repaint: open ticket", opens, "ms", "p95 <= 50 ms"))
    figures.append(line("keypress -> repaint: back", backs, "ms", "p95 <= 50 ms"))

    # As an agent opens a ticket: the cursor rests on the row a moment (reading it) before enter.
    rested, rested_backs = [], []
    for _ in range(args.repeat // 2):
        await moved("j")
        await asyncio.sleep(args.rest)
        rested.append(
            await timed_key(
                app, repaints, "enter", lambda: isinstance(app.screen, TicketScreen) and app.screen.detail is not None
            )
        )
        await pilot.pause()
        rested_backs.append(await timed_key(app, repaints, "escape", lambda: isinstance(app.screen, QueuesScreen)))
        await pilot.pause()
    figures.append(line(f"  open after the cursor rests {args.rest:g} s", rested, "ms", "p95 <= 50 ms"))
    figures.append(line("  back from it", rested_backs, "ms", "p95 <= 50 ms"))



async def live(
    app: ConsoleApp, pilot: Any, queue: QueuesScreen, url: str, args: argparse.Namespace, figures: list[str]
) -> None:
    """Live updates from another process, into the first department of the console's agent."""
    await pilot.press("g")
    department = queue.departments[0].department
    await pilot.press("1")
    await until(app, lambda: queue.department == department and queue.loaded)
    # A watcher notes when each row first shows, so the child's shutdown (which the parent waits for
    # before it reads the child's output) is not counted as latency.
    seen: dict[str, float] = {}

    async def watch() -> None:
        while True:
            now = time.time()
            for row in queue.rows:
                seen.setdefault(row.ref, now)
            await asyncio.sleep(0.001)

    watcher = asyncio.create_task(watch())
    lags = []
    try:
        for _ in range(args.live):
            script = CREATOR.format(root=str(ROOT), url=url, department=department)
            process = await asyncio.create_subprocess_exec(
                sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"the ticket-creating process failed: {err.decode()[-500:]}")
            ref, committed = out.decode().split()
            while ref not in seen:
                await asyncio.sleep(0.002)
            lags.append((seen[ref] - float(committed)) * 1000)
    finally:
        watcher.cancel()
    how = "PostgreSQL NOTIFY" if app.desk.db.dialect == "postgresql" else f"SQLite poll every {args.poll} s"
    figures.append(line("live update (other process)", lags, "ms", f"p95 <= 1000 ms ({how})"))
    figures.append(f"{'  polls folded while one ran':<34} {app.skipped_ticks}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--db", help="SQLite path or URL (default bench/data/scale-N.sqlite3)")
    parser.add_argument("--as", dest="as_", help="agent handle (default: the admin)")
    parser.add_argument("--repeat", type=int, default=40, help="key presses per measurement")
    parser.add_argument("--live", type=int, default=10, help="tickets created by another process")
    parser.add_argument("--poll", type=float, default=0.5, help="the console's live-feed interval in seconds")
    parser.add_argument(
        "--rest", type=float, default=0.3, help="seconds the cursor rests on a row before the second set of enters"
    )
    parser.add_argument("--only", choices=("all", "live"), default="all", help="live: only the live-update latency")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
