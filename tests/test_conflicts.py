"""Agents working at once: stale writes are conflicts, never silent overwrites; SQLite writers queue, never fail."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from core import Desk, tickets
from core.errors import Conflict
from core.views import QueueFilter
from storage.database import Database
from storage.models import Event, Message, Ticket
from tests.desk_fixtures import build_world, module_db_url, new_ticket, ticket_state  # noqa: F401

ROOT = Path(__file__).resolve().parents[1]

STALE_WRITES: dict[str, Callable[[Desk, str, int], Awaitable[Any]]] = {
    "reply": lambda d, r, v: d.reply("bill", r, "late reply", expected_version=v),
    "reply-with-status": lambda d, r, v: d.reply("bill", r, "late", expected_version=v, status="resolved"),
    "note": lambda d, r, v: d.note("bill", r, "late note", expected_version=v),
    "transfer": lambda d, r, v: d.transfer("bill", r, "Technical", note="late", expected_version=v),
    "assign": lambda d, r, v: d.assign("bill", r, "bill", expected_version=v),
    "set_status": lambda d, r, v: d.set_status("bill", r, "pending", expected_version=v),
    "set_priority": lambda d, r, v: d.set_priority("bill", r, "urgent", expected_version=v),
    "tag": lambda d, r, v: d.tag("bill", r, add=["late"], expected_version=v),
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared_desk(module_db_url: str) -> AsyncIterator[Desk]:  # noqa: F811
    desk = Desk(Database(module_db_url))
    await desk.init()
    await build_world(desk)
    yield desk
    await desk.close()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("write", STALE_WRITES)
async def test_stale_expected_version_is_a_conflict_and_writes_nothing(shared_desk: Desk, write: str) -> None:
    desk = shared_desk
    ref = (await new_ticket(desk, "Billing", f"Stale {write}")).ref
    seen = (await desk.ticket("bill", ref)).ticket.version
    await desk.set_priority("sup", ref, "high")  # someone else changes the ticket meanwhile
    before = await ticket_state(desk, ref)
    assert before["version"] == seen + 1
    with pytest.raises(Conflict) as error:
        await STALE_WRITES[write](desk, ref, seen)
    assert "reload" in str(error.value)
    assert await ticket_state(desk, ref) == before
    assert await desk.check_counters(repair=False) == 0
    # With the version the screen now shows, the same write goes through.
    row = await STALE_WRITES[write](desk, ref, before["version"])
    assert row.version == before["version"] + 1


async def race(
    first: Callable[[], Awaitable[Any]], second: Callable[[], Awaitable[Any]]
) -> tuple[list[Any], list[BaseException]]:
    results = await asyncio.gather(first(), second(), return_exceptions=True)
    won = [result for result in results if not isinstance(result, BaseException)]
    lost = [result for result in results if isinstance(result, BaseException)]
    return won, lost


@pytest.fixture
def both_load_before_either_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hold the first two ticket writes until both transactions have loaded the ticket: a true race.

    Only the first two: a blind write that lost is run again, and that re-run must not wait.
    """
    barrier = asyncio.Barrier(2)
    original = tickets.apply_change
    calls = 0

    async def synchronised(*args: Any, **kwargs: Any) -> bool:
        nonlocal calls
        calls += 1
        if calls <= 2:
            await asyncio.wait_for(barrier.wait(), timeout=10)
        return await original(*args, **kwargs)

    monkeypatch.setattr(tickets, "apply_change", synchronised)


RACES: dict[str, Callable[[Desk, str, int | None], Awaitable[Any]]] = {
    "reply": lambda d, r, v: d.reply("bill", r, "mine", expected_version=v),
    "status": lambda d, r, v: d.set_status("bill", r, "pending", expected_version=v),
    "assign": lambda d, r, v: d.assign("bill", r, "sup", expected_version=v),
}


