"""Automatic mail: acknowledgements only where the loop guard allows, marked, limited; notifications; templates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from core.errors import BadArgument, Forbidden
from core.mail import outbox_admin
from core.policy import Actor
from storage.models import Department
from tests.outbox_fixtures import CUSTOMER, SUPPORT, MailDesk, customer_mail, open_mail_desk
from tests.smtpserver import SmtpServer


async def test_a_new_ticket_from_a_person_is_acknowledged_with_the_automatic_markers(mail_desk: MailDesk) -> None:
    mail = mail_desk
    [ref] = (await mail.receive(customer_mail(message_id="<q1@customer.example>"))).refs
    await mail.worker().flush()
    [ack] = mail.server.recorder.to(CUSTOMER)
    message = ack.message
    assert str(message["Auto-Submitted"]) == "auto-replied"
    assert str(message["X-Termdesk-Loop"]) == "termdesk"
    assert str(message["Precedence"]) == "bulk"
    assert str(message["From"]) == f"Acme Support <{SUPPORT}>"
    assert str(message["Subject"]) == f"Re: Printer on fire [#{ref}]"
    assert str(message["In-Reply-To"]) == "<q1@customer.example>"
    body = message.get_body(("plain",)).get_content()
    assert "Hello Carla Customer" in body and ref in body
    # Our own acknowledgement coming back (e.g. through a forwarding loop) is dropped by the intake.
    result = await mail.receive(ack.data)
    assert result.dropped == 1 and result.tickets == 0


@pytest.mark.parametrize(
    "headers, sender",
    [
        ({"Auto-Submitted": "auto-replied"}, CUSTOMER),
        ({"Precedence": "bulk"}, CUSTOMER),
        ({"X-Autoreply": "yes"}, CUSTOMER),
        ({"List-Unsubscribe": "<mailto:leave@list.example>"}, CUSTOMER),
        ({}, "no-reply@shop.example"),
        ({}, "MAILER-DAEMON@mx.example"),
        ({}, "billing@desk.example"),  # one of our own addresses
    ],
)
async def test_no_acknowledgement_for_automatic_mail_or_robot_and_own_addresses(
    mail_desk: MailDesk, headers: dict[str, str], sender: str
) -> None:
    mail = mail_desk
    result = await mail.receive(customer_mail(headers=headers, sender=sender))
    assert result.tickets == 1
    assert [row for row in await mail.rows() if row.kind == "auto-ack"] == []
    [event] = await mail.events("mail.suppressed")
    assert event.data["mail"] == "auto-ack"
    await mail.worker().flush()
    assert mail.server.recorder.delivered == []


async def test_automatic_mail_per_recipient_is_rate_limited(db_url: str, smtp_server: SmtpServer) -> None:
    now = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    mail = await open_mail_desk(db_url, smtp_server, clock=lambda: now[0])
    try:
        # Different subjects: at most 10 in 180 minutes.
        for n in range(14):
            await mail.receive(customer_mail(f"Question number {n}"))
            now[0] += timedelta(minutes=1)
        assert len([row for row in await mail.rows() if row.kind == "auto-ack"]) == 10
        # The same subject again and again: at most 3 (reply prefixes and references do not make it new).
        for _ in range(6):
            await mail.receive(customer_mail("Re: Where is my order?", sender="dora@customer.example"))
            now[0] += timedelta(minutes=1)
        assert len(await mail.rows(recipient="dora@customer.example")) == 3
        # After the window the recipient may get automatic mail again.
        now[0] += timedelta(minutes=181)
        await mail.receive(customer_mail("A fresh question"))
        assert len([row for row in await mail.rows(recipient=CUSTOMER) if row.kind == "auto-ack"]) == 11
        reasons = [event.data["reason"] for event in await mail.events("mail.suppressed")]
        assert any("auto_limit" in reason for reason in reasons)
    finally:
        await mail.desk.close()


async def test_resolving_sends_the_resolved_notice_once(mail_desk: MailDesk) -> None:
    mail = mail_desk
    [ref] = (await mail.receive(customer_mail())).refs
    await mail.desk.set_status("alice", ref, "resolved")
    await mail.desk.set_status("alice", ref, "resolved")  # no change, no second notice
    await mail.worker().flush()
    subjects = [str(item.message["Subject"]) for item in mail.server.recorder.to(CUSTOMER)]
    assert len(subjects) == 2  # the acknowledgement and one resolved notice
    [notice] = [item for item in mail.server.recorder.to(CUSTOMER) if "resolved" in item.message.get_body(
        ("plain",)).get_content()]
    assert str(notice.message["Auto-Submitted"]) == "auto-replied"


async def test_members_who_opted_in_are_notified_with_suppressed_auto_responses(mail_desk: MailDesk) -> None:
    mail = mail_desk
    assert await outbox_admin.set_notifications(mail.desk, "alice", "alice", True)
    with pytest.raises(Forbidden):
        await outbox_admin.set_notifications(mail.desk, "alice", "bob", True)
    [ref] = (await mail.receive(customer_mail(message_id="<n1@customer.example>"))).refs
    await mail.receive(customer_mail("Re: Printer on fire", "still burning", in_reply_to="<n1@customer.example>"))
    await mail.worker().flush()
    notes = mail.server.recorder.to("alice@staff.example")
    assert mail.server.recorder.to("bob@staff.example") == []
    assert [str(item.message["Subject"]) for item in notes] == [
        f"New ticket: Printer on fire [#{ref}]",
        f"Customer reply: Printer on fire [#{ref}]",
    ]
    for item in notes:
        assert str(item.message["X-Auto-Response-Suppress"]) == "All"
        assert str(item.message["Auto-Submitted"]) == "auto-generated"
        assert "https://desk.example/tickets/" + ref in item.message.get_body(("plain",)).get_content()


async def test_department_templates_render_in_a_sandbox_in_any_language(mail_desk: MailDesk) -> None:
    mail = mail_desk
    operator = Actor.operator()
    view = await outbox_admin.set_template(
        mail.desk, operator, "Support", "auto-ack",
        subject="Wir haben Ihre Nachricht: {{ subject }}",
        body="Hallo {{ contact_name }},\nIhr Ticket {{ ref }} ist bei {{ department }} eingegangen. Grüße, 東京",
    )
    assert view.custom
    with pytest.raises(BadArgument, match="cannot be used"):
        await outbox_admin.set_template(
            mail.desk, operator, "Support", "auto-ack", subject=None, body="{{ ''.__class__.__mro__ }}"
        )
    with pytest.raises(BadArgument, match="cannot be used"):
        await outbox_admin.set_template(
            mail.desk, operator, "Support", "auto-ack", subject=None, body="{{ no_such_variable }}"
        )
    with pytest.raises(Forbidden):
        await outbox_admin.set_template(mail.desk, "alice", "Support", "auto-ack", subject="x", body=None)
    for hungry in ("{{ 'x' * 1000000000 }}", "{{ 10 ** 10 ** 10 }}", "{{ [1] * 100000000 }}"):
        with pytest.raises(BadArgument, match="not allowed"):
            await outbox_admin.set_template(mail.desk, operator, "Support", "auto-ack", subject=None, body=hungry)
    [ref] = (await mail.receive(customer_mail())).refs
    await mail.worker().flush()
    [ack] = mail.server.recorder.to(CUSTOMER)
    assert str(ack.message["Subject"]) == f"Re: Wir haben Ihre Nachricht: Printer on fire [#{ref}]"
    body = ack.message.get_body(("plain",)).get_content()
    assert f"Ihr Ticket {ref} ist bei Acme Support eingegangen. Grüße, 東京" in body


async def test_a_template_broken_after_saving_falls_back_to_the_built_in_one(mail_desk: MailDesk) -> None:
    mail = mail_desk
    async with mail.desk.db.writing() as session:
        department = (await session.execute(select(Department).where(Department.name == "Support"))).scalar_one()
        department.settings = {"templates": {"auto-ack": {"subject": "{{ x.y.z }}", "body": "{% for %}"}}}
    [ref] = (await mail.receive(customer_mail())).refs
    await mail.worker().flush()
    [ack] = mail.server.recorder.to(CUSTOMER)
    assert str(ack.message["Subject"]) == f"Re: Printer on fire [#{ref}]"


async def test_acknowledgements_come_from_both_intake_paths(mail_desk: MailDesk) -> None:
    from core.mail.intake import RawMail, Source

    mail = mail_desk
    source = Source("import", "Support")
    # An ordinary batch takes the set-based path.
    ordinary = [RawMail(customer_mail(f"Question {n}", sender=f"c{n}@customer.example")) for n in range(5)]
    assert (await mail.intake.ingest_batch(source, ordinary)).tickets == 5
    # The same Message-ID twice in one batch sends it down the per-mail path.
    twice = customer_mail("Twice", sender="twice@customer.example", message_id="<twice@customer.example>")
    result = await mail.intake.ingest_batch(source, [RawMail(twice), RawMail(twice)])
    assert (result.tickets, result.duplicates) == (1, 1)
    await mail.worker().flush()
    acknowledged = sorted(recipient for item in mail.server.recorder.delivered for recipient in item.recipients)
    assert acknowledged == sorted([f"c{n}@customer.example" for n in range(5)] + ["twice@customer.example"])
