"""Rules on a real desk: every action, the routing example from intake, bounded chains, dry run, events."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from core import Desk
from core.errors import Conflict, Forbidden, NotFound
from core.mail.intake import Intake as MailIntake
from core.mail.intake import RawMail, Source
from core.policy import Actor
from core.views import Intake
from storage.models import Event, Message, Ticket
from tests.test_intake import mail

OPERATOR = Actor.operator()


async def setup_desk(desk: Desk) -> None:
    for name in ("Support", "Marketing", "Returns"):
        await desk.add_department(OPERATOR, name, email=f"{name.lower()}@desk.example")
    await desk.add_agent(OPERATOR, "ada", name="Ada", email="ada@desk.example", role="admin",
                         departments=["Support", "Marketing", "Returns"])
    await desk.set_availability(OPERATOR, "ada", "paused")  # the admin watches; never auto-assigned
    await desk.add_agent(OPERATOR, "mia", name="Mia", email="mia@desk.example", departments=["Marketing"])
    await desk.add_agent(OPERATOR, "max", name="Max", email="max@desk.example", departments=["Marketing"])
    await desk.add_agent(OPERATOR, "sam", name="Sam", email="sam@desk.example", departments=["Support"])


def rule(name: str, actions: list[dict[str, Any]], when: list[Any] | None = None,
         trigger: Any = "ticket_created", **extra: Any) -> dict[str, Any]:
    return {"name": name, "trigger": trigger, "when": when or [], "actions": actions, **extra}


async def new(desk: Desk, subject: str = "Hello", body: str = "Body", channel: str = "email",
              contact: str = "carla@example.org", department: str = "Support") -> str:
    row = await desk.create_ticket(Actor.system(), Intake(
        department=department, subject=subject, body=body, contact_email=contact, channel=channel))
    return row.ref


async def ticket_events(desk: Desk, ref: str, kind: str | None = None) -> list[Event]:
    async with desk.db.reading() as session:
        query = select(Event).where(Event.ticket_id == int(ref.split("-")[1])).order_by(Event.id)
        if kind:
            query = query.where(Event.kind == kind)
        found = list((await session.execute(query)).scalars())
        session.expunge_all()
        return found


# (actions, what the ticket looks like after: a function of its detail)
ACTIONS: list[tuple[str, list[dict[str, Any]], Any]] = [
    ("transfer", [{"do": "transfer", "department": "Returns"}], lambda d: d.ticket.department == "Returns"),
    ("assign agent", [{"do": "assign", "how": "agent", "agent": "sam"}], lambda d: d.ticket.assignee == "sam"),
    ("assign round-robin", [{"do": "assign", "how": "round-robin"}], lambda d: d.ticket.assignee == "sam"),
    ("assign least-loaded", [{"do": "assign", "how": "least-loaded"}], lambda d: d.ticket.assignee == "sam"),
    ("unassign", [{"do": "assign", "how": "agent", "agent": "sam"}, {"do": "assign", "how": "unassign"}],
     lambda d: d.ticket.assignee is None),
    ("add tag", [{"do": "add_tag", "tags": ["vip", "возврат"]}], lambda d: set(d.ticket.tags) == {"vip", "возврат"}),
    ("remove tag", [{"do": "add_tag", "tags": ["a", "b"]}, {"do": "remove_tag", "tags": ["a"]}],
     lambda d: d.ticket.tags == ("b",)),
    ("priority", [{"do": "set_priority", "priority": "urgent"}], lambda d: d.ticket.priority == "urgent"),
    ("status", [{"do": "set_status", "status": "pending"}], lambda d: d.ticket.status == "pending"),
    ("spam", [{"do": "mark_spam"}], lambda d: d.ticket.status == "spam"),
    ("note", [{"do": "note", "body": "Ghi chú nội bộ: khách VIP"}],
     lambda d: [m.kind for m in d.messages] == ["customer", "note"] and "khách VIP" in d.messages[1].body),
    ("send template (no SMTP: nothing queued)", [{"do": "send_template", "template": "auto-ack"}],
     lambda d: d.ticket.status == "new"),
    ("notify", [{"do": "notify", "event": "VIP"}], lambda d: d.ticket.status == "new"),
]


@pytest.mark.parametrize(("label", "actions", "check"), ACTIONS, ids=[item[0] for item in ACTIONS])
async def test_every_action(desk: Desk, label: str, actions: list[dict[str, Any]], check: Any) -> None:
    await setup_desk(desk)
    await desk.add_rule(OPERATOR, rule("Act", actions))
    ref = await new(desk)
    fired = await desk.run_automation()
    assert [firing.rule for firing in fired] == ["Act"]
    detail = await desk.ticket("ada", ref)
    assert check(detail), detail
    [event] = await ticket_events(desk, ref, "rule.fired")
    assert event.data["rule"] == "Act" and len(event.data["did"]) == len(actions)
    assert event.data["text"].startswith("rule 'Act' ")
    assert not any(line.startswith("could not") for line in event.data["did"])


# (condition, ticket subject/body/channel/contact, holds)
CONDITIONS: list[tuple[dict[str, Any], dict[str, str], bool]] = [
    ({"field": "subject", "op": "contains", "value": "возврат"}, {"subject": "ВОЗВРАТ товара"}, True),
    ({"field": "subject", "op": "starts", "value": "TRẢ HÀNG"}, {"subject": "trả hàng gấp"}, True),
    ({"field": "body", "op": "contains", "value": "คืนสินค้า"}, {"body": "ต้องการคืนสินค้า"}, True),
    ({"field": "body", "op": "not_contains", "value": "refund"}, {"body": "REFUND please"}, False),
    ({"field": "body", "op": "regex", "value": r"order #\d+"}, {"body": "ORDER #42 broke"}, True),
    ({"field": "channel", "op": "equals", "value": ["facebook", "twitter"]}, {"channel": "twitter"}, True),
    ({"field": "channel", "op": "equals", "value": "facebook"}, {"channel": "email"}, False),
    ({"field": "from", "op": "equals", "value": "CARLA@example.org"}, {}, True),
    ({"field": "from_domain", "op": "ends", "value": "example.org"}, {}, True),
    ({"field": "department", "op": "equals", "value": "support"}, {}, True),
    ({"field": "status", "op": "equals", "value": "new"}, {}, True),
    ({"field": "priority", "op": "equals", "value": "normal"}, {}, True),
    ({"field": "assignee", "op": "equals", "value": ""}, {}, True),
    ({"field": "tag", "op": "not_contains", "value": "vip"}, {}, True),
    ({"field": "hours_since_created", "op": "lt", "value": 1}, {}, True),
    ({"field": "business_hours", "op": "equals", "value": "open"}, {}, True),  # no calendar: always open
    ({"field": "contact.tier", "op": "equals", "value": "gold"}, {}, False),
]


@pytest.mark.parametrize(("condition", "ticket", "holds"), CONDITIONS,
                         ids=[f"{c['field']}-{c['op']}-{i}" for i, (c, _, _) in enumerate(CONDITIONS)])
async def test_conditions_on_a_real_ticket(desk: Desk, condition: dict[str, Any], ticket: dict[str, str],
                                           holds: bool) -> None:
    await setup_desk(desk)
    await desk.add_rule(OPERATOR, rule("Tag it", [{"do": "add_tag", "tags": ["hit"]}], when=[[condition]]))
    ref = await new(desk, **ticket)
    await desk.run_automation()
    assert ("hit" in (await desk.ticket("ada", ref)).ticket.tags) is holds


async def test_routing_example_end_to_end_from_intake(desk: Desk) -> None:
    """The seed's rule: on ticket created, channel facebook or twitter -> Marketing, assigned to an available agent."""
    await setup_desk(desk)
    await desk.set_automation(OPERATOR, "Marketing", "assignment", "round-robin")
    await desk.add_rule(OPERATOR, rule(
        "Route social",
        [{"do": "transfer", "department": "Marketing"}, {"do": "assign", "how": "round-robin"}],
        when=[[{"field": "channel", "op": "equals", "value": "facebook"}],
              [{"field": "channel", "op": "equals", "value": "twitter"}]],
    ))
    social = [await new(desk, channel=channel, subject=f"From {channel}") for channel in ("facebook", "twitter")]
    plain = await new(desk, channel="email")
    await desk.run_automation()
    await desk.set_availability(OPERATOR, "max", "paused")
    third = await new(desk, channel="facebook")
    await desk.run_automation()
    rows = {ref: (await desk.ticket("ada", ref)).ticket for ref in [*social, plain, third]}
    placed = [(rows[ref].department, rows[ref].assignee) for ref in social]
    assert placed == [("Marketing", "mia"), ("Marketing", "max")]
    assert (rows[plain].department, rows[plain].assignee) == ("Support", None)  # Support assigns manually
    assert (rows[third].department, rows[third].assignee) == ("Marketing", "mia")  # max is paused
    [fired] = await ticket_events(desk, social[0], "rule.fired")
    assert fired.data["text"] == "rule 'Route social' moved it to Marketing; assigned it to mia (round-robin)"
    transferred = await ticket_events(desk, social[0], "ticket.transferred")
    assert transferred[0].data["automation"]["rule"] == "Route social"
    assert await desk.run_automation() == []  # every event is processed once


