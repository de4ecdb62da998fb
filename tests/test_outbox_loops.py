"""Mail loops: our desk and a customer's auto-responder answering each other through real SMTP servers."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
import pytest

from tests.outbox_fixtures import CUSTOMER, SUPPORT, customer_mail, open_mail_desk
from tests.smtpserver import Delivered, SmtpServer, wait_for

SIMULATED_MINUTES = 60


@pytest.fixture
def customer_mx() -> Iterator[SmtpServer]:
    """The server our desk's own address receives at (its mail is fed to the intake, as the IMAP sync would)."""
    server = SmtpServer()
    server.start()
    yield server
    server.stop()


def naive_reply(to: Delivered) -> EmailMessage:
    """A careless vacation responder: answers everything, marks nothing, threads nothing."""
    reply = EmailMessage()
    reply["From"] = f"Carla Customer <{CUSTOMER}>"
    reply["To"] = SUPPORT
    reply["Subject"] = "Out of office"
    reply["Message-ID"] = make_msgid(domain="customer.example")
    reply.set_content("I am away until Monday and will read your mail then.")
    return reply


def polite_reply(to: Delivered) -> EmailMessage:
    """An RFC 3834 responder: marks its answer and keeps the thread (so it lands on the same ticket)."""
    reply = naive_reply(to)
    reply.replace_header("Subject", f"Auto: {to.message['Subject']}")
    reply["Auto-Submitted"] = "auto-replied"
    reply["In-Reply-To"] = to.message_id
    return reply


@pytest.mark.parametrize("responder", [naive_reply, polite_reply], ids=["naive", "rfc3834"])
async def test_two_auto_responders_exchange_a_small_bounded_number_of_mails(
    db_url: str, smtp_server: SmtpServer, customer_mx: SmtpServer, responder: object
) -> None:
    now = [datetime(2026, 11, 23, 9, 0, tzinfo=UTC)]
    mail = await open_mail_desk(db_url, smtp_server, clock=lambda: now[0])
    ours = smtp_server.recorder  # what our desk sent (the customer's server)
    theirs = customer_mx.recorder  # what the customer's responder sent to us
    answered = 0
    fed = 0
    activity: list[int] = []
    try:
        await mail.receive(customer_mail())  # the one mail a person wrote
        for _ in range(SIMULATED_MINUTES):
            before = len(ours.delivered) + len(theirs.delivered)
            await mail.worker(clock=lambda: now[0]).flush()
            # The responder answers every new mail our desk sent it, over SMTP to our server.
            new = ours.to(CUSTOMER)[answered:]
            if new:
                client = aiosmtplib.SMTP(hostname="127.0.0.1", port=customer_mx.port, start_tls=False)
                await client.connect()
                for item in new:
                    await client.send_message(responder(item))  # type: ignore[operator]
                await client.quit()
                answered += len(new)
                await wait_for(lambda: len(theirs.delivered) >= answered, what="the responder's mail")  # noqa: B023
            for item in theirs.delivered[fed:]:
                await mail.receive(item.data)
            fed = len(theirs.delivered)
            activity.append(len(ours.delivered) + len(theirs.delivered) - before)
            now[0] += timedelta(minutes=1)
    finally:
        await mail.desk.close()
    sent_by_us = len(ours.to(CUSTOMER))
    # One acknowledgement of the real mail, then at most `auto_limit_same_subject` for the repeated subject.
    assert 1 <= sent_by_us <= 1 + mail.settings.smtp.auto_limit_same_subject
    assert len(theirs.delivered) == sent_by_us
    assert sum(activity[-SIMULATED_MINUTES // 2 :]) == 0, activity  # the exchange died out long before the hour ended
    if responder is polite_reply:
        assert sent_by_us == 1  # its marked answer is never acknowledged
    else:
        assert sent_by_us == 1 + mail.settings.smtp.auto_limit_same_subject  # the rate limit ended it
