"""`serve` in one asyncio process: mail fetched over IMAP (real Dovecot) is acknowledged over SMTP (real aiosmtpd)."""

from __future__ import annotations

import asyncio

from core.mail.serve import serve
from tests.mailserver import MailUser
from tests.outbox_fixtures import CUSTOMER, customer_mail, open_mail_desk
from tests.smtpserver import SmtpServer, wait_for


async def test_serve_runs_the_sync_and_the_outbox_together_and_stops_on_request(
    db_url: str, smtp_server: SmtpServer, mail_user: MailUser
) -> None:
    mail = await open_mail_desk(db_url, smtp_server)
    settings = mail.settings.model_copy(update={"mailbox": [mail_user.settings(department="Support")]})
    stop = asyncio.Event()
    task = asyncio.create_task(serve(mail.desk, settings, stop))
    try:
        mail_user.deliver([customer_mail(message_id="<served@customer.example>")])
        await wait_for(lambda: len(smtp_server.recorder.to(CUSTOMER)) == 1, what="the acknowledgement")
        [ack] = smtp_server.recorder.to(CUSTOMER)
        assert str(ack.message["In-Reply-To"]) == "<served@customer.example>"
        # A second mail while serving: the sync (IDLE) and the worker (polling) both pick it up.
        mail_user.deliver([customer_mail("Another question", sender="dora@customer.example")])
        await wait_for(lambda: len(smtp_server.recorder.to("dora@customer.example")) == 1, what="the second ack")
    finally:
        stop.set()
        ran = await asyncio.wait_for(task, 120)
        await mail.desk.close()
    assert ran == ["sync", "outbox", "scheduler"]
