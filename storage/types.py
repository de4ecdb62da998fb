"""Column types shared by the models: UTC timestamps and the closed vocabularies.

Timestamps are stored as naive UTC (SQLite has no time zones) and always come
back timezone-aware, so no layer above ever compares naive with aware times.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime stored as naive UTC and returned aware (tzinfo=UTC)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use datetime.now(UTC)")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # raw SQL paths on SQLite hand back text
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Role(enum.StrEnum):
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


class Availability(enum.StrEnum):
    AVAILABLE = "available"
    PAUSED = "paused"
    OFFLINE = "offline"


class Status(enum.StrEnum):
    NEW = "new"
    OPEN = "open"
    PENDING = "pending"
    RESOLVED = "resolved"
    CLOSED = "closed"
    SPAM = "spam"


class Priority(enum.IntEnum):
    """Stored as a small integer so queues can sort by urgency with an index."""

    LOW = 0
    NORMAL = 1
    HIGH = 2
    URGENT = 3

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Priority:
        return cls[text.strip().upper()]


class MessageKind(enum.StrEnum):
    CUSTOMER = "customer"
    REPLY = "reply"
    NOTE = "note"
    SYSTEM = "system"


class Channel(enum.StrEnum):
    EMAIL = "email"
    WEB = "web"
    PHONE = "phone"
    CHAT = "chat"
    API = "api"
    # Social channels, for tickets that integrations open (the rules route them).
    FACEBOOK = "facebook"
    TWITTER = "twitter"
