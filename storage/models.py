"""The relational schema of a desk: SQLAlchemy 2.0 typed models for every table.

Vocabularies (status, role, kind, …) are stored as short strings, not database
enums, so adding a value never needs an ALTER TYPE on PostgreSQL. The
`events` table is append-only: it is both the change feed that live screens
follow and each ticket's history.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

from storage.types import UTCDateTime, utcnow

# Named constraints keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# BigInteger ids on PostgreSQL; SQLite needs plain INTEGER for rowid aliasing.
BigId: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON(), list[str]: JSON()}


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True)
    email: Mapped[str] = mapped_column(String(320))
    sender_name: Mapped[str] = mapped_column(String(200), default="")
    signature: Mapped[str] = mapped_column(Text, default="")
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Agent(Base):
    __tablename__ = "agents"

    id: Mapped[int] = mapped_column(primary_key=True)
    handle: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16), default="agent")
    availability: Mapped[str] = mapped_column(String(16), default="available")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    """An agent belongs to many departments; this row is what access is made of."""

    __tablename__ = "memberships"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_memberships_department_agent", "department_id", "agent_id"),)


class Contact(Base):
    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)  # stored lower-cased
    name: Mapped[str] = mapped_column(String(200), default="")
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Ticket(Base):
    __tablename__ = "tickets"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    subject: Mapped[str] = mapped_column(Text)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    status: Mapped[str] = mapped_column(String(16), default="new")
    priority: Mapped[int] = mapped_column(SmallInteger, default=1)
    channel: Mapped[str] = mapped_column(String(16), default="email")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    first_response_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]
    last_customer_message_at: Mapped[datetime | None]
    last_agent_reply_at: Mapped[datetime | None]
    first_response_due: Mapped[datetime | None]
    next_response_due: Mapped[datetime | None]
    resolution_due: Mapped[datetime | None]
    # SLA bookkeeping (core.sla): the next instant the time-based scan must look at this ticket
    # (an at-risk or breach moment), and the clock's state (pending pauses, warnings given).
    sla_check_at: Mapped[datetime | None]
    sla_state: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The dashboard's moments (core.sla, migration 0010), set only on new and open tickets: the earliest
    # at-risk moment and due time of a running clock, and when the customer's wait for an answer began.
    sla_risk_at: Mapped[datetime | None]
    sla_breach_at: Mapped[datetime | None]
    waiting_since: Mapped[datetime | None]
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    # Report durations (core.reports.durations), stored when they happen because business time
    # cannot be computed in SQL: business minutes (calendar minutes without hours), pending time
    # not counted, from creation to the first agent reply and to the latest resolution.
    first_response_minutes: Mapped[float | None] = mapped_column(Float)
    resolution_minutes: Mapped[float | None] = mapped_column(Float)
    # Optimistic locking: every UPDATE carries "WHERE version = <read version>".
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
    __table_args__ = (
        # Queue pages: a department's queue by status, newest activity first.
        Index("ix_tickets_queue", "department_id", "status", "updated_at", "id"),
        Index("ix_tickets_department_updated", "department_id", "updated_at", "id"),
        # "Mine" and per-agent load.
        Index("ix_tickets_assignee_status", "assignee_id", "status", "updated_at", "id"),
        Index("ix_tickets_updated", "updated_at", "id"),
        Index("ix_tickets_contact", "contact_id", "id"),
        Index("ix_tickets_department_priority", "department_id", "priority", "id"),
        Index("ix_tickets_department_due", "department_id", "resolution_due", "id"),
        # Reports range over these times (migration 0006).
        Index("ix_tickets_created", "created_at", "department_id", "status"),
        # With the assignee (migration 0010): the dashboard's resolutions of today per agent, from the index.
        Index("ix_tickets_resolved", "resolved_at", "department_id", "status", "assignee_id"),
        Index("ix_tickets_first_response", "first_response_at", "department_id"),
        Index("ix_tickets_first_response_due", "first_response_due", "department_id"),
        Index("ix_tickets_resolution_due", "resolution_due", "department_id"),
        # The time-based scan reads only tickets whose next SLA moment has come.
        Index("ix_tickets_sla_check", "sla_check_at"),
        # The dashboard counts SLA at risk / breached per department by range, and finds the oldest wait by
        # one index step; partial, as only new and open tickets carry these (migration 0010).
        *(
            Index(
                f"ix_tickets_{column}", "department_id", column,
                sqlite_where=text(f"{column} IS NOT NULL"), postgresql_where=text(f"{column} IS NOT NULL"),
            )
            for column in ("sla_risk_at", "sla_breach_at", "waiting_since")
        ),
    )


class Message(Base):
    """One entry of a ticket's thread: customer mail, agent reply, internal note or system line."""

    __tablename__ = "messages"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    author_agent_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    author_contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(998))  # RFC 5322 Message-ID
    in_reply_to: Mapped[str | None] = mapped_column(String(998))
    references: Mapped[str | None] = mapped_column(Text)
    # Delivery of outgoing mail (queued / sent / failed), filled by the outbox.
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Mail only: the message's own subject and addresses, the text with quoted
    # history trimmed for display (body_text keeps everything), the loop-guard
    # flags (never auto-answer when non-empty), parse warnings, and the raw mail.
    subject: Mapped[str | None] = mapped_column(Text)
    from_address: Mapped[str | None] = mapped_column(String(320))
    to_addresses: Mapped[str | None] = mapped_column(Text)
    body_display: Mapped[str | None] = mapped_column(Text)
    automatic: Mapped[list[str] | None] = mapped_column(JSON)
    warnings: Mapped[list[str] | None] = mapped_column(JSON)
    raw_mail_id: Mapped[int | None] = mapped_column(ForeignKey("raw_mails.id", ondelete="SET NULL"))
    # On agent replies: business minutes (pending not counted) since the earliest customer message
    # it answers; None when no customer message was waiting (core.reports.durations).
    answer_minutes: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_messages_ticket", "ticket_id", "id"),
        Index("ix_messages_message_id", "message_id"),
        Index("ix_messages_created", "created_at", "kind", "ticket_id", "author_agent_id"),  # reports
        Index("ix_messages_ticket_kind", "ticket_id", "kind", "created_at"),  # reports: the next reply
    )


