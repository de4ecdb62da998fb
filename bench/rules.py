"""Rules and scheduler benchmark: rules per second over the change feed, and the time-based scan of a big desk.

    .venv/bin/python bench/rules.py [--events 100000] [--rules 50] [--scan-tickets 1000000] [--repeat 5]

Part 1 builds a fresh desk (`core.demo.build_demo`, about five events per
ticket) with enough tickets for `--events` change-feed events, adds `--rules`
active rules (mixed triggers; conditions on subject, body, sender domain,
department, tags, priority, regexes; few of them match, as on a real desk),
rewinds the rules' cursor and times `Automation.run_pending()` over the whole
feed: events per second, rule evaluations per second (each event against each
rule of its trigger), firings.

Part 2 opens (or builds, through bench/scale.py's `prepare`) the desk of
`--scan-tickets` tickets, gives every department an SLA policy, spreads
`sla_check_at` over its active tickets (a share of them due now), and times
the scheduler's passes: the first pass (announcing what is due) and the
steady-state pass (median of --repeat), plus the auto-close candidate query.
It prints figures; it never asserts. The SLA columns it sets are cleared at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, or_, select, text, update  # noqa: E402

from core import Desk  # noqa: E402
from core.demo import build_demo  # noqa: E402
from core.policy import Actor  # noqa: E402
from core.rules.engine import CURSOR, Automation  # noqa: E402
from core.rules.model import EVENT_TRIGGERS  # noqa: E402
from core.scheduler import Scheduler  # noqa: E402
from storage.database import Database  # noqa: E402
from storage.models import Department, Event, Ticket  # noqa: E402
from storage.rules import AutomationCursor, Rule  # noqa: E402
from storage.types import Status, utcnow  # noqa: E402

OPERATOR = Actor.operator()
EVENTS_PER_TICKET = 5.0  # what build_demo writes, about


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rules", type=int, default=50)
    parser.add_argument("--scan-tickets", type=int, default=1_000_000, help="0 skips part 2")
    parser.add_argument("--scan-db", help="an existing desk to scan instead of bench/scale.py's (it is upgraded)")
    parser.add_argument("--repeat", type=int, default=5)
    return parser.parse_args()


def make_rules(count: int, departments: list[str]) -> list[dict]:
    """A mixed set, most of which match rarely (as a desk's rules do)."""
    triggers = ["ticket_created", "customer_replied", "agent_replied", "status_changed", "note_added", "transferred"]
    shapes = [
        lambda n: [[{"field": "subject", "op": "contains", "value": f"order {n:03d}"}]],
        lambda n: [[{"field": "body", "op": "regex", "value": rf"invoice\s+#?{n}\d\b"}]],
        lambda n: [[{"field": "from_domain", "op": "ends", "value": f"shop{n}.example"}],
                   [{"field": "subject", "op": "starts", "value": "возврат"}]],
        lambda n: [[{"field": "department", "op": "equals", "value": departments[n % len(departments)]},
                    {"field": "priority", "op": "equals", "value": "urgent"},
                    {"field": "tag", "op": "not_contains", "value": "vip"}]],
        lambda n: [[{"field": "subject", "op": "contains", "value": "คืนเงิน"}],
                   [{"field": "subject", "op": "contains", "value": "trả hàng"}]],
        lambda n: [[{"field": "status", "op": "equals", "value": "pending"},
                    {"field": "hours_since_created", "op": "gt", "value": 24 * 365 * 5}]],
    ]
    rules = []
    for n in range(count):
        rules.append({
            "name": f"Bench rule {n:02d}",
            "trigger": triggers[n % len(triggers)],
            "when": shapes[n % len(shapes)](n),
            "actions": [{"do": "add_tag", "tags": [f"bench-{n}"]}],
            "order": n,
        })
    return rules


async def part_rules(args: argparse.Namespace) -> None:
    tickets = max(1, int(args.events / EVENTS_PER_TICKET))
    with tempfile.TemporaryDirectory() as folder:
        desk = Desk(Database(f"sqlite:///{folder}/rules-bench.sqlite3"))
        await desk.init()
        began = time.perf_counter()
        summary = await build_demo(desk, tickets=tickets, departments=6, agents=20, seed=11)
        print(f"built {summary.tickets:,} tickets, {summary.events:,} events in {time.perf_counter() - began:.1f} s",
              file=sys.stderr)
        names = [view.name for view in await desk.departments(OPERATOR)]
        for data in make_rules(args.rules, names):
            await desk.add_rule(OPERATOR, data)
        async with desk.db.writing() as session:
            # Replay the whole feed: the rules as if they had been on from the start.
            await session.execute(update(Rule).values(start_event_id=0))
            await session.execute(update(AutomationCursor).where(AutomationCursor.name == CURSOR)
                                  .values(last_event_id=0))
            kinds = dict((await session.execute(select(Event.kind, func.count()).group_by(Event.kind))).all())
            rules = (await session.execute(select(Rule.trigger))).scalars().all()
        total = sum(kinds.values())
        per_trigger = {
            trigger: sum(1 for rule in rules if rule["on"] == trigger) for trigger in EVENT_TRIGGERS.values()
        }
        evaluations = sum(count * per_trigger.get(EVENT_TRIGGERS.get(kind, ""), 0) for kind, count in kinds.items())
        began = time.perf_counter()
        fired = await Automation(desk.db).run_pending(batch=500)
        seconds = time.perf_counter() - began
        await desk.close()
    print(f"\nRules over the change feed (SQLite, {args.rules} active rules)")
    print(f"  events processed        {total:>12,}   in {seconds:.1f} s")
    print(f"  events per second       {total / seconds:>12,.0f}")
    print(f"  rule evaluations        {evaluations:>12,}   ({evaluations / seconds:,.0f} per second)")
    print(f"  firings                 {len(fired):>12,}")


async def timed(call, repeat: int) -> list[float]:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(repeat):
        began = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - began)
    return samples


