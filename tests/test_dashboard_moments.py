"""The dashboard's stored SLA moments, waits and load counters against a recount from scratch, after random
changes through every desk write path, on SQLite and PostgreSQL; and the backfill of migration 0010.

The recount is the definition the dashboard had before it kept these (one pass over every active ticket,
computing each running clock from the department's policy): if a write path forgot a moment, or a counter
drifted, the two disagree.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from core import Desk
from core.errors import BadArgument, Conflict
from core.policy import Actor
from core.sla import backfill_moments, moments, policy_of, waiting_since
from core.tickets import add_customer_message
from core.views import Intake
from storage.models import Agent, Department, Message, Ticket

ALWAYS = {"first_response": 30, "next_response": 60, "resolution": 240, "at_risk": 0.5}
OFFICE = {
    "calendar": {"timezone": "UTC", **{day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}},
    "first_response": 120,
    "resolution": 960,
}


async def _desk_with_history(desk: Desk, seed: int, steps: int = 60) -> None:
    operator = Actor.operator()
    for name, policy in (("Billing", ALWAYS), ("Technical", OFFICE), ("Returns", None)):
        await desk.add_department(operator, name, email=f"{name.lower()}@example.com")
        if policy:
            await desk.set_automation(operator, name, "sla", policy)
    for handle, departments in (("ann", ["Billing", "Technical"]), ("bob", ["Technical", "Returns"])):
        await desk.add_agent(operator, handle, name=handle.title(), email=f"{handle}@example.com",
                             departments=departments, role="supervisor")
    await desk.add_agent(operator, "boss", name="Boss", email="boss@example.com", role="admin",
                         departments=["Billing", "Technical", "Returns"])
    rng = random.Random(seed)
    refs: list[str] = []
    for step in range(steps):
        action = rng.choice(("create", "create", "reply", "note", "customer", "status", "assign", "transfer",
                             "priority"))
        if action == "create" or not refs:
            row = await desk.create_ticket(operator, Intake(
                department=rng.choice(("Billing", "Technical", "Returns")), subject=f"Ticket {step}",
                body="Help", contact_email=f"c{rng.randint(1, 5)}@example.org",
                priority=rng.choice(("low", "normal", "high", "urgent"))))
            refs.append(row.ref)
            continue
        ref = rng.choice(refs)
        try:
            match action:
                case "reply":
                    await desk.reply("boss", ref, "Answer", status=rng.choice((None, "pending", "resolved")))
                case "note":
                    await desk.note("boss", ref, "Internal")
                case "customer":
                    await _customer_writes(desk, ref)
                case "status":
                    await desk.set_status("boss", ref, rng.choice(("open", "pending", "resolved", "closed")))
                case "assign":
                    await desk.assign("boss", ref, rng.choice(("ann", "bob", "boss")))
                case "transfer":
                    await desk.transfer("boss", ref, rng.choice(("Billing", "Technical", "Returns")))
                case "priority":
                    await desk.set_priority("boss", ref, rng.choice(("low", "high", "urgent")))
        except (BadArgument, Conflict):
            pass  # refused (same department, not a member, closed ticket): nothing written


async def _customer_writes(desk: Desk, ref: str) -> None:
    """The customer answers, as mail intake records it (core.tickets.add_customer_message)."""
    ticket_id = int(ref.rsplit("-", 1)[1])
    async with desk.db.writing() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        if ticket.status == "closed":
            return
        message = Message(body_text="Any news?", created_at=datetime.now(UTC))
        await add_customer_message(session, Actor.system(), ticket, message, data={})


async def _recount(desk: Desk, now: datetime) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    """Per department: breached, at risk, oldest wait; per agent: load — from every ticket, in Python."""
    departments: dict[str, dict[str, Any]] = {}
    load: dict[str, int] = defaultdict(int)
    async with desk.db.reading() as session:
        names = {d.id: d for d in (await session.execute(select(Department))).scalars()}
        handles = {a.id: a.handle for a in (await session.execute(select(Agent))).scalars()}
        for department in names.values():
            departments[department.name] = {"sla_breached": 0, "sla_at_risk": 0, "waiting_since": None}
        for ticket in (await session.execute(select(Ticket))).scalars():
            row = departments[names[ticket.department_id].name]
            if ticket.status in ("new", "open", "pending") and ticket.assignee_id is not None:
                load[handles[ticket.assignee_id]] += 1
            if ticket.status not in ("new", "open"):
                continue
            policy = policy_of(names[ticket.department_id])
            running = moments(policy, ticket) if policy else []
            if any(due < now for _, _, due in running):
                row["sla_breached"] += 1
            elif any(warn <= now for _, warn, _ in running):
                row["sla_at_risk"] += 1
            since = waiting_since(ticket)
            if since is not None and (row["waiting_since"] is None or since < row["waiting_since"]):
                row["waiting_since"] = since
    return departments, load


def _shown(board: Any) -> tuple[dict[str, dict[str, Any]], dict[str, int]]:
    departments = {
        row.department: {"sla_breached": row.sla_breached, "sla_at_risk": row.sla_at_risk,
                         "waiting_since": row.waiting_since}
        for row in board.departments
    }
    return departments, {row.handle: row.load for row in board.agents if row.load}


async def test_dashboard_equals_a_recount_after_random_changes_on_every_write_path(desk: Desk) -> None:
    await _desk_with_history(desk, seed=7)
    assert await desk.check_counters(repair=False) == 0  # queue and agent-load counters alike
    # The same desk seen at several moments: now, and later when dues have passed and risks have come.
    for hours in (0, 0.4, 0.9, 3, 30, 24 * 8):
        now = datetime.now(UTC) + timedelta(hours=hours)
        assert _shown(await desk.dashboard("boss", now=now)) == await _recount(desk, now), f"{hours} h ahead"


async def test_backfill_after_migration_0010_sets_the_moments_the_write_paths_set(desk: Desk) -> None:
    await _desk_with_history(desk, seed=11, steps=40)
    columns = (Ticket.id, Ticket.sla_risk_at, Ticket.sla_breach_at)
    async with desk.db.reading() as session:
        kept = (await session.execute(select(*columns).order_by(Ticket.id))).all()
    assert any(row.sla_breach_at for row in kept)
    async with desk.db.writing() as session:  # as an upgraded desk has them before `init` fills them
        await session.execute(update(Ticket).values(sla_risk_at=None, sla_breach_at=None))
        await backfill_moments(session, batch=7)
    async with desk.db.reading() as session:
        assert (await session.execute(select(*columns).order_by(Ticket.id))).all() == kept


async def test_upgrading_a_desk_to_0010_fills_the_moments_waits_and_load_counters(desk: Desk) -> None:
    """Down to 0009 (the columns and counters gone) and `termdesk init` again: the migration and the
    backfill give every ticket what the write paths had given it, and the dashboard is the same."""
    from alembic import command
    from sqlalchemy.engine import Connection

    from storage.migrate import alembic_config
    from storage.schema import SCHEMA_REVISION

    await _desk_with_history(desk, seed=3, steps=50)
    columns = (Ticket.id, Ticket.sla_risk_at, Ticket.sla_breach_at, Ticket.waiting_since)
    async with desk.db.reading() as session:
        kept = (await session.execute(select(*columns).order_by(Ticket.id))).all()
    later = datetime.now(UTC) + timedelta(hours=2)
    board = _shown(await desk.dashboard("boss", now=later))
    config = alembic_config()

    def down(connection: Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, "0009")

    async with desk.db.write_engine.begin() as connection:
        await connection.run_sync(down)
    assert await desk.init() == ("0009", SCHEMA_REVISION)
    async with desk.db.reading() as session:
        assert (await session.execute(select(*columns).order_by(Ticket.id))).all() == kept
    assert await desk.check_counters(repair=False) == 0
    assert _shown(await desk.dashboard("boss", now=later)) == board
