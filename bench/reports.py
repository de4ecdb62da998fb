"""Report benchmark: `Desk.report` on a big desk built by bench/scale.py.

    .venv/bin/python bench/reports.py [--db bench/data/scale-1000000.sqlite3] [--repeat 5]

Runs the report the issue names (one year × department × week) and a few
other cuts as the desk's admin (a member of every department, so every query
covers the whole desk), `--repeat` times each, and prints medians against
the 1.5 s goal. It never asserts; a missing desk is one sentence on how to
build it.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import Desk  # noqa: E402
from core.reports import ReportRequest  # noqa: E402
from storage.database import Database  # noqa: E402

GOAL_SECONDS = 1.5
CUTS = (("department", "week"), ("agent", "month"), ("channel", "day"), ("tag", "month"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=str(Path(__file__).resolve().parent / "data" / "scale-1000000.sqlite3"))
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--as", dest="handle", default="admin", help="the reader (default: the scale desk's admin)")
    return parser.parse_args(argv)


async def run(args: argparse.Namespace) -> None:
    url = args.db if "://" in args.db else f"sqlite:///{args.db}"
    if "://" not in args.db and not Path(args.db).exists():
        sys.exit(f"No desk at {args.db}; build one with `.venv/bin/python bench/scale.py --tickets 1000000`.")
    desk = Desk(Database(url))
    try:
        end = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        start = end - timedelta(days=365)
        print(f"reports over {start:%Y-%m-%d} .. {end:%Y-%m-%d} on {args.db}, as {args.handle}; "
              f"median of {args.repeat} runs")
        for by, bucket in CUTS:
            request = ReportRequest(start, end, by=by, bucket=bucket)
            times: list[float] = []
            rows = 0
            for _ in range(args.repeat):
                began = time.perf_counter()
                report = await desk.report(args.handle, request)
                times.append(time.perf_counter() - began)
                rows = len(report.rows)
            median = statistics.median(times)
            verdict = "ok" if median <= GOAL_SECONDS else "MISSED"
            label = f"one year x {by} x {bucket}"
            print(f"  {label:<30} {median * 1000:8.0f} ms  ({rows:,} rows; goal ≤ {GOAL_SECONDS * 1000:.0f} ms: "
                  f"{verdict})   runs: {', '.join(f'{t * 1000:.0f}' for t in times)}")
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS of this process: {peak:.0f} MB")
    finally:
        await desk.close()


def main(argv: list[str] | None = None) -> None:
    asyncio.run(run(parse_args(argv)))


if __name__ == "__main__":
    main()
