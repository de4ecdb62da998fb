"""SLA due times in business time: targets per department and priority, pending pauses the clocks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core import Desk
from core.errors import BadArgument
from core.policy import Actor
from core.sla import compute, parse_policy
from core.views import Intake
from storage.models import Ticket

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = {"timezone": "UTC", **{day: ["08:00-17:00"] for day in WEEKDAYS}}
POLICY = {
    "calendar": OFFICE,
    "first_response": 120,
    "next_response": 240,
    "resolution": 1080,
    "priorities": {"urgent": {"first_response": 30}},
}


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class FakeRow:
    """The ticket fields `compute` reads (a Ticket, or a row of the batch path)."""

    status: str = "new"
    priority: int = 1
    created_at: datetime = t("2026-11-20 16:00")  # a Friday
    first_response_at: datetime | None = None
    last_customer_message_at: datetime | None = t("2026-11-20 16:00")
    last_agent_reply_at: datetime | None = None
    first_response_due: datetime | None = None
    resolution_due: datetime | None = None
    sla_state: dict[str, Any] | None = None


def test_first_response_due_counts_business_time_only() -> None:
    clocks = compute(parse_policy(POLICY), FakeRow(), t("2026-11-20 16:00"))
    assert clocks.first_response_due == t("2026-11-23 09:00")  # 1 h Friday + 1 h Monday
    assert clocks.resolution_due == t("2026-11-24 16:00")  # 18 business hours: 1 Fri + 9 Mon + 8 Tue
    assert clocks.next_response_due is None
    assert clocks.sla_check_at == t("2026-11-23 08:36")  # 80 % of 120 min: 96 min


@pytest.mark.parametrize(
    ("priority", "due"), [(3, "2026-11-20 16:30"), (1, "2026-11-23 09:00"), (0, "2026-11-23 09:00")]
)
def test_priority_targets_override_the_default(priority: int, due: str) -> None:
    clocks = compute(parse_policy(POLICY), FakeRow(priority=priority), t("2026-11-20 16:00"))
    assert clocks.first_response_due == t(due)


def test_next_response_runs_from_the_customers_latest_message_after_a_first_reply() -> None:
    row = FakeRow(
        status="open",
        first_response_at=t("2026-11-20 16:30"),
        last_agent_reply_at=t("2026-11-20 16:30"),
        last_customer_message_at=t("2026-11-23 10:00"),
    )
    clocks = compute(parse_policy(POLICY), row, t("2026-11-23 10:00"))
    assert clocks.first_response_due == t("2026-11-23 09:00")  # stopped: its due stays for the reports
    assert clocks.next_response_due == t("2026-11-23 14:00")
    assert clocks.sla_breach_at == t("2026-11-23 14:00")  # the only running clock besides resolution
    assert clocks.sla_risk_at == t("2026-11-23 13:12")  # 80% of 240 business minutes after 10:00
    row.last_agent_reply_at = t("2026-11-23 11:00")  # answered: no next response owed
    assert compute(parse_policy(POLICY), row, t("2026-11-23 11:00")).next_response_due is None


def test_pending_pauses_the_clocks_and_shifts_the_dues_by_the_business_time_spent() -> None:
    policy = parse_policy(POLICY)
    row = FakeRow(status="pending")
    paused = compute(policy, row, t("2026-11-20 16:30"))  # Friday 16:30: waiting on the customer
    assert (paused.first_response_due, paused.resolution_due, paused.sla_check_at) == (None, None, None)
    row.sla_state = paused.sla_state
    row.status = "open"
    back = compute(policy, row, t("2026-11-23 10:30"))  # Monday 10:30: 30 min Fri + 150 min Mon were pending
    assert back.sla_state == {"paused": 180 * 60}
    assert back.first_response_due == t("2026-11-23 12:00")  # 09:00 + 3 h
    assert back.resolution_due == t("2026-11-25 10:00")  # Tue 16:00 + 3 business hours
    row.sla_state = back.sla_state
    row.status = "resolved"
    done = compute(policy, row, t("2026-11-23 11:00"))
    # The resolution clock stopped: its due stays (for met/breached in reports); no first response was
    # given, so that target never fell due; nothing runs, so nothing is checked, at risk or waiting.
    assert done.resolution_due == t("2026-11-25 10:00")
    assert (done.first_response_due, done.sla_check_at, done.sla_risk_at, done.sla_breach_at) == (
        None, None, None, None)
    assert done.waiting_since is None


def test_running_clocks_give_the_earliest_risk_and_breach_moments_and_the_wait() -> None:
    policy = parse_policy(POLICY)
    clocks = compute(policy, FakeRow(), t("2026-11-20 16:00"))
    # First response 120 business minutes from Fri 16:00: due Mon 09:00, at risk after 96 minutes (Mon 08:36);
    # resolution 1080 minutes: due Tue 16:00. The earliest of each is kept.
    assert clocks.sla_breach_at == t("2026-11-23 09:00")
    assert clocks.sla_risk_at == t("2026-11-23 08:36")
    assert clocks.waiting_since == t("2026-11-20 16:00")  # the customer's message opened the ticket
    reply = t("2026-11-20 16:30")
    answered = FakeRow(status="open", first_response_at=reply, last_agent_reply_at=reply)
    assert compute(policy, answered, t("2026-11-20 16:30")).waiting_since is None
    pending = compute(policy, FakeRow(status="pending"), t("2026-11-20 16:30"))
    assert (pending.sla_risk_at, pending.sla_breach_at, pending.waiting_since) == (None, None, None)


def test_waiting_and_moments_need_no_policy_for_the_wait() -> None:
    clocks = compute(None, FakeRow(status="open"), t("2026-11-20 17:00"))
    assert clocks.waiting_since == t("2026-11-20 16:00")
    assert (clocks.sla_risk_at, clocks.sla_breach_at, clocks.first_response_due) == (None, None, None)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"first_response": -5}, "above 0"),
        ({"first_response": "1h"}, "whole number"),
        ({"resolution_time": 5}, "Unknown SLA setting"),
        ({"priorities": {"asap": {"first_response": 5}}}, "not a priority"),
        ({"priorities": {"high": {"first": 5}}}, "Unknown SLA target"),
        ({"at_risk": 1.5}, "at_risk"),
        ({"calendar": {"mon": ["9-5"]}}, "08:00-17:00"),
    ],
)
def test_bad_policies_are_one_sentence(data: dict, words: str) -> None:
    with pytest.raises(BadArgument, match=words):
        parse_policy(data)


async def _ticket(desk: Desk, ref_id: int) -> Ticket:
    async with desk.db.reading() as session:
        ticket = (await session.execute(select(Ticket).where(Ticket.id == ref_id))).scalar_one()
        session.expunge(ticket)
        return ticket


async def test_due_times_are_stored_and_recomputed_on_each_change(desk: Desk, operator: Actor) -> None:
    await desk.add_department(operator, "Billing", email="billing@desk.example")
    await desk.add_agent(operator, "ann", name="Ann", email="ann@desk.example", departments=["Billing"])
    always = {"first_response": 60, "next_response": 120, "resolution": 600}  # no calendar: around the clock
    await desk.set_automation(operator, "Billing", "sla", always)
    row = await desk.create_ticket(operator, Intake(
        department="Billing", subject="Refund", body="Please", contact_email="c@example.org"))
    ticket = await _ticket(desk, row.id)
    assert ticket.first_response_due == ticket.created_at + timedelta(minutes=60)
    assert ticket.resolution_due == ticket.created_at + timedelta(minutes=600)
    assert ticket.version == 1  # the dues went in with the INSERT
    assert row.first_response_due == ticket.first_response_due

    await desk.note("ann", row.ref, "internal only")  # a note is not a response
    assert (await _ticket(desk, row.id)).first_response_due == ticket.first_response_due

    assert ticket.sla_breach_at == ticket.first_response_due
    assert ticket.sla_risk_at == ticket.created_at + timedelta(minutes=48)  # 80% of 60 minutes
    assert ticket.waiting_since == ticket.created_at

    await desk.reply("ann", row.ref, "On it", status="pending")
    paused = await _ticket(desk, row.id)
    assert paused.first_response_at is not None
    assert paused.first_response_due == ticket.first_response_due  # answered: the due it had stays
    assert (paused.resolution_due, paused.sla_check_at) == (None, None)  # paused: no due runs
    assert (paused.sla_risk_at, paused.sla_breach_at, paused.waiting_since) == (None, None, None)
    assert "pending_since" in (paused.sla_state or {})

    await desk.set_status("ann", row.ref, "open")
    back = await _ticket(desk, row.id)
    spent = back.sla_state["paused"]
    assert spent > 0
    assert back.resolution_due == back.created_at + timedelta(minutes=600, seconds=spent)
    assert back.first_response_due == ticket.first_response_due and back.next_response_due is None
    assert back.sla_breach_at == back.resolution_due

    await desk.set_status("ann", row.ref, "resolved")
    done = await _ticket(desk, row.id)
    assert (done.resolution_due, done.sla_check_at) == (back.resolution_due, None)
    assert (done.sla_risk_at, done.sla_breach_at) == (None, None)


async def test_reports_count_targets_met_through_the_real_flow(desk: Desk, operator: Actor) -> None:
    """Answered and resolved in time through the desk: both targets met; a third target overdue is breached."""
    from core.reports import ReportRequest

    await desk.add_department(operator, "Billing", email="billing@desk.example")
    await desk.add_agent(operator, "ann", name="Ann", email="ann@desk.example", departments=["Billing"],
                         role="supervisor")
    await desk.set_automation(operator, "Billing", "sla", {"first_response": 60, "resolution": 600})
    row = await desk.create_ticket(operator, Intake(
        department="Billing", subject="Refund", body="Please", contact_email="c@example.org"))
    await desk.reply("ann", row.ref, "On it")
    await desk.set_status("ann", row.ref, "resolved")
    late = await desk.create_ticket(operator, Intake(
        department="Billing", subject="Late", body="Please", contact_email="d@example.org"))
    async with desk.db.writing() as session:  # its first response fell due an hour ago and was not given
        ticket = await session.get(Ticket, late.id)
        assert ticket is not None
        ticket.first_response_due = datetime.now(UTC) - timedelta(hours=1)
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    report = await desk.report("ann", ReportRequest(today - timedelta(days=1), today + timedelta(days=2),
                                                    by="department", bucket="month"))
    totals = {name: sum(r.values[name] or 0 for r in report.rows) for name in ("sla_met", "sla_breached")}
    assert totals == {"sla_met": 2, "sla_breached": 1}


async def test_a_department_without_policy_leaves_due_times_empty(desk: Desk, operator: Actor) -> None:
    await desk.add_department(operator, "Billing", email="billing@desk.example")
    row = await desk.create_ticket(operator, Intake(
        department="Billing", subject="Hi", body="x", contact_email="c@example.org"))
    ticket = await _ticket(desk, row.id)
    assert (ticket.first_response_due, ticket.resolution_due, ticket.sla_check_at, ticket.sla_state) == (
        None, None, None, None)
