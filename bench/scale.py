"""Scale benchmark: build (or reuse) a desk of a million tickets and time the calls the screens make most.

    .venv/bin/python bench/scale.py --tickets 1000000 [--db PATH|postgresql://…] [--rebuild] [--repeat N]

Everything is measured through the real `Desk` API, as the admin (a member of
all departments, so every query covers the whole desk). It prints medians
and 90th percentiles next to the targets of issue #2; it never asserts.
The desk is built by `core.demo.build_demo` into bench/data/ (git-ignored)
and reused while it holds the asked number of tickets.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select, text  # noqa: E402

from core import Desk  # noqa: E402
from core.demo import build_demo  # noqa: E402
from core.views import QueueFilter  # noqa: E402
from storage.database import Database, refresh_statistics  # noqa: E402
from storage.errors import SchemaMissing  # noqa: E402
from storage.models import Agent, Membership, Ticket  # noqa: E402
from storage.schema import require_current_schema  # noqa: E402

DATA = Path(__file__).resolve().parent / "data"
LONG_THREAD = 50
DEEP = 10_000
PAGE = 50


@dataclass(frozen=True)
class Figure:
    name: str
    target_ms: float | None
    samples: list[float]

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def p90(self) -> float:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tickets", type=int, default=1_000_000)
    parser.add_argument("--db", help="SQLite file path or postgresql://… URL (default bench/data/scale-N.sqlite3)")
    parser.add_argument("--rebuild", action="store_true", help="build the desk again even if it exists")
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per measurement")
    parser.add_argument("--departments", type=int, default=12)
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if args.tickets < 1 or args.repeat < 1:
        parser.error("--tickets and --repeat must be at least 1")
    return args


def is_postgres(target: str) -> bool:
    return target.startswith(("postgresql:", "postgres:", "postgresql+asyncpg:"))


async def ticket_count(desk: Desk) -> int | None:
    """How many tickets the desk holds, or None when it has no schema yet."""
    try:
        async with desk.db.reading() as session:
            return int((await session.execute(select(func.count()).select_from(Ticket))).scalar_one())
    except Exception:
        return None


async def schema_is_current(desk: Desk) -> bool:
    try:
        await require_current_schema(desk.db)
    except SchemaMissing:
        return False
    return True


async def reset_postgres(desk: Desk) -> None:
    """Empty the benchmark database: only ever run on --rebuild against a URL the user gave."""
    async with desk.db.writing() as session:
        await session.execute(text("DROP SCHEMA public CASCADE"))
        await session.execute(text("CREATE SCHEMA public"))


def report_progress(began: float) -> Callable[[int, int], None]:
    def show(done: int, total: int) -> None:
        elapsed = time.perf_counter() - began
        rate = done / elapsed if elapsed else 0.0
        eta = (total - done) / rate if rate else 0.0
        print(
            f"\r  {done:>9,} / {total:,} tickets  {rate:,.0f}/s  eta {eta:,.0f} s   ",
            end="",
            file=sys.stderr,
            flush=True,
        )
        if done == total:
            print(file=sys.stderr)

    return show


async def prepare(args: argparse.Namespace) -> tuple[Desk, dict[str, Any]]:
    """Open the benchmark desk, building it first when it is missing, wrong-sized or --rebuild is given."""
    target = args.db or str(DATA / f"scale-{args.tickets}.sqlite3")
    sidecar = None if is_postgres(target) else Path(target).with_suffix(".json")
    if not is_postgres(target) and args.rebuild:
        for suffix in ("", "-wal", "-shm"):
            Path(target + suffix).unlink(missing_ok=True)
    desk = Desk(Database(target))
    count = await ticket_count(desk)
    if count is not None and not await schema_is_current(desk):
        if is_postgres(target) and not args.rebuild:
            await desk.close()
            raise SystemExit(
                f"The database {desk.db.display_url} was built by an older termdesk schema; "
                "give --rebuild to empty it and build again."
            )
        print("the benchmark desk has an older schema; building it again", file=sys.stderr)
        count = -1  # never reused
    if count == args.tickets and not args.rebuild:
        # A schema upgrade (`termdesk init`) may have rebuilt a table; `init` refreshes the statistics,
        # but a desk upgraded by an older termdesk has none for it. Cheap when nothing is stale.
        analysed = await refresh_statistics(desk.db)
        if analysed:
            print(f"refreshed planner statistics of {', '.join(analysed)}", file=sys.stderr)
        info = json.loads(sidecar.read_text()) if sidecar and sidecar.exists() else {}
        info["reused"] = True
        return desk, info
    if count and is_postgres(target) and not args.rebuild:
        await desk.close()
        raise SystemExit(
            f"The database {desk.db.display_url} holds {count:,} tickets, not {args.tickets:,}; "
            "give --rebuild to empty it and build again."
        )
    if count and not is_postgres(target):
        await desk.close()
        for suffix in ("", "-wal", "-shm"):
            Path(target + suffix).unlink(missing_ok=True)
        desk = Desk(Database(target))
    elif count is not None and is_postgres(target) and args.rebuild:
        await reset_postgres(desk)
    await desk.init()
    print(f"building {args.tickets:,} tickets into {desk.db.display_url} …", file=sys.stderr)
    began = time.perf_counter()
    summary = await build_demo(
        desk,
        tickets=args.tickets,
        departments=args.departments,
        agents=args.agents,
        seed=args.seed,
        long_thread=LONG_THREAD,
        progress=report_progress(began),
    )
    info = {
        "build_seconds": round(summary.seconds, 1),
        "tickets": summary.tickets,
        "messages": summary.messages,
        "events": summary.events,
        "contacts": summary.contacts,
        "departments": summary.departments,
        "agents": summary.agents,
        "long_thread_ref": summary.long_thread_ref,
        "reused": False,
    }
    if sidecar is not None:
        sidecar.write_text(json.dumps(info, indent=2))
    return desk, info


async def timed(call: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    await call()  # warm the caches and the connection pool; not counted
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - began) * 1000)
    return samples


async def find_long_thread(desk: Desk, info: dict[str, Any]) -> str:
    ref = info.get("long_thread_ref")
    if ref:
        return str(ref)
    async with desk.db.reading() as session:
        ticket_id = (
            await session.execute(select(Ticket.id).order_by(Ticket.message_count.desc()).limit(1))
        ).scalar_one()
    return desk.ref(ticket_id)


async def one_department_agent(desk: Desk) -> tuple[str, str]:
    """A plain agent with exactly one department, and that department: the everyday queue."""
    async with desk.db.reading() as session:
        row = (
            await session.execute(
                select(Agent.handle, func.min(Membership.department_id))
                .join(Membership, Membership.agent_id == Agent.id)
                .where(Agent.role == "agent")
                .group_by(Agent.id, Agent.handle)
                .having(func.count() == 1)
                .order_by(Agent.id)
                .limit(1)
            )
        ).one()
    handle, department_id = row
    departments = {view.id: view.name for view in await desk.departments(handle)}
    return handle, departments[department_id]


async def selective_term(desk: Desk, admin: str) -> str:
    """An order or invoice number from a recent ticket's subject: a term that matches a handful of tickets."""
    page = await desk.queue(admin, QueueFilter(limit=200))
    for row in page.rows:
        match = re.search(r"INV-\d{4}-\d{5}|\b\d{7}\b", row.subject)
        if match:
            return match.group(0)
    return "INV-2025"


