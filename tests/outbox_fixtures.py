"""A desk wired to a real SMTP server (tests.smtpserver), and mail written the way customers write it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
from sqlalchemy import select

from core import Desk
from core.config import DeskSettings, Settings, SmtpSettings
from core.mail.intake import BatchResult, Intake, RawMail, Source
from core.mail.outbox import MailOutbox
from core.mail.sender import OutboxWorker
from core.policy import Actor
from storage.database import Database
from storage.models import Event
from storage.outbox import OutboxMail
from storage.types import utcnow
from tests.smtpserver import SmtpServer

SUPPORT = "support@desk.example"
CUSTOMER = "carla@customer.example"


def smtp_settings(server: SmtpServer, **overrides: object) -> SmtpSettings:
    values: dict[str, object] = {
        "host": "127.0.0.1",
        "port": server.port,
        "security": "none",
        "retry_delays_seconds": [0.05],
        "poll_seconds": 0.05,
        "timeout_seconds": 20,
        "claim_seconds": 60,
        **overrides,
    }
    return SmtpSettings.model_validate(values)


@dataclass
class MailDesk:
    desk: Desk
    settings: Settings
    server: SmtpServer
    intake: Intake

    def worker(self, clock: Callable[[], datetime] = utcnow, **overrides: object) -> OutboxWorker:
        settings = self.settings.smtp.model_copy(update=overrides) if overrides else self.settings.smtp
        return OutboxWorker(self.desk.db, settings, clock=clock)

    async def receive(self, data: bytes) -> BatchResult:
        return await self.intake.ingest_batch(Source("import", "Support"), [RawMail(data)])

    async def rows(self, **where: object) -> list[OutboxMail]:
        async with self.desk.db.reading() as session:
            query = select(OutboxMail).order_by(OutboxMail.id)
            for name, value in where.items():
                query = query.where(getattr(OutboxMail, name) == value)
            rows = list((await session.execute(query)).scalars())
            session.expunge_all()
            return rows

    async def events(self, kind: str) -> list[Event]:
        async with self.desk.db.reading() as session:
            rows = list((await session.execute(select(Event).where(Event.kind == kind).order_by(Event.id))).scalars())
            session.expunge_all()
            return rows


async def open_mail_desk(
    db_url: str, server: SmtpServer, *, clock: Callable[[], datetime] = utcnow, **smtp: object
) -> MailDesk:
    settings = Settings(smtp=smtp_settings(server, **smtp), desk=DeskSettings(web_address="https://desk.example"))
    desk = Desk(Database(db_url), settings, MailOutbox(settings, clock=clock))
    await desk.init()
    operator = Actor.operator()
    await desk.add_department(
        operator, "Support", email=SUPPORT, sender_name="Acme Support", signature="Acme Support Team\n+1 555 0100"
    )
    await desk.add_department(operator, "Billing", email="billing@desk.example", sender_name="Acme Billing")
    await desk.add_agent(operator, "alice", name="Alice Agent", email="alice@staff.example", departments=["Support"])
    await desk.add_agent(operator, "bob", name="Bob Agent", email="bob@staff.example", departments=["Support"])
    return MailDesk(desk, settings, server, Intake(desk, settings))


@pytest.fixture
async def mail_desk(db_url: str, smtp_server: SmtpServer) -> AsyncIterator[MailDesk]:
    opened = await open_mail_desk(db_url, smtp_server)
    yield opened
    await opened.desk.close()


def customer_mail(
    subject: str = "Printer on fire",
    body: str = "Hello,\nmy printer is on fire.\nCarla",
    *,
    sender: str = CUSTOMER,
    name: str = "Carla Customer",
    to: str = SUPPORT,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    message_id: str | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = f"{name} <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = message_id or make_msgid(idstring=uuid.uuid4().hex[:8], domain="customer.example")
    message["Date"] = "Mon, 23 Nov 2026 10:00:00 +0000"
    if in_reply_to:
        message["In-Reply-To"] = in_reply_to
    if references:
        message["References"] = references
    for header, value in (headers or {}).items():
        message[header] = value
    message.set_content(body)
    return message.as_bytes()
