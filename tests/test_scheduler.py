"""The scheduler with an injected clock: auto-close through the real outbox and SMTP server, SLA at-risk and
breach events (and rules on them), time-triggered rules, and its loop inside `serve`."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from core import Desk
from core.policy import Actor
from core.scheduler import Scheduler
from core.views import Intake
from storage.models import Event, Ticket
from storage.types import utcnow
from tests.outbox_fixtures import CUSTOMER, customer_mail, open_mail_desk
from tests.smtpserver import SmtpServer, wait_for

OPERATOR = Actor.operator()


class Clock:
    """Time that tests move by hand."""

    def __init__(self) -> None:
        self.now = utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


async def events_of(desk: Desk, kind: str) -> list[Event]:
    async with desk.db.reading() as session:
        found = list((await session.execute(select(Event).where(Event.kind == kind).order_by(Event.id))).scalars())
        session.expunge_all()
        return found


async def test_auto_close_mails_exactly_once_and_never_closes_a_ticket_the_customer_answered(
    db_url: str, smtp_server: SmtpServer
) -> None:
    mail = await open_mail_desk(db_url, smtp_server)
    desk = mail.desk
    try:
        await mail.receive(customer_mail("Printer on fire", message_id="<one@customer.example>"))
        await mail.receive(customer_mail("Scanner jammed", sender="dora@customer.example",
                                         message_id="<two@customer.example>"))
        await desk.reply("alice", "TD-1", "Have you tried water?", status="pending")
        await desk.reply("alice", "TD-2", "Have you tried turning it off?", status="pending")
        # Dora answers: her ticket is open again and must stay so.
        await mail.receive(customer_mail("Re: Scanner jammed [TD-2]", sender="dora@customer.example",
                                         in_reply_to="<two@customer.example>"))
        assert (await desk.ticket("alice", "TD-2")).ticket.status == "open"
        await mail.worker().flush()
        before = len(smtp_server.recorder.to(CUSTOMER))  # the acknowledgement and the reply

        clock = Clock()
        scheduler = Scheduler(desk.db, desk.outbox, clock=clock)
        clock.advance(days=2, hours=23)
        assert (await scheduler.run_once()).auto_closed == 0  # not yet three days
        clock.advance(hours=2)
        assert (await scheduler.run_once()).auto_closed == 1
        assert (await scheduler.run_once()).auto_closed == 0  # a second pass closes nothing more
        await mail.worker().flush()
        await wait_for(lambda: len(smtp_server.recorder.to(CUSTOMER)) == before + 1, what="the closing mail")

        closing = smtp_server.recorder.to(CUSTOMER)[-1].message
        assert "[#TD-1]" in str(closing["Subject"]) and "not heard back" in closing.get_content()
        assert str(closing["Auto-Submitted"]) == "auto-replied"
        assert [row.kind for row in await mail.rows(recipient=CUSTOMER)].count("auto-close") == 1
        assert (await desk.ticket("alice", "TD-1")).ticket.status == "resolved"
        assert (await desk.ticket("alice", "TD-2")).ticket.status == "open"
        [event] = await events_of(desk, "ticket.auto_closed")
        assert event.ticket_id == 1 and event.data["days"] == 3
        # Only one closing mail in all: nothing else went to Carla, nothing at all to Dora's closed ticket.
        assert len(smtp_server.recorder.to(CUSTOMER)) == before + 1
    finally:
        await desk.close()


async def test_auto_close_days_per_department_and_off(desk: Desk) -> None:
    await desk.add_department(OPERATOR, "Quick", email="quick@desk.example")
    await desk.add_department(OPERATOR, "Never", email="never@desk.example")
    await desk.add_agent(OPERATOR, "ada", name="Ada", email="ada@desk.example", role="admin",
                         departments=["Quick", "Never"])
    await desk.set_automation(OPERATOR, "Quick", "auto_close_days", 1)
    await desk.set_automation(OPERATOR, "Never", "auto_close_days", 0)
    for department in ("Quick", "Never"):
        row = await desk.create_ticket(OPERATOR, Intake(department=department, subject="s", body="b",
                                                        contact_email="c@example.org"))
        await desk.set_status("ada", row.ref, "pending")
    clock = Clock()
    clock.advance(days=30)
    assert (await Scheduler(desk.db, clock=clock).run_once()).auto_closed == 1
    assert [(await desk.ticket("ada", ref)).ticket.status for ref in ("TD-1", "TD-2")] == ["resolved", "pending"]


async def test_sla_at_risk_and_breach_are_events_once_and_rules_trigger_on_them(desk: Desk) -> None:
    await desk.add_department(OPERATOR, "Support", email="support@desk.example")
    await desk.add_agent(OPERATOR, "ada", name="Ada", email="ada@desk.example", role="admin",
                         departments=["Support"])
    await desk.set_automation(OPERATOR, "Support", "sla", {"first_response": 60, "resolution": 600, "at_risk": 0.5})
    await desk.add_rule(OPERATOR, {"name": "Escalate", "trigger": "sla_breached",
                                   "actions": [{"do": "set_priority", "priority": "urgent"},
                                               {"do": "add_tag", "tags": ["late"]}]})
    await desk.add_rule(OPERATOR, {"name": "Warn", "trigger": "sla_at_risk",
                                   "actions": [{"do": "add_tag", "tags": ["at-risk"]}]})
    row = await desk.create_ticket(OPERATOR, Intake(department="Support", subject="s", body="b",
                                                    contact_email="c@example.org"))
    clock = Clock()
    scheduler = Scheduler(desk.db, clock=clock)
    assert (await scheduler.run_once()).sla_events == 0
    clock.advance(minutes=31)
    assert (await scheduler.run_once()).sla_events == 1
    assert (await scheduler.run_once()).sla_events == 0  # announced once
    assert (await desk.ticket("ada", row.ref)).ticket.tags == ("at-risk",)
    clock.advance(minutes=30)
    report = await scheduler.run_once()
    assert report.sla_events == 1 and report.rule_firings == 1
    detail = (await desk.ticket("ada", row.ref)).ticket
    assert (detail.priority, set(detail.tags)) == ("urgent", {"at-risk", "late"})
    [breach] = await events_of(desk, "sla.breached")
    assert breach.data["target"] == "first_response"
    clock.advance(hours=10)
    assert (await scheduler.run_once()).sla_events == 1  # the resolution target, once
    assert (await scheduler.run_once()).sla_events == 0
    assert [event.data["target"] for event in await events_of(desk, "sla.breached")] == [
        "first_response", "resolution"]
    async with desk.db.reading() as session:
        ticket = (await session.execute(select(Ticket))).scalar_one()
        assert ticket.sla_check_at is None  # nothing left to look at: the scan skips it


async def test_time_rules_fire_once_per_occurrence(desk: Desk) -> None:
    await desk.add_department(OPERATOR, "Support", email="support@desk.example")
    await desk.add_agent(OPERATOR, "ada", name="Ada", email="ada@desk.example", role="admin",
                         departments=["Support"])
    await desk.add_rule(OPERATOR, {"name": "Nudge", "trigger": {"on": "time", "since": "created", "hours": 2},
                                   "when": [{"field": "status", "op": "equals", "value": "new"}],
                                   "actions": [{"do": "note", "body": "Still new after 2 hours"}]})
    row = await desk.create_ticket(OPERATOR, Intake(department="Support", subject="s", body="b",
                                                    contact_email="c@example.org"))
    clock = Clock()
    scheduler = Scheduler(desk.db, clock=clock)
    clock.advance(hours=1)
    assert (await scheduler.run_once()).time_firings == 0
    clock.advance(hours=1, minutes=1)
    assert (await scheduler.run_once()).time_firings == 1
    clock.advance(hours=1)
    assert (await scheduler.run_once()).time_firings == 0
    spec, hits, looked = await desk.test_rule(OPERATOR, "Nudge", "1d", now=clock())
    assert [hit.ticket_id for hit in hits] == [row.id] and looked == 1
    messages = (await desk.ticket("ada", row.ref)).messages
    assert [message.kind for message in messages] == ["customer", "note"]


async def test_the_scheduler_loop_runs_until_stopped(desk: Desk) -> None:
    await desk.add_department(OPERATOR, "Support", email="support@desk.example")
    await desk.add_rule(OPERATOR, {"name": "Tag", "trigger": "ticket_created",
                                   "actions": [{"do": "add_tag", "tags": ["seen"]}]})
    stop = asyncio.Event()
    task = asyncio.create_task(Scheduler(desk.db).run(stop, interval=0.05))
    tagged: list[Any] = []

    async def check() -> None:
        async with desk.db.reading() as session:
            tagged[:] = (await session.execute(select(Event).where(Event.kind == "rule.fired"))).scalars().all()

    try:
        await desk.create_ticket(OPERATOR, Intake(department="Support", subject="s", body="b",
                                                  contact_email="c@example.org"))
        deadline = asyncio.get_running_loop().time() + 60
        while not tagged and asyncio.get_running_loop().time() < deadline:
            await check()
            await asyncio.sleep(0.05)
        assert len(tagged) == 1
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)


async def test_sla_due_in_fires_once_while_the_due_time_is_ahead(desk: Desk) -> None:
    await desk.add_department(OPERATOR, "Support", email="support@desk.example")
    await desk.add_agent(OPERATOR, "ada", name="Ada", email="ada@desk.example", role="admin",
                         departments=["Support"])
    await desk.set_automation(OPERATOR, "Support", "sla", {"first_response": 120})
    await desk.add_rule(OPERATOR, {"name": "Soon due", "trigger": {"on": "sla_due_in", "minutes": 30},
                                   "actions": [{"do": "add_tag", "tags": ["due-soon"]}]})
    early = await desk.create_ticket(OPERATOR, Intake(department="Support", subject="a", body="b",
                                                      contact_email="c@example.org"))
    clock = Clock()
    scheduler = Scheduler(desk.db, clock=clock)
    clock.advance(minutes=80)
    assert (await scheduler.run_once()).time_firings == 0  # due in 40 minutes
    clock.advance(minutes=15)
    assert (await scheduler.run_once()).time_firings == 1  # due in 25 minutes
    clock.advance(minutes=1)
    assert (await scheduler.run_once()).time_firings == 0  # once per due time
    assert (await desk.ticket("ada", early.ref)).ticket.tags == ("due-soon",)
    clock.advance(hours=5)  # long breached: not "due in 30 minutes" any more
    late = await desk.create_ticket(OPERATOR, Intake(department="Support", subject="c", body="d",
                                                     contact_email="e@example.org"))
    assert (await scheduler.run_once()).time_firings == 0
    assert (await desk.ticket("ada", late.ref)).ticket.tags == ()