async def measure(desk: Desk, info: dict[str, Any], repeat: int) -> list[Figure]:
    admin = "admin"
    agent, department = await one_department_agent(desk)
    long_ref = await find_long_thread(desk, info)
    term = await selective_term(desk, admin)
    figures: list[Figure] = []

    async def add(name: str, target: float | None, call: Callable[[], Awaitable[Any]]) -> None:
        print(f"  measuring {name} …", file=sys.stderr, flush=True)
        figures.append(Figure(name, target, await timed(call, repeat)))

    await add("counts: all 12 departments (admin)", 20, lambda: desk.counts(admin))
    await add(f"counts: one department ({agent})", 20, lambda: desk.counts(agent))
    await add("queue: first page, all departments", 30, lambda: desk.queue(admin, QueueFilter(limit=PAGE)))
    await add(
        "queue: first page, status open",
        30,
        lambda: desk.queue(admin, QueueFilter(statuses=("open",), limit=PAGE)),
    )
    await add(
        f"queue: first page, {department} new+open",
        30,
        lambda: desk.queue(agent, QueueFilter(department=department, statuses=("new", "open"), limit=PAGE)),
    )

    # Walk the keyset cursor 10,000 rows deep (not timed), then time the next page from there.
    cursor = None
    walked = 0
    while walked < DEEP:
        page = await desk.queue(admin, QueueFilter(limit=500, cursor=cursor))
        walked += len(page.rows)
        cursor = page.next_cursor
        if cursor is None:
            break
    if cursor is not None:
        deep_cursor = cursor
        await add(
            f"queue: page {walked:,} rows deep (keyset)",
            30,
            lambda: desk.queue(admin, QueueFilter(limit=PAGE, cursor=deep_cursor)),
        )

    detail = await desk.ticket(admin, long_ref)
    await add(f"open ticket {long_ref} ({len(detail.messages)} messages)", 30, lambda: desk.ticket(admin, long_ref))

    for label, query in (
        (f"search: selective {term!r}", term),
        ("search: common word 'refund'", "refund"),
        ("search: Thai 'คืนเงิน'", "คืนเงิน"),
        ("search: Vietnamese 'hoàn tiền'", "hoàn tiền"),
    ):
        await add(label, 200, lambda query=query: desk.queue(admin, QueueFilter(text=query, limit=PAGE)))  # type: ignore[misc]
    first = await desk.queue(admin, QueueFilter(text="refund", limit=PAGE))
    if first.next_cursor is not None:
        next_cursor = first.next_cursor
        await add(
            "search: 'refund', second page",
            200,
            lambda: desk.queue(admin, QueueFilter(text="refund", limit=PAGE, cursor=next_cursor)),
        )
    await add(
        f"search: 'refund', {department} open ({agent})",
        200,
        lambda: desk.queue(agent, QueueFilter(text="refund", department=department, statuses=("open",), limit=PAGE)),
    )
    return figures


