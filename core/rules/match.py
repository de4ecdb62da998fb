"""Conditions against a ticket: the facts a rule can ask about, and the operators, case-folded for every script.

Text is compared after NFC normalisation and `str.casefold()` on both sides,
so "STRASSE" equals "straße", "ПРИВЕТ" contains "привет", a Vietnamese word
typed with combining accents equals the precomposed one, and scripts without
case (Thai) compare as they are. Regexes run on the folded text with
IGNORECASE; the text they see is capped (`MAX_REGEX_TEXT`) because Python's
`re` has no time limit.

A field may have several values (tags, recipients): positive operators hold
when any value matches any wanted value; `not_contains` / `not_equals` hold
when none does.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.rules.model import Condition
from storage.models import Agent, Contact, Department, Message, RawMail, Tag, Ticket, TicketTag
from storage.types import MessageKind, Priority

MAX_REGEX_TEXT = 100_000


def fold(text: str) -> str:
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


@lru_cache(maxsize=1024)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _one(op: str, actual: str, wanted: str) -> bool:
    if op == "regex":
        return _regex(wanted).search(fold(actual[:MAX_REGEX_TEXT])) is not None
    have, want = fold(actual), fold(wanted)
    if op in ("contains", "not_contains"):
        return want in have
    if op == "starts":
        return have.startswith(want)
    if op == "ends":
        return have.endswith(want)
    return have == want  # equals, not_equals


def text_matches(op: str, actual: list[str], wanted: str | list[str]) -> bool:
    wanted_list = wanted if isinstance(wanted, list) else [wanted]
    hit = any(_one(op, value, item) for value in actual for item in wanted_list)
    return not hit if op in ("not_contains", "not_equals") else hit


def number_matches(op: str, actual: float | None, wanted: float) -> bool:
    if actual is None:
        return op == "not_equals"
    return {
        "lt": actual < wanted, "le": actual <= wanted, "gt": actual > wanted, "ge": actual >= wanted,
        "equals": actual == wanted, "not_equals": actual != wanted,
    }[op]


def _domain(address: str) -> str:
    return address.rsplit("@", 1)[-1] if "@" in address else ""


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


class Prefetched:
    """Facts of a batch of tickets read with a few IN queries, so the engine does not query per event."""

    def __init__(self) -> None:
        self.tickets: dict[int, Ticket] = {}  # held here: the session's identity map only keeps weak references
        self.tags: dict[int, list[str]] = {}
        self.messages: dict[int, Message] = {}  # by message id
        self.latest: dict[int, Message] = {}  # ticket id -> latest customer message
        self.contacts: dict[int, Contact] = {}
        self.departments: dict[int, Department] = {}
        self.changed: set[int] = set()  # tickets a rule changed since: their prefetched facts are stale

    @classmethod
    async def load(cls, session: AsyncSession, ticket_ids: list[int], message_ids: list[int]) -> Prefetched:
        found = cls()
        ids = sorted(set(ticket_ids))
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            tickets = (await session.execute(select(Ticket).where(Ticket.id.in_(chunk)))).scalars().all()
            found.tickets.update((ticket.id, ticket) for ticket in tickets)
            contact_ids = sorted({ticket.contact_id for ticket in tickets})
            for contact in (await session.execute(select(Contact).where(Contact.id.in_(contact_ids)))).scalars():
                found.contacts[contact.id] = contact
            for ticket_id in chunk:
                found.tags[ticket_id] = []
            rows = await session.execute(
                select(TicketTag.ticket_id, Tag.name).join(Tag, Tag.id == TicketTag.tag_id)
                .where(TicketTag.ticket_id.in_(chunk))
            )
            for ticket_id, name in rows:
                found.tags[ticket_id].append(name)
            latest = (
                select(func.max(Message.id))
                .where(Message.ticket_id.in_(chunk), Message.kind == MessageKind.CUSTOMER.value)
                .group_by(Message.ticket_id)
            )
            for message in (await session.execute(select(Message).where(Message.id.in_(latest)))).scalars():
                found.latest[message.ticket_id] = message
        wanted = sorted(set(message_ids))
        for start in range(0, len(wanted), 500):
            messages = await session.execute(select(Message).where(Message.id.in_(wanted[start : start + 500])))
            for message in messages.scalars():
                found.messages[message.id] = message
        for department in (await session.execute(select(Department))).scalars():
            found.departments[department.id] = department
        return found


class Facts:
    """What the conditions may ask about one ticket, loaded on first use.

    `message_id` is the thread entry the trigger was about (the customer's new
    mail); without it the mail fields read the ticket's latest customer message.
    `prefetched` holds what the engine read for its whole batch; it is only
    trusted until a rule changes the ticket (the engine then makes new Facts
    without it).
    """

    def __init__(self, session: AsyncSession, ticket: Ticket, *, message_id: int | None = None,
                 now: datetime | None = None, prefetched: Prefetched | None = None) -> None:
        self.session = session
        self.ticket = ticket
        self.message_id = message_id
        self.now = now or datetime.now(UTC)
        self._cache: dict[str, Any] = {}
        if prefetched is not None and ticket.id not in prefetched.changed:
            if ticket.id in prefetched.tags:
                self._cache["tags"] = prefetched.tags[ticket.id]
            message = prefetched.messages.get(message_id) if message_id is not None else None
            if message is not None or (message_id is None and ticket.id in prefetched.tags):
                self._cache["message"] = message or prefetched.latest.get(ticket.id)
            if ticket.contact_id in prefetched.contacts:
                self._cache["contact"] = prefetched.contacts[ticket.contact_id]
            if ticket.department_id in prefetched.departments:
                self._cache["department"] = prefetched.departments[ticket.department_id]

    async def _message(self) -> Message | None:
        if "message" not in self._cache:
            found = None
            if self.message_id is not None:
                found = await self.session.get(Message, self.message_id)
            if found is None:
                found = (
                    await self.session.execute(
                        select(Message)
                        .where(Message.ticket_id == self.ticket.id, Message.kind == MessageKind.CUSTOMER.value)
                        .order_by(Message.id.desc())
                        .limit(1)
                    )
                ).scalar_one_or_none()
            self._cache["message"] = found
        message: Message | None = self._cache["message"]
        return message

    async def department(self) -> Department:
        department = self._cache.get("department")
        if department is None or department.id != self.ticket.department_id:
            department = self._cache["department"] = await self.session.get(Department, self.ticket.department_id)
        assert department is not None
        return department

    async def contact(self) -> Contact:
        if "contact" not in self._cache:
            self._cache["contact"] = await self.session.get(Contact, self.ticket.contact_id)
        contact: Contact = self._cache["contact"]
        return contact

    async def texts(self, name: str) -> list[str]:
        ticket = self.ticket
        if name == "channel":
            return [ticket.channel]
        if name == "subject":
            return [ticket.subject]
        if name == "status":
            return [ticket.status]
        if name == "priority":
            return [Priority(ticket.priority).label]
        if name == "department":
            department = await self.department()
            return [department.name, department.slug]
        if name == "assignee":
            if ticket.assignee_id is None:
                return [""]
            agent = await self.session.get(Agent, ticket.assignee_id)
            return [agent.handle if agent else ""]
        if name == "tag":
            if "tags" not in self._cache:
                rows = await self.session.execute(
                    select(Tag.name).join(TicketTag, TicketTag.tag_id == Tag.id).where(TicketTag.ticket_id == ticket.id)
                )
                self._cache["tags"] = list(rows.scalars())
            return list(self._cache["tags"])
        if name.startswith("contact."):
            value = ((await self.contact()).attributes or {}).get(name.removeprefix("contact."))
            return [] if value is None else [str(item) for item in value] if isinstance(value, list) else [str(value)]
        message = await self._message()
        if name == "body":
            return [message.body_text] if message else []
        if name in ("from", "from_domain"):
            address = (message.from_address if message and message.from_address else (await self.contact()).email)
            return [address.lower() if name == "from" else _domain(address.lower())]
        if name in ("to", "to_domain"):
            addresses = [part.strip().lower() for part in (message.to_addresses or "").split(",")] if message else []
            addresses = [address for address in addresses if address]
            return addresses if name == "to" else [_domain(address) for address in addresses]
        if name == "mailbox":
            if message is None or message.raw_mail_id is None:
                return []
            raw = await self.session.get(RawMail, message.raw_mail_id)
            return [raw.source] if raw else []
        raise AssertionError(f"unknown field {name}")  # parse_condition let only known fields in

    async def number(self, name: str) -> float | None:
        ticket = self.ticket
        since = {
            "hours_since_created": ticket.created_at,
            "hours_since_customer_message": ticket.last_customer_message_at,
            "hours_since_agent_reply": ticket.last_agent_reply_at,
        }[name]
        start = _aware(since)
        if start is None:
            return None
        return (self.now - start).total_seconds() / 3600

    async def business_hours(self) -> str:
        from core.sla import policy_of

        policy = policy_of(await self.department())
        if policy is None:
            return "open"
        return "open" if policy.calendar.is_open(self.now) else "closed"


async def condition_holds(condition: Condition, facts: Facts) -> bool:
    if condition.field == "business_hours":
        state = await facts.business_hours()
        return (state == condition.value) == (condition.op == "equals")
    if condition.field.startswith("hours_since_"):
        return number_matches(condition.op, await facts.number(condition.field), float(condition.value))
    return text_matches(condition.op, await facts.texts(condition.field), condition.value)


async def matches(groups: tuple[tuple[Condition, ...], ...], facts: Facts) -> bool:
    """True when there are no groups, or any group has all its conditions hold."""
    if not groups:
        return True
    for group in groups:
        for condition in group:
            if not await condition_holds(condition, facts):
                break
        else:
            return True
    return False
