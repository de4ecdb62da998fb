"""Outgoing mail through a real aiosmtpd server: identity and threading, retries, failures, exactly once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from core.mail.sender import FlushCounts
from storage.models import Department, Message
from storage.types import utcnow
from tests.outbox_fixtures import CUSTOMER, SUPPORT, MailDesk, customer_mail, open_mail_desk
from tests.smtpserver import SmtpServer, wait_for


async def _reply_entry(mail: MailDesk, ref: str) -> Message:
    async with mail.desk.db.reading() as session:
        entry = (
            await session.execute(
                select(Message).where(Message.kind == "reply").order_by(Message.id.desc()).limit(1)
            )
        ).scalar_one()
        session.expunge(entry)  # keep the loaded values after the session ends
        return entry


async def _department_settings(mail: MailDesk, **settings: object) -> None:
    async with mail.desk.db.writing() as session:
        department = (await session.execute(select(Department).where(Department.name == "Support"))).scalar_one()
        department.settings = {**(department.settings or {}), **settings}


async def _ticket_with_reply(mail: MailDesk, body: str = "We sent a fire brigade.") -> tuple[str, Message]:
    result = await mail.receive(customer_mail())
    [ref] = result.refs
    await mail.desk.reply("alice", ref, body)
    return ref, await _reply_entry(mail, ref)


async def test_reply_has_the_department_identity_and_threads_back_onto_the_ticket(mail_desk: MailDesk) -> None:
    mail = mail_desk
    incoming = customer_mail(message_id="<first.question@customer.example>")
    [ref] = (await mail.receive(incoming)).refs
    await mail.desk.reply("alice", ref, "Hello Carla,\nwe are on our way.")
    entry = await _reply_entry(mail, ref)
    assert entry.delivery_status == "queued"

    counts = await mail.worker().flush()
    assert counts.failed == 0 and counts.deferred == 0
    replies = [item for item in mail.server.recorder.to(CUSTOMER) if "Auto-Submitted" not in item.message]
    assert len(replies) == 1
    sent = replies[0].message
    assert replies[0].sender == SUPPORT
    assert str(sent["From"]) == f"Acme Support <{SUPPORT}>"
    assert sent["To"].addresses[0].addr_spec == CUSTOMER
    assert str(sent["Subject"]) == f"Re: Printer on fire [#{ref}]"
    assert str(sent["In-Reply-To"]) == "<first.question@customer.example>"
    assert "<first.question@customer.example>" in str(sent["References"])
    assert str(sent["Message-ID"]) == f"<{entry.message_id}>"
    text = sent.get_body(("plain",)).get_content()
    assert text.startswith("Hello Carla,\nwe are on our way.")
    assert "\n-- \nAcme Support Team\n+1 555 0100" in text

    detail = await mail.desk.ticket("alice", ref)
    assert [m.delivery_status for m in detail.messages if m.kind == "reply"] == ["sent"]

    # The customer answers our mail (no reference in the subject): In-Reply-To threads it.
    answer = customer_mail(
        "Re: Printer on fire", "Thanks, it is out.", in_reply_to=f"<{entry.message_id}>",
        references=f"<first.question@customer.example> <{entry.message_id}>",
    )
    result = await mail.receive(answer)
    assert result.refs == [ref] and result.replies == 1 and result.tickets == 0


async def test_html_part_is_optional_and_the_text_part_always_there(mail_desk: MailDesk) -> None:
    mail = mail_desk
    await _department_settings(mail, html_mail=True, auto_ack=False)
    ref, entry = await _ticket_with_reply(mail, "Line <one> & two")
    await mail.worker().flush()
    [sent] = mail.server.recorder.to(CUSTOMER)
    message = sent.message
    assert message.get_body(("plain",)).get_content().startswith("Line <one> & two")
    assert "Line &lt;one&gt; &amp; two" in message.get_body(("html",)).get_content()


async def test_a_server_that_refuses_connections_for_a_while_gets_the_mail_once(mail_desk: MailDesk) -> None:
    mail = mail_desk
    mail.server.stop()
    ref, entry = await _ticket_with_reply(mail)
    worker = mail.worker()
    stop = asyncio.Event()
    task = asyncio.create_task(worker.run(stop))
    try:
        # The worker tries, fails, and keeps the mail queued with the reason.
        async def deferred() -> bool:
            rows = await mail.rows(entry_id=entry.id)
            return rows[0].attempts >= 2 and rows[0].state in ("queued", "sending")

        for _ in range(3000):
            if await deferred():
                break
            await asyncio.sleep(0.02)
        [row] = await mail.rows(entry_id=entry.id)
        assert row.attempts >= 2 and "connect" in (row.last_error or "")
        mail.server.start()
        await wait_for(lambda: len(mail.server.recorder.to(CUSTOMER)) >= 2, what="reply and auto-ack delivered")
        for _ in range(3000):
            if (await mail.rows(entry_id=entry.id))[0].state == "sent":
                break
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 60)
    [row] = await mail.rows(entry_id=entry.id)
    assert row.state == "sent"
    # A later pass finds nothing more to send: delivered exactly once.
    await mail.worker().flush()
    replies = [item for item in mail.server.recorder.to(CUSTOMER) if "Auto-Submitted" not in item.message]
    assert [item.message_id for item in replies] == [f"<{entry.message_id}>"]


async def test_451_is_retried_with_the_same_message_id_then_250_delivers(mail_desk: MailDesk) -> None:
    mail = mail_desk
    await _department_settings(mail, auto_ack=False)
    ref, entry = await _ticket_with_reply(mail)
    mail.server.recorder.script.append("451 4.7.1 greylisted, try again later")
    first = await mail.worker().flush(ignore_backoff=False)
    assert (first.sent, first.deferred) == (0, 1)
    [row] = await mail.rows(entry_id=entry.id)
    assert row.state == "queued" and row.attempts == 1 and "451" in (row.last_error or "")
    assert (await _reply_entry(mail, ref)).delivery_status == "queued"

    second = await mail.worker().flush(ignore_backoff=True)
    assert (second.sent, second.deferred) == (1, 0)
    assert mail.server.recorder.attempts == [f"<{entry.message_id}>", f"<{entry.message_id}>"]
    assert [item.message_id for item in mail.server.recorder.delivered] == [f"<{entry.message_id}>"]
    [row] = await mail.rows(entry_id=entry.id)
    assert row.state == "sent" and row.attempts == 2
    assert (await _reply_entry(mail, ref)).delivery_status == "sent"


async def test_550_fails_for_good_and_shows_on_the_ticket(mail_desk: MailDesk) -> None:
    mail = mail_desk
    await _department_settings(mail, auto_ack=False)
    ref, entry = await _ticket_with_reply(mail)
    mail.server.recorder.script.append("550 5.1.1 no such user")
    counts = await mail.worker().flush()
    assert (counts.sent, counts.failed) == (0, 1)
    assert mail.server.recorder.delivered == []
    # Another pass does not try again.
    again = await mail.worker().flush()
    assert again.attempted == 0
    detail = await mail.desk.ticket("alice", ref)
    assert [m.delivery_status for m in detail.messages if m.kind == "reply"] == ["failed"]
    events = [event for event in await mail.desk.events_since("alice", 0) if event.kind == "mail.failed"]
    assert len(events) == 1 and events[0].ticket_ref == ref
    assert "550" in str(events[0].data["error"]) and events[0].data["recipient"] == CUSTOMER


async def test_retries_give_up_after_the_configured_time(mail_desk: MailDesk) -> None:
    mail = mail_desk
    mail.server.stop()
    ref, entry = await _ticket_with_reply(mail)
    worker = mail.worker(give_up_hours=1e-9)
    counts = await worker.flush()
    assert counts.failed >= 1
    [row] = await mail.rows(entry_id=entry.id)
    assert row.state == "failed" and "gave up" in (row.last_error or "")
    assert (await _reply_entry(mail, ref)).delivery_status == "failed"


async def test_many_mails_go_over_one_connection(mail_desk: MailDesk) -> None:
    mail = mail_desk
    refs = [
        (await mail.receive(customer_mail(f"Question {n}", sender=f"c{n}@customer.example"))).refs[0]
        for n in range(12)
    ]
    for ref in refs:
        await mail.desk.reply("alice", ref, f"Answer for {ref}")
    counts = await mail.worker(batch_size=5).flush()
    assert counts.sent == 24  # 12 acknowledgements and 12 replies
    peers = {item.peer for item in mail.server.recorder.delivered}
    assert len(peers) == 1


@pytest.mark.slow
async def test_a_worker_killed_after_claiming_leaves_the_mail_to_be_sent_once_with_the_same_message_id(
    mail_desk: MailDesk,
) -> None:
    mail = mail_desk
    await _department_settings(mail, auto_ack=False)
    ref, entry = await _ticket_with_reply(mail)
    # The first worker claims the mail and is killed while the server holds DATA unanswered.
    recorder = mail.server.recorder
    recorder.hold.set()
    doomed = mail.worker(claim_seconds=0.5)
    task = asyncio.create_task(doomed.flush())
    await asyncio.to_thread(recorder.holding.wait, 60)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await doomed.connection.close()
    recorder.hold.clear()
    [row] = await mail.rows(entry_id=entry.id)
    assert row.state == "sending"
    # A new worker takes it over once the lease has run out, and sends it once.
    for _ in range(3000):
        counts = await mail.worker().flush(ignore_backoff=False)
        if counts.sent:
            break
        await asyncio.sleep(0.05)
    assert [item.message_id for item in recorder.delivered] == [f"<{entry.message_id}>"]
    assert (await mail.worker().flush()).attempted == 0
    assert len(recorder.delivered) == 1


async def test_two_workers_never_send_the_same_mail(mail_desk: MailDesk) -> None:
    mail = mail_desk
    for n in range(20):
        await mail.receive(customer_mail(f"Question {n}", sender=f"customer{n}@customer.example"))
    first, second = mail.worker(batch_size=3), mail.worker(batch_size=3)
    results = await asyncio.gather(first.flush(ignore_backoff=False), second.flush(ignore_backoff=False))
    assert sum(result.sent for result in results) == 20
    ids = [item.message_id for item in mail.server.recorder.delivered]
    assert len(ids) == len(set(ids)) == 20


async def test_a_stop_finishes_the_message_in_flight_and_hands_the_rest_back(mail_desk: MailDesk) -> None:
    mail = mail_desk
    for n in range(5):
        await mail.receive(customer_mail(f"Question {n}", sender=f"customer{n}@customer.example"))
    recorder = mail.server.recorder
    recorder.hold.set()
    stop = asyncio.Event()
    worker = mail.worker(batch_size=10)
    task = asyncio.create_task(worker.run(stop))
    await asyncio.to_thread(recorder.holding.wait, 60)
    stop.set()
    recorder.hold.clear()  # the message in flight gets its (451) answer
    await asyncio.wait_for(task, 60)
    rows = await mail.rows()
    assert [row.state for row in rows] == ["queued"] * 5
    assert sorted(row.attempts for row in rows) == [0, 0, 0, 0, 1]
    counts = await mail.worker().flush(ignore_backoff=True)
    assert counts.sent == 5 and len(recorder.delivered) == 5


async def test_a_timeout_after_data_is_maybe_sent_and_retried_with_the_same_message_id(mail_desk: MailDesk) -> None:
    mail = mail_desk
    await _department_settings(mail, auto_ack=False)
    ref, entry = await _ticket_with_reply(mail)
    recorder = mail.server.recorder
    recorder.hold.set()  # the server takes the whole message and then says nothing
    counts = await mail.worker(timeout_seconds=3).flush()
    assert (counts.sent, counts.deferred) == (0, 1)
    [row] = await mail.rows(entry_id=entry.id)
    assert row.state == "queued" and "maybe sent" in (row.last_error or "")
    recorder.hold.clear()
    assert (await mail.worker().flush(ignore_backoff=True)).sent == 1
    assert recorder.attempts == [f"<{entry.message_id}>", f"<{entry.message_id}>"]
    assert [item.message_id for item in recorder.delivered] == [f"<{entry.message_id}>"]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_smtp_login_with_the_password_from_the_environment(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login, data.password))
        return AuthResult(success=(data.login, data.password) == (b"desk", b"s3cret"))

    server = SmtpServer(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    server.start()
    monkeypatch.setenv("TERMDESK_TEST_SMTP_PASSWORD", "s3cret")
    mail = await open_mail_desk(db_url, server, username="desk", password_env="TERMDESK_TEST_SMTP_PASSWORD")
    try:
        await mail.receive(customer_mail())
        assert (await mail.worker().flush()).sent == 1
        assert len(server.recorder.delivered) == 1 and logins == [(b"desk", b"s3cret")]
    finally:
        await mail.desk.close()
        server.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_a_refused_smtp_login_keeps_every_mail_queued_until_the_password_is_fixed(
    db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def authenticator(server: object, session: object, envelope: object, mechanism: str, data: object) -> AuthResult:
        assert isinstance(data, LoginPassword)
        # handled=False: aiosmtpd answers the refusal itself (535), as a real server does.
        return AuthResult(success=(data.login, data.password) == (b"desk", b"s3cret"), handled=False)

    server = SmtpServer(authenticator=authenticator, auth_require_tls=False, auth_required=True)
    server.start()
    monkeypatch.setenv("TERMDESK_TEST_SMTP_PASSWORD", "wrong")
    mail = await open_mail_desk(db_url, server, username="desk", password_env="TERMDESK_TEST_SMTP_PASSWORD")
    try:
        await mail.receive(customer_mail())
        queued = await mail.rows()
        assert queued, "the acknowledgement is queued"
        refused = await mail.worker().flush(ignore_backoff=True)
        assert refused.sent == 0 and server.recorder.delivered == []
        # Our credentials are wrong, not the mail: nothing is failed for good, the reason is kept.
        for row in await mail.rows():
            assert row.state == "queued" and "login refused" in (row.last_error or "")

        monkeypatch.setenv("TERMDESK_TEST_SMTP_PASSWORD", "s3cret")
        fixed = await mail.worker().flush(ignore_backoff=True)
        assert fixed.sent == len(queued)
        assert sorted(item.message_id for item in server.recorder.delivered) == sorted(
            f"<{row.mail_message_id}>" for row in queued
        )
        assert {row.state for row in await mail.rows()} == {"sent"}
    finally:
        await mail.desk.close()
        server.stop()


async def test_a_slow_batch_renews_its_lease_so_no_other_worker_takes_the_rest(mail_desk: MailDesk) -> None:
    mail = mail_desk
    for n in range(6):
        await mail.receive(customer_mail(f"Question {n}", sender=f"c{n}@customer.example"))
    # One shared clock that moves 0.6 s per delivered mail: a 1 s lease taken for the whole
    # batch runs out after the second mail unless it is renewed.
    now = [utcnow()]

    def advance(_: object) -> None:
        now[0] += timedelta(seconds=0.6)

    mail.server.recorder.on_delivery = advance
    slow = mail.worker(clock=lambda: now[0], claim_seconds=1, timeout_seconds=20)
    rival = mail.worker(clock=lambda: now[0], claim_seconds=1, timeout_seconds=20)
    items = await slow.claim(10)
    counts = FlushCounts()
    done = asyncio.Event()

    async def compete() -> int:
        taken = 0
        while not done.is_set():
            taken += (await rival.flush(ignore_backoff=True)).attempted
            await asyncio.sleep(0.005)
        return taken

    async def send() -> None:
        try:
            await slow.send_batch(items, counts, None)
        finally:
            done.set()

    _, taken = await asyncio.gather(send(), compete())
    assert counts.sent == 6 and taken == 0
    ids = [item.message_id for item in mail.server.recorder.delivered]
    assert len(ids) == len(set(ids)) == 6