@pytest.mark.postgres
@pytest.mark.parametrize("kind", RACES)
async def test_concurrent_writes_on_postgres_one_wins_the_other_conflicts(
    postgres_url: str, both_load_before_either_writes: None, kind: str
) -> None:
    """Two processes' worth of engines; both read version N, both write: one commit, one Conflict."""
    first = Desk(Database(postgres_url))
    second = Desk(Database(postgres_url))
    try:
        await first.init()
        world = await build_world(first)
        ref = world.ref("billing")
        before = await ticket_state(first, ref)
        version = before["version"]
        act = RACES[kind]
        other: Callable[[Desk, str, int | None], Awaitable[Any]] = {
            "reply": lambda d, r, v: d.reply("sup", r, "theirs", expected_version=v),
            "status": lambda d, r, v: d.set_status("sup", r, "resolved", expected_version=v),
            "assign": lambda d, r, v: d.assign("sup", r, "bill", expected_version=v),
        }[kind]
        won, lost = await race(lambda: act(first, ref, version), lambda: other(second, ref, version))
        assert len(won) == 1, f"both writes went through: {won}"
        assert len(lost) == 1 and isinstance(lost[0], Conflict), lost
        after = await ticket_state(second, ref)
        assert after["version"] == before["version"] + 1
        assert after["events"] == before["events"] + 1
        assert after["messages"] == before["messages"] + (1 if kind == "reply" else 0)
        assert after["message_count"] == after["messages"]
        detail = await second.ticket("sup", ref)
        winner = won[0]
        assert (detail.ticket.status, detail.ticket.assignee) == (winner.status, winner.assignee)
        assert await second.check_counters(repair=False) == 0
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
@pytest.mark.parametrize("kind", RACES)
async def test_concurrent_blind_writes_on_postgres_both_apply_in_turn(
    postgres_url: str, both_load_before_either_writes: None, kind: str
) -> None:
    """Without a version the loser of the race is re-run on the fresh row, as SQLite would serialise it."""
    first = Desk(Database(postgres_url))
    second = Desk(Database(postgres_url))
    try:
        await first.init()
        world = await build_world(first)
        ref = world.ref("billing")
        before = await ticket_state(first, ref)
        version = None
        act = RACES[kind]
        other: Callable[[Desk, str, int | None], Awaitable[Any]] = {
            "reply": lambda d, r, v: d.reply("sup", r, "theirs", expected_version=v),
            "status": lambda d, r, v: d.set_status("sup", r, "resolved", expected_version=v),
            "assign": lambda d, r, v: d.assign("sup", r, "bill", expected_version=v),
        }[kind]
        won, lost = await race(lambda: act(first, ref, version), lambda: other(second, ref, version))
        assert lost == [] and len(won) == 2
        after = await ticket_state(second, ref)
        assert after["version"] == before["version"] + 2
        assert after["events"] == before["events"] + 2
        assert after["messages"] == before["messages"] + (2 if kind == "reply" else 0)
        assert after["message_count"] == after["messages"]
        assert await second.check_counters(repair=False) == 0
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("kind", RACES)
async def test_concurrent_writes_with_the_same_seen_version_one_wins(desk: Desk, db_url: str, kind: str) -> None:
    """Both back ends: two desks (engines) write with the version both screens showed."""
    other_desk = Desk(Database(db_url))
    try:
        world = await build_world(desk)
        ref = world.ref("billing")
        before = await ticket_state(desk, ref)
        act = RACES[kind]
        won, lost = await race(
            lambda: act(desk, ref, int(before["version"])),  # type: ignore[call-overload]
            lambda: act(other_desk, ref, int(before["version"])),  # type: ignore[call-overload]
        )
        assert len(won) == 1 and len(lost) == 1 and isinstance(lost[0], Conflict), (won, lost)
        after = await ticket_state(desk, ref)
        assert after["version"] == before["version"] + 1
        assert after["events"] == before["events"] + 1
        assert after["message_count"] == after["messages"]
    finally:
        await other_desk.close()