async def part_scan(args: argparse.Namespace) -> None:
    from bench.scale import prepare

    if args.scan_db:
        desk = Desk(Database(args.scan_db))
    else:
        scale_args = argparse.Namespace(tickets=args.scan_tickets, db=None, rebuild=False, repeat=1, departments=12,
                                        agents=200, seed=7)
        desk, _ = await prepare(scale_args)
    await desk.init()  # to this schema, if the desk predates it
    rng = random.Random(5)
    now = utcnow()
    async with desk.db.reading() as session:
        departments = (await session.execute(select(Department.name))).scalars().all()
        total = (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()
    for name in departments:
        await desk.set_automation(OPERATOR, name, "sla", {"first_response": 240, "next_response": 480,
                                                          "resolution": 2880})
        await desk.set_automation(OPERATOR, name, "auto_close_days", 0)  # measured separately below
    async with desk.db.writing() as session:
        await session.execute(update(AutomationCursor).values(last_event_id=select(func.max(Event.id))
                                                              .scalar_subquery()))
        ids = (await session.execute(select(Ticket.id).where(Ticket.status.in_([Status.NEW.value, Status.OPEN.value])))
               ).scalars().all()
        due_now = set(rng.sample(ids, min(200, len(ids))))
        rows = [{"b_id": ticket_id, "b_at": now - timedelta(minutes=5) if ticket_id in due_now
                 else now + timedelta(minutes=rng.randrange(10, 7 * 24 * 60))} for ticket_id in ids]
        from sqlalchemy import bindparam

        statement = update(Ticket).where(Ticket.id == bindparam("b_id")).values(sla_check_at=bindparam("b_at"))
        connection = await session.connection()
        for start in range(0, len(rows), 20_000):
            await connection.execute(statement.execution_options(synchronize_session=False), rows[start:start + 20_000])
    scheduler = Scheduler(desk.db, clock=lambda: now)
    began = time.perf_counter()
    first = await scheduler.run_once()
    first_seconds = time.perf_counter() - began
    steady = await timed(scheduler.run_once, args.repeat)
    scan_only = await timed(lambda: scheduler.sla_scan(now), args.repeat)

    async def auto_close_candidates() -> None:
        cutoff = now - timedelta(days=3)
        async with desk.db.reading() as session:
            for name in departments:
                department_id = (await session.execute(select(Department.id).where(Department.name == name))).scalar()
                await session.execute(select(Ticket.id, Ticket.version).where(
                    Ticket.department_id == department_id, Ticket.status == Status.PENDING.value,
                    Ticket.updated_at <= cutoff,
                    or_(Ticket.last_customer_message_at.is_(None), Ticket.last_customer_message_at <= cutoff),
                ).limit(500))

    closing = await timed(auto_close_candidates, args.repeat)

    async def full_scan() -> None:  # what the index saves: the same question without it
        async with desk.db.reading() as session:
            await session.execute(text("SELECT count(*) FROM tickets NOT INDEXED WHERE sla_check_at <= :now"),
                                  {"now": now.replace(tzinfo=None)})

    unindexed = await timed(full_scan, max(1, args.repeat // 2)) if desk.db.is_sqlite else []
    async with desk.db.writing() as session:  # leave the shared benchmark desk as it was
        await session.execute(update(Ticket).where(Ticket.sla_check_at.is_not(None))
                              .values(sla_check_at=None, sla_state=None, first_response_due=None,
                                      next_response_due=None, resolution_due=None)
                              .execution_options(synchronize_session=False))
    await desk.close()
    print(f"\nTime-based scan over {total:,} tickets ({len(ids):,} active with an SLA moment, {len(due_now)} due)")
    print(f"  first pass (announces)  {first_seconds * 1000:>10.0f} ms   {first}")
    print(f"  steady pass, median     {statistics.median(steady) * 1000:>10.0f} ms   (max {max(steady) * 1000:.0f})")
    print(f"  SLA scan alone, median  {statistics.median(scan_only) * 1000:>10.1f} ms")
    print(f"  auto-close candidates   {statistics.median(closing) * 1000:>10.1f} ms   ({len(departments)} departments)")
    if unindexed:
        print(f"  same question unindexed {statistics.median(unindexed) * 1000:>10.0f} ms   (for comparison)")


async def main() -> None:
    args = parse_args()
    if args.events:
        await part_rules(args)
    if args.scan_tickets:
        await part_scan(args)


if __name__ == "__main__":
    asyncio.run(main())
