"""Mail intake on a real database: tickets and replies from raw mail, exactly once, threaded, quarantined."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import pytest
from sqlalchemy import func, select

from core import Desk
from core.errors import Forbidden, NotFound
from core.mail.intake import Intake, RawMail, Source
from core.mail.quarantine import Quarantine
from core.policy import Actor
from core.views import QueueFilter
from storage.database import Database
from storage.models import Attachment, Message, Ticket
from storage.models import RawMail as RawMailRow

SUPPORT = Source(name="support", department="Technical")


def mail(
    *,
    subject: str = "Printer on fire",
    sender: str = "Carla Customer <carla@example.org>",
    to: str = "support@example.com",
    body: str = "It is smoking.\n",
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    attachment: tuple[str, bytes] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2026, 11, 20, 9, 30, tzinfo=UTC))
    message["Message-ID"] = message_id or make_msgid(domain="example.org")
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(body)
    if attachment:
        message.add_attachment(attachment[1], maintype="application", subtype="octet-stream", filename=attachment[0])
    return message.as_bytes()


@pytest.fixture
async def intake(desk: Desk) -> Intake:
    operator = Actor.operator()
    await desk.add_department(operator, "Technical", email="support@example.com")
    await desk.add_department(operator, "Billing", email="billing@example.com")
    await desk.add_agent(operator, "tess", name="Tess", email="tess@example.com", departments=["Technical"])
    await desk.add_agent(operator, "bill", name="Bill", email="bill@example.com", departments=["Billing"])
    await desk.add_agent(
        operator, "ada", name="Ada", email="ada@example.com", role="admin", departments=["Technical", "Billing"]
    )
    return Intake(desk)


async def count(desk: Desk, model: type, *where: object) -> int:
    async with desk.db.reading() as session:
        return int((await session.execute(select(func.count()).select_from(model).where(*where))).scalar_one())


async def test_a_new_mail_opens_a_ticket_with_its_contact_and_mail_fields(intake: Intake, desk: Desk) -> None:
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(attachment=("log.txt", b"E42")), uid=1)])
    assert (result.tickets, result.stored, result.replies) == (1, 1, 0)
    detail = await desk.ticket("tess", result.refs[0])
    assert detail.ticket.subject == "Printer on fire"
    assert detail.ticket.department == "Technical"
    assert detail.ticket.channel == "email"
    assert detail.contact.email == "carla@example.org"
    assert detail.contact.name == "Carla Customer"
    [first] = detail.messages
    assert first.kind == "customer" and first.author == "carla@example.org"
    assert "It is smoking." in first.body
    assert [a.filename for a in first.attachments] == ["log.txt"]
    view, data = await desk.attachment("tess", first.attachments[0].id)
    assert data == b"E42"
    assert [event.kind for event in detail.events] == ["ticket.created"]


async def test_the_same_mail_twice_is_one_message(intake: Intake, desk: Desk) -> None:
    raw = mail(message_id="<once@example.org>")
    first = await intake.ingest_batch(SUPPORT, [RawMail(raw, uid=1)])
    again = await intake.ingest_batch(SUPPORT, [RawMail(raw, uid=1), RawMail(raw, uid=7)])
    assert first.tickets == 1
    assert (again.tickets, again.replies, again.duplicates) == (0, 0, 2)
    assert await count(desk, Ticket) == 1
    assert await count(desk, Message) == 1


async def test_checkpoint_advances_in_the_batch_transaction(intake: Intake) -> None:
    source = Source(name="support", department="Technical", uidvalidity=77)
    assert await intake.checkpoint("support") is None
    await intake.ingest_batch(source, [RawMail(mail(), uid=3), RawMail(mail(), uid=9)])
    checkpoint = await intake.checkpoint("support")
    assert checkpoint is not None and (checkpoint.uidvalidity, checkpoint.last_uid) == (77, 9)
    await intake.reset_checkpoint("support", 78)
    checkpoint = await intake.checkpoint("support")
    assert checkpoint is not None and (checkpoint.uidvalidity, checkpoint.last_uid) == (78, 0)


async def test_a_mail_to_a_department_address_lands_there_through_a_shared_mailbox(intake: Intake, desk: Desk) -> None:
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(to="Billing <BILLING@example.com>"))])
    assert (await desk.ticket("bill", result.refs[0])).ticket.department == "Billing"
    with pytest.raises(NotFound):
        await desk.ticket("tess", result.refs[0])


async def test_a_mail_to_two_departments_mailboxes_makes_one_ticket_in_each(intake: Intake, desk: Desk) -> None:
    raw = mail(to="support@example.com, billing@example.com", message_id="<both@example.org>")
    one = await intake.ingest_batch(Source("support", "Technical"), [RawMail(raw)])
    two = await intake.ingest_batch(Source("billing", "Billing"), [RawMail(raw)])
    assert one.tickets == 1 and two.tickets == 1
    departments = sorted([(await desk.ticket("ada", ref)).ticket.department for ref in one.refs + two.refs])
    assert departments == ["Billing", "Technical"]
    assert await count(desk, Ticket) == 2


async def test_reply_threads_by_subject_reference_from_the_ticket_contact(intake: Intake, desk: Desk) -> None:
    ref = (await intake.ingest_batch(SUPPORT, [RawMail(mail())])).refs[0]
    reply = await intake.ingest_batch(
        SUPPORT, [RawMail(mail(subject=f"Re: Printer on fire [#{ref}]", body="Still burning"))]
    )
    assert (reply.tickets, reply.replies, reply.refs) == (0, 1, [ref])
    detail = await desk.ticket("tess", ref)
    assert [m.body.strip() for m in detail.messages][-1] == "Still burning"


async def test_reply_threads_by_in_reply_to_and_by_references_only(intake: Intake, desk: Desk) -> None:
    ref = (await intake.ingest_batch(SUPPORT, [RawMail(mail(message_id="<root@example.org>"))])).refs[0]
    by_irt = await intake.ingest_batch(
        SUPPORT, [RawMail(mail(subject="other words", in_reply_to="<root@example.org>"))]
    )
    by_refs = await intake.ingest_batch(
        SUPPORT, [RawMail(mail(subject="yet other", references="<unknown@x> <root@example.org>"))]
    )
    assert by_irt.refs == [ref] and by_refs.refs == [ref]
    assert len((await desk.ticket("tess", ref)).messages) == 3


async def test_a_forwarded_mail_with_another_customers_reference_opens_a_new_ticket(intake: Intake, desk: Desk) -> None:
    ref = (await intake.ingest_batch(SUPPORT, [RawMail(mail())])).refs[0]
    forwarded = await intake.ingest_batch(
        SUPPORT, [RawMail(mail(sender="mallory@evil.example", subject=f"Fwd: Re: Printer on fire [#{ref}]"))]
    )
    assert forwarded.tickets == 1 and forwarded.refs != [ref]
    assert len((await desk.ticket("tess", ref)).messages) == 1


async def test_a_foreign_desks_reference_is_not_ours(intake: Intake) -> None:
    await intake.ingest_batch(SUPPORT, [RawMail(mail())])
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(subject="Re: [#XY-1] your order"))])
    assert result.tickets == 1


async def test_a_customer_reply_reopens_a_resolved_ticket(intake: Intake, desk: Desk) -> None:
    ref = (await intake.ingest_batch(SUPPORT, [RawMail(mail(message_id="<r1@example.org>"))])).refs[0]
    await desk.set_status("tess", ref, "resolved")
    await intake.ingest_batch(SUPPORT, [RawMail(mail(in_reply_to="<r1@example.org>", body="not fixed"))])
    detail = await desk.ticket("tess", ref)
    assert detail.ticket.status == "open"
    replied = [e for e in detail.events if e.kind == "ticket.customer_replied"]
    assert replied and replied[-1].data["reopened"] is True


async def test_a_reply_to_a_closed_ticket_opens_a_follow_up(intake: Intake, desk: Desk) -> None:
    ref = (await intake.ingest_batch(SUPPORT, [RawMail(mail(message_id="<c1@example.org>"))])).refs[0]
    await desk.set_status("tess", ref, "closed")
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(in_reply_to="<c1@example.org>"))])
    assert result.tickets == 1 and result.refs != [ref]
    [entry] = (await desk.ticket("tess", result.refs[0])).messages
    async with desk.db.reading() as session:
        warnings = (await session.execute(select(Message.warnings).where(Message.id == entry.id))).scalar_one()
    assert any(ref in warning for warning in warnings)


async def test_same_message_id_with_different_content_is_kept_with_a_warning(intake: Intake, desk: Desk) -> None:
    await intake.ingest_batch(SUPPORT, [RawMail(mail(message_id="<same@example.org>", body="first"))])
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(message_id="<same@example.org>", body="second"))])
    assert result.stored == 1 and result.duplicates == 0
    async with desk.db.reading() as session:
        rows = (await session.execute(select(Message.body_text, Message.warnings).order_by(Message.id))).all()
    assert [body.strip() for body, _ in rows] == ["first", "second"]
    assert rows[1].warnings and "same Message-ID" in rows[1].warnings[0]


async def test_automatic_mail_is_stored_and_flagged(intake: Intake, desk: Desk) -> None:
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(headers={"Auto-Submitted": "auto-replied"}))])
    assert result.tickets == 1
    async with desk.db.reading() as session:
        flags = (await session.execute(select(Message.automatic))).scalar_one()
    assert "auto-submitted" in flags


async def test_our_own_loop_header_coming_back_is_dropped_and_kept_raw(intake: Intake, desk: Desk) -> None:
    header = {"X-Termdesk-Loop": intake.limits.loop_header_value}
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(headers=header))])
    assert (result.dropped, result.tickets) == (1, 0)
    assert await count(desk, RawMailRow, RawMailRow.state == "dropped") == 1


async def test_unparseable_mail_is_quarantined_and_the_batch_goes_on(intake: Intake, desk: Desk) -> None:
    intake.limits = intake.limits.model_copy(update={"max_message_bytes": 2048})
    big = mail(body="x" * 5000)
    result = await intake.ingest_batch(SUPPORT, [RawMail(big, uid=1), RawMail(mail(), uid=2)])
    assert (result.quarantined, result.tickets) == (1, 1)
    quarantine = Quarantine(intake)
    [entry] = await quarantine.entries(Actor.operator())
    assert "over the limit" in entry.reason and entry.subject == "Printer on fire"
    with pytest.raises(Forbidden):
        await quarantine.entries(await desk.login("tess"))
    # Still too big: retry keeps it, with the reason.
    assert isinstance(await quarantine.retry(Actor.operator(), entry.id), str)
    intake.limits = intake.limits.model_copy(update={"max_message_bytes": 10_000_000})
    retried = await quarantine.retry(Actor.operator(), entry.id)
    assert not isinstance(retried, str) and retried.tickets == 1
    assert await quarantine.entries(Actor.operator()) == []
    with pytest.raises(NotFound):
        await quarantine.retry(Actor.operator(), entry.id)


async def test_release_imports_even_what_cannot_be_parsed(intake: Intake, desk: Desk) -> None:
    intake.limits = intake.limits.model_copy(update={"max_message_bytes": 2048})
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(body="y" * 5000))])
    assert result.quarantined == 1
    quarantine = Quarantine(intake)
    [entry] = await quarantine.entries(Actor.operator())
    released = await quarantine.release(Actor.operator(), entry.id)
    assert released.tickets == 1
    detail = await desk.ticket("tess", released.refs[0])
    assert "y" * 100 in detail.messages[0].body


async def test_untrusted_header_and_body_text_is_stored_intact(intake: Intake, desk: Desk) -> None:
    subject = "[@click=app.quit]boom[/] \x1b]0;pwned\x07"
    body = "hello \x1b[2J [bold]x[/bold] \x9b31m\n"
    result = await intake.ingest_batch(SUPPORT, [RawMail(mail(subject=subject, body=body))])
    detail = await desk.ticket("tess", result.refs[0])
    assert "[@click=app.quit]boom[/]" in detail.ticket.subject
    assert "\x1b[2J [bold]x[/bold]" in detail.messages[0].body


@pytest.mark.postgres
async def test_two_workers_importing_the_same_mail_make_one_complete_ticket(postgres_url: str) -> None:
    first, second = Desk(Database(postgres_url)), Desk(Database(postgres_url))
    try:
        await first.init()
        await first.add_department(Actor.operator(), "Technical", email="support@example.com")
        raws = [RawMail(mail(message_id=f"<m{i}@example.org>"), uid=i) for i in range(1, 21)]
        results = await asyncio.gather(
            Intake(first).ingest_batch(SUPPORT, raws), Intake(second).ingest_batch(SUPPORT, raws)
        )
        assert sum(r.tickets for r in results) == 20
        assert await count(first, Ticket) == 20
        assert await count(first, Message) == 20
        assert await first.check_counters(repair=False) == 0
    finally:
        await first.close()
        await second.close()


async def test_intake_keeps_department_counts_and_search_current(intake: Intake, desk: Desk) -> None:
    await intake.ingest_batch(SUPPORT, [RawMail(mail(subject="Đơn hàng bị lỗi", body="สินค้าชำรุด"))])
    [counts] = [c for c in await desk.counts("tess") if c.department == "Technical"]
    assert counts.new == 1
    assert len((await desk.queue("tess", QueueFilter(text="ชำรุด"))).rows) == 1
    assert len((await desk.queue("tess", QueueFilter(text="đơn hàng"))).rows) == 1
    assert await desk.check_counters(repair=False) == 0
    async with desk.db.reading() as session:
        assert (await session.execute(select(func.count()).select_from(Attachment))).scalar_one() == 0