async def test_mail_intake_triggers_rules_on_both_import_paths(desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.mail import batch

    await setup_desk(desk)
    await desk.add_rule(OPERATOR, rule(
        "Route returns", [{"do": "transfer", "department": "Returns"}],
        when=[{"field": "subject", "op": "contains", "value": "возврат"}]))
    intake = MailIntake(desk)
    source = Source("support", "Support")
    raws = [RawMail(mail(subject=subject, to="support@desk.example"), uid=n)
            for n, subject in enumerate(["Возврат заказа", "Question"], start=1)]
    await intake.ingest_batch(source, raws)
    async def per_mail_only(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(batch, "import_batch", per_mail_only)
    await intake.ingest_batch(source, [RawMail(mail(subject="ВОЗВРАТ ещё", to="support@desk.example"), uid=3)])
    await desk.run_automation()
    async with desk.db.reading() as session:
        placed = dict((await session.execute(select(Ticket.subject, Ticket.department_id))).all())
    departments = {view.id: view.name for view in await desk.departments(OPERATOR)}
    assert {subject: departments[d] for subject, d in placed.items()} == {
        "Возврат заказа": "Returns", "Question": "Support", "ВОЗВРАТ ещё": "Returns"}


async def test_chains_are_bounded_and_each_rule_fires_once_per_occurrence(desk: Desk) -> None:
    await setup_desk(desk)
    # Two rules that would ping-pong a ticket between departments forever.
    await desk.add_rule(OPERATOR, rule("To Returns", [{"do": "transfer", "department": "Returns"}],
                                       trigger="transferred", when=[{"field": "department", "op": "equals",
                                                                     "value": "Marketing"}]))
    await desk.add_rule(OPERATOR, rule("To Marketing", [{"do": "transfer", "department": "Marketing"}],
                                       trigger="transferred", when=[{"field": "department", "op": "equals",
                                                                     "value": "Returns"}]))
    await desk.add_rule(OPERATOR, rule("Start", [{"do": "transfer", "department": "Marketing"}]))
    ref = await new(desk)
    fired = await desk.run_automation()
    # Rules see the changes of earlier rules on the same event, and never fire on an event their own
    # chain caused: Start -> To Returns; (same event) To Marketing; on that move To Returns once more; done.
    assert [firing.rule for firing in fired] == ["Start", "To Returns", "To Marketing", "To Returns"]
    assert (await desk.ticket("ada", ref)).ticket.department == "Returns"
    chains = [event.data["automation"]["chain"] for event in await ticket_events(desk, ref, "ticket.transferred")]
    assert all(len(chain) == len(set(chain)) for chain in chains) and max(map(len, chains)) == 3
    assert await desk.run_automation() == []


async def test_stop_processing_and_order(desk: Desk) -> None:
    await setup_desk(desk)
    await desk.add_rule(OPERATOR, rule("Second", [{"do": "add_tag", "tags": ["second"]}], order=2))
    await desk.add_rule(OPERATOR, rule("First", [{"do": "add_tag", "tags": ["first"]}], order=1, stop=True))
    ref = await new(desk)
    assert [firing.rule for firing in await desk.run_automation()] == ["First"]
    assert (await desk.ticket("ada", ref)).ticket.tags == ("first",)


async def test_triggers_fire_on_their_events_only(desk: Desk) -> None:
    await setup_desk(desk)
    for trigger in ("customer_replied", "agent_replied", "note_added", "status_changed"):
        await desk.add_rule(OPERATOR, rule(trigger, [{"do": "add_tag", "tags": [trigger.replace("_", "-")]}],
                                           trigger=trigger))
    ref = await new(desk)
    await desk.run_automation()
    assert (await desk.ticket("ada", ref)).ticket.tags == ()
    await desk.note("ada", ref, "a note")
    await desk.reply("ada", ref, "an answer")
    await desk.set_status("ada", ref, "pending")
    await desk.run_automation()
    assert set((await desk.ticket("ada", ref)).ticket.tags) == {"note-added", "agent-replied", "status-changed"}


async def test_a_rule_that_cannot_act_says_so_and_the_rest_goes_on(desk: Desk) -> None:
    await setup_desk(desk)
    await desk.add_rule(OPERATOR, rule("Broken", [{"do": "transfer", "department": "Nowhere"},
                                                  {"do": "add_tag", "tags": ["still"]}]))
    ref = await new(desk)
    await desk.run_automation()
    [event] = await ticket_events(desk, ref, "rule.fired")
    assert event.data["did"][0].startswith("could not move it to Nowhere: No department named 'Nowhere'")
    assert (await desk.ticket("ada", ref)).ticket.tags == ("still",)


async def test_dry_run_lists_what_would_happen_and_changes_nothing(desk: Desk) -> None:
    await setup_desk(desk)
    refs = [await new(desk, subject=subject) for subject in ("Возврат", "Question", "возврат 2")]
    await desk.add_rule(OPERATOR, rule("Route returns", [{"do": "transfer", "department": "Returns"}],
                                       when=[{"field": "subject", "op": "contains", "value": "ВОЗВРАТ"}],
                                       active=False))
    async with desk.db.reading() as session:
        before = (await session.execute(select(Event.id).order_by(Event.id.desc()).limit(1))).scalar()
    spec, hits, looked = await desk.test_rule(OPERATOR, "Route returns", "7d")
    assert looked == 3
    assert [desk.ref(hit.ticket_id) for hit in hits] == [refs[0], refs[2]]
    assert hits[0].would == ("move it to Returns",)
    async with desk.db.reading() as session:
        after = (await session.execute(select(Event.id).order_by(Event.id.desc()).limit(1))).scalar()
        assert after == before
        assert (await session.execute(select(Message.id))).scalars().all() == [1, 2, 3]
    for ref in refs:
        assert (await desk.ticket("ada", ref)).ticket.department == "Support"
    assert (await desk.test_rule(OPERATOR, "Route returns", "1m", now=None))[2] == 3


async def test_rule_admin_operations(desk: Desk) -> None:
    await setup_desk(desk)
    await desk.add_rule(OPERATOR, rule("One", [{"do": "add_tag", "tags": ["x"]}]))
    with pytest.raises(Conflict):
        await desk.add_rule(OPERATOR, rule("One", [{"do": "add_tag", "tags": ["x"]}]))
    with pytest.raises(Forbidden):
        await desk.add_rule("sam", rule("Two", [{"do": "add_tag", "tags": ["x"]}]))
    edited = await desk.edit_rule(OPERATOR, "One", {"active": False, "note": "off for now"})
    assert (edited.active, edited.note) == (False, "off for now")
    exported = await desk.export_rules(OPERATOR)
    await desk.delete_rule(OPERATOR, "One")
    with pytest.raises(NotFound):
        await desk.rules(OPERATOR, "One")
    assert await desk.import_rules(OPERATOR, exported) == (1, 0)
    assert await desk.import_rules(OPERATOR, exported) == (0, 1)
    [again] = await desk.rules(OPERATOR)
    assert again.to_dict() == edited.to_dict()
    assert timedelta(days=7) == __import__("core.rules.store", fromlist=["x"]).parse_period("7d")