def print_table(figures: list[Figure], info: dict[str, Any], url: str, repeat: int) -> None:
    print()
    print(
        f"termdesk scale bench: {info.get('tickets', '?'):,} tickets, {info.get('messages', 0):,} messages, "
        f"{info.get('events', 0):,} events, {info.get('departments', '?')} departments, "
        f"{info.get('agents', '?')} agents"
    )
    print(f"database: {url}")
    build = info.get("build_seconds")
    when = "reused; built earlier in" if info.get("reused") else "built in"
    print(f"build: {when} {build:,.1f} s" if build is not None else "build: reused (build time unknown)")
    print(f"timings over {repeat} runs after one warm-up, in ms")
    print()
    width = max(len(figure.name) for figure in figures)
    print(f"{'measure':<{width}}  {'target':>7}  {'median':>8}  {'p90':>8}")
    for figure in figures:
        target = f"≤ {figure.target_ms:.0f}" if figure.target_ms is not None else ""
        verdict = ""
        if figure.target_ms is not None:
            verdict = "ok" if figure.median <= figure.target_ms else "MISSED"
        print(f"{figure.name:<{width}}  {target:>7}  {figure.median:>8.2f}  {figure.p90:>8.2f}  {verdict}")


async def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    desk, info = await prepare(args)
    try:
        if "tickets" not in info:
            info.update(tickets=await ticket_count(desk), departments=args.departments, agents=args.agents)
        figures = await measure(desk, info, args.repeat)
        print_table(figures, info, desk.db.display_url, args.repeat)
    finally:
        await desk.close()


if __name__ == "__main__":
    asyncio.run(main())
