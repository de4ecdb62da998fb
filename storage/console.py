"""Tables the agent console keeps in the database: kept reply drafts, who is on which ticket (presence),
and each department's canned responses.

All live in the database, not in a console process, so a draft survives a
restart, presence is seen by consoles on other SSH hosts, and a canned
response edited with the CLI is offered in every console at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import utcnow


class Draft(Base):
    """An agent's unsent reply or note on a ticket; one per agent, ticket and kind."""

    __tablename__ = "drafts"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Presence(Base):
    """An agent viewing or replying to a ticket, as of their console's last heartbeat."""

    __tablename__ = "presence"

    agent_id: Mapped[int] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), primary_key=True)
    activity: Mapped[str] = mapped_column(String(16))  # viewing / replying
    seen_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_presence_ticket", "ticket_id", "seen_at"),)


class CannedResponse(Base):
    """A department's ready-made reply text; a Jinja2 template rendered in the sandbox when inserted."""

    __tablename__ = "canned_responses"

    id: Mapped[int] = mapped_column(primary_key=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(120))
    body: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (UniqueConstraint("department_id", "name"),)