# -- two OS processes on one SQLite file --------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import asyncio, json, sys, time, traceback
    sys.path.insert(0, {root!r})
    from core import Desk
    from core.policy import Actor
    from core.views import Intake
    from storage.database import Database

    async def main(url, name, start, seconds, shared_ref):
        desk = Desk(Database(url))
        done = {{"created": 0, "replied": 0, "tagged": 0, "noted": 0, "read": 0, "errors": []}}
        while time.time() < start:
            await asyncio.sleep(0.005)
        deadline = start + seconds
        i = 0
        # A fixed minimum of work, so a loaded machine slows the test instead of failing it.
        while i < 15 or time.time() < deadline:
            i += 1
            try:
                row = await desk.create_ticket(Actor.system(), Intake(
                    department="Billing" if i % 2 else "Technical", contact_email=f"{{name}}-{{i % 7}}@example.org",
                    subject=f"{{name}} ticket {{i}}", body="concurrent body"))
                done["created"] += 1
                await desk.reply("both", row.ref, f"{{name}} reply {{i}}")
                done["replied"] += 1
                await desk.tag("both", row.ref, add=[name, f"n{{i % 3}}"])
                done["tagged"] += 1
                await desk.note("both", shared_ref, f"{{name}} note {{i}}")
                done["noted"] += 1
                await desk.counts("both")
                done["read"] += 1
            except Exception as error:
                done["errors"].append(f"{{type(error).__name__}}: {{error}}")
                if len(done["errors"]) > 20:
                    break
        await desk.close()
        print(json.dumps(done))

    asyncio.run(main(*sys.argv[1:3], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]))
    """
).format(root=str(ROOT))


@pytest.mark.slow
async def test_two_processes_writing_one_sqlite_file_never_see_database_is_locked(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.sqlite3'}"
    desk = Desk(Database(url))
    try:
        await desk.init()
        await build_world(desk)
        shared_ref = (await new_ticket(desk, "Billing", "Everyone notes here")).ref
        before_tickets = len((await desk.queue("both", QueueFilter(limit=500))).rows)
        start = time.time() + 2.0  # both processes past their imports before the clock starts
        processes = [
            subprocess.Popen(
                [sys.executable, "-c", WRITER, url, name, str(start), "3.0", shared_ref],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=str(ROOT),
            )
            for name in ("alpha", "beta")
        ]
        reports = []
        for process in processes:
            out, err = await asyncio.to_thread(process.communicate, timeout=60)
            assert process.returncode == 0, err
            assert "database is locked" not in err.lower()
            reports.append(json.loads(out.strip().splitlines()[-1]))
        for report in reports:
            assert report["errors"] == [], report["errors"]
            assert report["created"] >= 15, f"a writer stopped early: {report}"
            assert report["created"] == report["replied"] == report["tagged"] == report["noted"]
        created = sum(report["created"] for report in reports)
        notes = sum(report["noted"] for report in reports)

        async with desk.db.reading() as session:
            ticket_total = (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()
            message_total = (await session.execute(select(func.count()).select_from(Message))).scalar_one()
            replies = (
                await session.execute(select(func.count()).select_from(Message).where(Message.kind == "reply"))
            ).scalar_one()
            created_events = (
                await session.execute(select(func.count()).select_from(Event).where(Event.kind == "ticket.created"))
            ).scalar_one()
        assert ticket_total == 5 + created  # the world's four, the shared one, and the work
        assert created_events == ticket_total
        assert replies == created
        assert message_total == ticket_total + created + notes
        shared = await ticket_state(desk, shared_ref)
        assert shared["messages"] == shared["message_count"] == 1 + notes  # no lost update on the shared ticket
        assert len((await desk.queue("both", QueueFilter(limit=500, tag="alpha"))).rows) == min(
            reports[0]["created"], 500
        )
        assert await desk.check_counters(repair=False) == 0
        counts = await desk.counts("both")
        assert sum(c.new + c.open + c.pending for c in counts) == before_tickets + created
        assert sum(c.open for c in counts) == created
    finally:
        await desk.close()
