"""Threading: which ticket an incoming mail belongs to, if any.

In order: our reference in the subject (`[#TD-1042]`), then In-Reply-To, then
References (newest first), against the Message-IDs of every thread entry we
received or sent; a bounce is also matched by the Message-IDs quoted in its
report. A subject reference alone is trusted only when something else ties
the mail to that ticket — the ticket's own contact wrote it, or it answers
one of the ticket's messages, or it comes from one of our own addresses — so
a forwarded mail that carries another customer's reference opens a new ticket
instead of joining (and reading) someone else's conversation.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.mail.message import ParsedMail
from storage.models import Agent, Contact, Department, Message, Ticket

_SUBJECT_REF = re.compile(r"\[\s*#?\s*([A-Za-z][A-Za-z0-9]{0,9})-(\d{1,18})\s*\]")
_QUOTED_MESSAGE_ID = re.compile(r"^\s*Message-ID:\s*<([^<>\s]{1,900})>", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class ThreadMatch:
    ticket: Ticket
    how: str  # "subject-ref" | "in-reply-to" | "references" | "bounce"


def subject_ticket_ids(subject: str, prefix: str) -> list[int]:
    """Ticket ids referenced as `[#PREFIX-N]` in a subject; other desks' prefixes are ignored."""
    return [
        int(number) for found_prefix, number in _SUBJECT_REF.findall(subject) if found_prefix.upper() == prefix.upper()
    ]


async def _tickets_by_message_ids(session: AsyncSession, ids: list[str]) -> dict[str, Ticket]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Message.message_id, Ticket).join(Ticket, Ticket.id == Message.ticket_id).where(
            Message.message_id.in_(ids)
        )
    )
    return {message_id: ticket for message_id, ticket in rows if message_id is not None}  # IN () holds no NULL


async def _is_our_address(session: AsyncSession, address: str) -> bool:
    if not address:
        return False
    department = await session.execute(select(Department.id).where(Department.email == address).limit(1))
    if department.first() is not None:
        return True
    agent = await session.execute(select(Agent.id).where(Agent.email == address).limit(1))
    return agent.first() is not None


async def _ref_is_trusted(session: AsyncSession, ticket: Ticket, parsed: ParsedMail, answered: set[int]) -> bool:
    if ticket.id in answered:
        return True
    contact_email = (
        await session.execute(select(Contact.email).where(Contact.id == ticket.contact_id))
    ).scalar_one_or_none()
    if contact_email is not None and parsed.sender.address == contact_email:
        return True
    return await _is_our_address(session, parsed.sender.address)


def bounced_message_ids(parsed: ParsedMail) -> list[str]:
    """Message-IDs quoted in a delivery report (its text and any returned headers/message)."""
    found = _QUOTED_MESSAGE_ID.findall(parsed.text)
    for attachment in parsed.attachments:
        if attachment.content_type in ("message/rfc822", "text/rfc822-headers", "message/rfc822-headers"):
            found.extend(_QUOTED_MESSAGE_ID.findall(attachment.data[:65536].decode("utf-8", "replace")))
    return found


async def find_thread(session: AsyncSession, parsed: ParsedMail, prefix: str) -> ThreadMatch | None:
    header_ids = [*parsed.in_reply_to, *reversed(parsed.references)]
    by_header = await _tickets_by_message_ids(session, header_ids)
    answered = {ticket.id for ticket in by_header.values()}

    for ticket_id in subject_ticket_ids(parsed.subject, prefix):
        ticket = await session.get(Ticket, ticket_id)
        if ticket is not None and await _ref_is_trusted(session, ticket, parsed, answered):
            return ThreadMatch(ticket, "subject-ref")

    for message_id in parsed.in_reply_to:
        if message_id in by_header:
            return ThreadMatch(by_header[message_id], "in-reply-to")
    for message_id in reversed(parsed.references):
        if message_id in by_header:
            return ThreadMatch(by_header[message_id], "references")

    if parsed.is_bounce:
        quoted = await _tickets_by_message_ids(session, bounced_message_ids(parsed))
        if quoted:
            return ThreadMatch(next(iter(quoted.values())), "bounce")
    return None
