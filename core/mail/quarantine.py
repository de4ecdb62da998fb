"""The quarantine: mail kept raw because it could not be imported, shown to admins with the reason.

`retry` runs a mail through the intake again (after a limit was raised or a
parser fixed); `release` imports it anyway, as a ticket whose body is the
best readable text that can be had from the raw bytes, so nothing a customer
sent is ever lost to a parser's opinion.
"""

from __future__ import annotations

import email
import re
from dataclasses import dataclass, replace
from datetime import datetime
from email.header import decode_header, make_header
from email.policy import compat32

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import tickets
from core.desk import ActorLike
from core.errors import NotFound
from core.mail.intake import BatchResult, Intake, RawMail, Source
from core.mail.message import MailAddress, ParsedMail, Unparseable
from core.policy import require_admin
from storage.models import RawMail as RawMailRow

# Only what a person needs to recognise the mail; never rendered as markup.
PREVIEW_HEADERS = ("From", "To", "Subject", "Date", "Message-ID")
UNKNOWN_SENDER = "unknown-sender@termdesk.invalid"
_ADDRESS = re.compile(r"[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")


@dataclass(frozen=True)
class QuarantineEntry:
    id: int
    source: str
    uid: int | None
    state: str
    reason: str
    size: int
    received_at: datetime
    sender: str
    subject: str

    def to_json(self) -> dict[str, object]:
        return {**self.__dict__, "received_at": self.received_at.isoformat()}


def _header_text(value: str | None) -> str:
    if not value:
        return ""
    try:
        return str(make_header(decode_header(value)))
    except Exception:  # noqa: BLE001 - broken encoded words: show them as they are
        return value


def _headers(data: bytes) -> dict[str, str]:
    """A forgiving look at the top headers; used only to label quarantined mail."""
    head = data[:65536].split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    message = email.message_from_bytes(head, policy=compat32)
    return {name: _header_text(message.get(name)) for name in PREVIEW_HEADERS}


def _entry(row: RawMailRow) -> QuarantineEntry:
    headers = _headers(row.data)
    return QuarantineEntry(
        id=row.id,
        source=row.source,
        uid=row.uid,
        state=row.state,
        reason=row.reason or "",
        size=row.size,
        received_at=row.received_at,
        sender=headers["From"],
        subject=headers["Subject"],
    )


class Quarantine:
    def __init__(self, intake: Intake) -> None:
        self.intake = intake
        self.db = intake.desk.db

    async def entries(self, actor: ActorLike, *, limit: int = 200) -> list[QuarantineEntry]:
        require_admin(await self.intake.desk.resolve(actor), "see quarantined mail")
        async with self.db.reading() as session:
            rows = await session.execute(
                select(RawMailRow)
                .where(RawMailRow.state == "quarantined")
                .order_by(RawMailRow.id.desc())
                .limit(limit)
            )
            return [_entry(row) for row in rows.scalars()]

    async def show(self, actor: ActorLike, raw_id: int) -> tuple[QuarantineEntry, dict[str, str], bytes]:
        require_admin(await self.intake.desk.resolve(actor), "see quarantined mail")
        async with self.db.reading() as session:
            row = await self._row(session, raw_id)
            return _entry(row), _headers(row.data), row.data

    async def retry(self, actor: ActorLike, raw_id: int) -> BatchResult | str:
        """Import the mail if it now parses; otherwise the (possibly new) reason it still cannot be."""
        require_admin(await self.intake.desk.resolve(actor), "retry quarantined mail")
        async with self.db.writing() as session:
            row = await self._row(session, raw_id)
            parsed = self.intake.parse(row.data)
            if isinstance(parsed, Unparseable):
                row.reason = parsed.reason
                return parsed.reason
            return await self._replace(session, row, parsed)

    async def release(self, actor: ActorLike, raw_id: int) -> BatchResult:
        """Import the mail whatever is wrong with it, from its best readable text."""
        require_admin(await self.intake.desk.resolve(actor), "release quarantined mail")
        async with self.db.writing() as session:
            row = await self._row(session, raw_id)
            parsed = self.intake.parse(row.data, relaxed=True)
            if isinstance(parsed, Unparseable):
                parsed = self._best_effort(row, parsed.reason)
            elif not parsed.sender.address:
                parsed = replace(parsed, sender=MailAddress(UNKNOWN_SENDER, parsed.sender.name))
            return await self._replace(session, row, parsed)

    async def _replace(self, session: AsyncSession, row: RawMailRow, parsed: ParsedMail) -> BatchResult:
        source = Source(name=row.source, department=row.department, uidvalidity=row.uidvalidity)
        mail = RawMail(data=row.data, uid=row.uid)
        # The quarantine row gives way to the imported one (same bytes, same source).
        await session.execute(delete(RawMailRow).where(RawMailRow.id == row.id))
        context = await self.intake.context(session, row.source, [parsed.message_id[:900]])
        return await self.intake.import_mail(session, source, mail, row.sha256, parsed, context)

    def _best_effort(self, row: RawMailRow, reason: str) -> ParsedMail:
        headers = _headers(row.data)
        found = _ADDRESS.search(headers["From"])
        text = row.data[: tickets.MAX_BODY].decode("utf-8", "replace").replace("\x00", "\ufffd")
        return ParsedMail(
            message_id=f"released-{row.sha256}@termdesk.invalid",
            has_message_id=False,
            subject=headers["Subject"] or "(quarantined mail)",
            sender=MailAddress(found.group(0).lower() if found else UNKNOWN_SENDER),
            reply_to=None,
            to=(),
            cc=(),
            date=None,
            in_reply_to=(),
            references=(),
            text=text,
            html=None,
            display_text=text,
            defects=(f"released from quarantine: {reason}",),
        )

    async def _row(self, session: AsyncSession, raw_id: int) -> RawMailRow:
        row = (
            await session.execute(
                select(RawMailRow).where(RawMailRow.id == raw_id, RawMailRow.state == "quarantined")
            )
        ).scalar_one_or_none()
        if row is None:
            raise NotFound(
                f"No quarantined mail {raw_id} exists; list them with `termdesk quarantine list`."
            )
        return row
