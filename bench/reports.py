"""Report benchmark: `Desk.report` on a big desk built by bench/scale.py.

    .venv/bin/python bench/reports.py [--db bench/data/scale-1000000.sqlite3] [--repeat 5] [--warm | --base]
    .venv/bin/python bench/reports.py --export [--db …] [--days 3650]

Runs the report the issue names (one year × department × week) and a few
other cuts as the desk's admin (a member of every department, so every query
covers the whole desk), `--repeat` times each, and prints medians against
the 1.5 s goal. The report day cache is on, as by default; `--base` turns it
off (the base SQL), `--warm` first runs the warm-up of `termdesk serve`
(`Desk.warm_report_cache`) and prints its time, the days it stored and its
longest write (the store of one chunk). With `--export` it instead streams every ticket created in
the last `--days` days through the CSV writer of `termdesk report --tickets`
into /dev/null and prints rows, time, the process's CPU time (steadier than
the wall clock on shared cores; SQLite's work runs in this process, a
PostgreSQL server's does not), and the process's peak RSS before and after
(run it alone: ru_maxrss is a high-water mark). It never asserts; a
missing desk is one sentence on how to build it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import Desk  # noqa: E402
from core.config import ReportSettings, Settings  # noqa: E402
from core.reports import ReportRequest, daycache  # noqa: E402
from storage.database import Database  # noqa: E402

GOAL_SECONDS = 1.5
CUTS = (("department", "week"), ("agent", "month"), ("channel", "day"), ("tag", "month"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=str(Path(__file__).resolve().parent / "data" / "scale-1000000.sqlite3"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--as", dest="handle", default="admin", help="the reader (default: the scale desk's admin)")
    parser.add_argument(
        "--cuts", default="", help="only these cuts, e.g. department:week,agent:month (default: all four)"
    )
    parser.add_argument(
        "--base", action="store_true",
        help="with [reports] day_cache off: the base SQL. With the cache (the default) the first run of each cut "
        "is printed apart (it fills what the cache lacks), the median is of the runs after it",
    )
    parser.add_argument(
        "--warm", action="store_true",
        help="first run the day cache warm-up ([reports] warm_days) and print its time and longest write",
    )
    parser.add_argument("--export", action="store_true", help="measure the streamed per-ticket export instead")
    parser.add_argument("--days", type=int, default=3650, help="the export's period, ending tomorrow")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    url = args.db if "://" in args.db else f"sqlite:///{args.db}"
    if "://" not in args.db and not Path(args.db).exists():
        sys.exit(f"No desk at {args.db}; build one with `.venv/bin/python bench/scale.py --tickets 1000000`.")
    if args.base and args.warm:
        sys.exit("Give --base or --warm, not both: the warm-up fills the cache --base does not read.")
    desk = Desk(Database(url), Settings(reports=ReportSettings(day_cache=not args.base)))
    if args.export:
        try:
            await export(desk, args)
        finally:
            await desk.close()
        return
    try:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        start = end - timedelta(days=365)
        if args.warm:
            await warm(desk)
        print(
            f"reports over {start:%Y-%m-%d} .. {end:%Y-%m-%d} on {args.db}, as {args.handle}; "
            f"median of {args.repeat} runs; day cache {'off' if args.base else 'on'}"
        )
        wanted = [tuple(cut.split(":")) for cut in args.cuts.split(",") if cut] or list(CUTS)
        for by, bucket in wanted:
            request = ReportRequest(start, end, by=by, bucket=bucket)
            times: list[float] = []
            rows = 0
            cold = ""
            if not args.base:
                began = time.perf_counter()
                await desk.report(args.handle, request)
                cold = f"; first run {(time.perf_counter() - began) * 1000:.0f} ms"
            for _ in range(args.repeat):
                began = time.perf_counter()
                report = await desk.report(args.handle, request)
                times.append(time.perf_counter() - began)
                rows = len(report.rows)
            median = statistics.median(times)
            verdict = "ok" if median <= GOAL_SECONDS else "MISSED"
            label = f"one year x {by} x {bucket}"
            print(
                f"  {label:<30} {median * 1000:8.0f} ms  ({rows:,} rows; goal ≤ {GOAL_SECONDS * 1000:.0f} ms: "
                f"{verdict})   runs: {', '.join(f'{t * 1000:.0f}' for t in times)}{cold}"
            )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of this process: {peak:.0f} MB")
    finally:
        await desk.close()


async def warm(desk: Desk) -> None:
    """The warm-up of `termdesk serve`, timed as a whole and per stored chunk (each a write transaction)."""
    writes: list[float] = []
    store = daycache.store

    async def timed_store(*args: Any, **kwargs: Any) -> int:
        began = time.perf_counter()
        try:
            return await store(*args, **kwargs)
        finally:
            writes.append(time.perf_counter() - began)

    daycache.store = timed_store  # type: ignore[assignment]
    try:
        began = time.perf_counter()
        stored = await desk.warm_report_cache()
        seconds = time.perf_counter() - began
    finally:
        daycache.store = store  # type: ignore[assignment]
    longest = max(writes, default=0.0)
    print(
        f"warm-up of {desk.settings.reports.warm_days} days: {stored:,} (grouping, day)s stored in {seconds:.1f} s, "
        f"{len(writes)} chunks; longest store {longest * 1000:.0f} ms, median "
        f"{statistics.median(writes) * 1000 if writes else 0:.0f} ms"
    )


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


async def export(desk: Desk, args: argparse.Namespace) -> None:
    """Peak RSS while every ticket of the period goes through the CLI's CSV writer to /dev/null."""
    from tui.report_commands import stream_tickets

    end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    start = end - timedelta(days=args.days)
    await desk.resolve(args.handle)  # connections and imports in place before the baseline
    baseline = _peak_mb()
    rows = 0

    async def counted() -> Any:
        nonlocal rows
        async for row in desk.export_tickets(args.handle, start, end):
            rows += 1
            yield row

    began, cpu_began = time.perf_counter(), time.process_time()
    stdout = sys.stdout
    with open(os.devnull, "w", encoding="utf-8") as sink:
        sys.stdout = sink
        try:
            await stream_tickets(counted(), as_json=False)
        finally:
            sys.stdout = stdout
    seconds, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    print(
        f"export of tickets created {start:%Y-%m-%d} .. {end:%Y-%m-%d} on {args.db}, as {args.handle}: "
        f"{rows:,} rows in {seconds:.1f} s ({rows / max(seconds, 1e-9):,.0f} rows/s; "
        f"this process's CPU {cpu:.2f} s, {rows / max(cpu, 1e-9):,.0f} rows per CPU second)"
    )
    print(f"  peak RSS: {baseline:.0f} MB before the export, {_peak_mb():.0f} MB after")


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