class RawMail(Base):
    """Every mail as received, kept before anything else is done with it.

    `dedupe_key` is the mail's identity (its Message-ID, or one derived from
    the bytes): unique per source, so a mail fetched twice — after a crash, a
    UIDVALIDITY change, or by two workers — is imported once.
    """

    __tablename__ = "raw_mails"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(100))
    # The source's default department at arrival, so a quarantined mail can be retried alone.
    department: Mapped[str] = mapped_column(String(120))
    uidvalidity: Mapped[int | None] = mapped_column(BigInteger)
    uid: Mapped[int | None] = mapped_column(BigInteger)
    dedupe_key: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    # imported | duplicate | quarantined | dropped | released
    state: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))

    __table_args__ = (
        Index("uq_raw_mails_source_dedupe", "source", "dedupe_key", unique=True),
        Index("ix_raw_mails_state", "state", "id"),
        Index("ix_raw_mails_sha256", "sha256"),
    )


class MailboxCheckpoint(Base):
    """How far a mailbox has been read: committed with the raw mails of each batch."""

    __tablename__ = "mailbox_checkpoints"

    source: Mapped[str] = mapped_column(String(100), primary_key=True)
    uidvalidity: Mapped[int] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Blob(Base):
    """Attachment content, stored once per distinct sha256."""

    __tablename__ = "blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Attachment(Base):
    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    filename: Mapped[str] = mapped_column(String(1000))
    content_type: Mapped[str] = mapped_column(String(255), default="application/octet-stream")
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(ForeignKey("blobs.sha256"), index=True)
    inline: Mapped[bool] = mapped_column(Boolean, default=False)


class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)


class TicketTag(Base):
    __tablename__ = "ticket_tags"

    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_ticket_tags_tag_ticket", "tag_id", "ticket_id"),)


class QueueCounter(Base):
    """Tickets per (department, status, assigned?), kept in the same transaction as each change.

    A GROUP BY over a million tickets costs tens of milliseconds; reading these
    rows costs well under one. `termdesk check` rebuilds them from the tickets.
    """

    __tablename__ = "queue_counters"

    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    assigned: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class AgentLoadCounter(Base):
    """Tickets per (department, assignee, status), kept with the queue counters (core.counters) so the
    dashboard reads every agent's load without counting their tickets."""

    __tablename__ = "agent_load_counters"

    department_id: Mapped[int] = mapped_column(
        ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True
    )
    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)


class Rating(Base):
    """A customer's rating of a ticket (or of one reply in it); the ticket's rating is its latest one."""

    __tablename__ = "ratings"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="SET NULL"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id", ondelete="SET NULL"))
    score: Mapped[int] = mapped_column(SmallInteger)  # +1 positive, -1 negative
    comment: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_ratings_ticket", "ticket_id", "id"),)


class Event(Base):
    """Append-only change feed and ticket history: who did what, when, before/after."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(64))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("agents.id", ondelete="SET NULL"))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    # The department the change happened in, and for transfers the one it left:
    # live screens of both need to hear about it.
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id", ondelete="SET NULL"))
    prior_department_id: Mapped[int | None] = mapped_column(
        ForeignKey("departments.id", ondelete="SET NULL")
    )
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (Index("ix_events_ticket", "ticket_id", "id"),)


__all__ = [
    "Agent",
    "Attachment",
    "Base",
    "Blob",
    "Contact",
    "Department",
    "Event",
    "Membership",
    "MailboxCheckpoint",
    "Message",
    "QueueCounter",
    "RawMail",
    "Tag",
    "Ticket",
    "TicketTag",
]

# Tables owned by other storage modules, on the same Base so one metadata sees them all.
from storage import console as _console  # noqa: E402, F401
from storage import report_cache as _report_cache  # noqa: E402, F401
from storage.outbox import OutboxMail  # noqa: E402, F401
from storage.rules import AssignmentCursor, AutomationCursor, Rule  # noqa: E402, F401
