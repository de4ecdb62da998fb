"""Tables of the automation: rules kept in the database, and each department's round-robin cursor.

A rule's trigger, condition groups and actions are JSON documents validated by
`core.rules.model` on the way in, so the schema never changes when a condition
or action kind is added.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import utcnow


class Rule(Base):
    __tablename__ = "rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    note: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    position: Mapped[int] = mapped_column(Integer, default=0)  # evaluation order, then id
    stop: Mapped[bool] = mapped_column(Boolean, default=False)  # no later rule runs on the same occurrence
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    conditions: Mapped[list[Any]] = mapped_column(JSON, default=list)  # groups: any group matching all its items
    actions: Mapped[list[Any]] = mapped_column(JSON, default=list)
    # A rule acts on events written after it was added or switched on, never on older history.
    start_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_rules_active_position", "active", "position", "id"),)


class AssignmentCursor(Base):
    """The agent a department's round-robin handed its last ticket to; the next one goes to the one after."""

    __tablename__ = "assignment_cursors"

    department_id: Mapped[int] = mapped_column(ForeignKey("departments.id", ondelete="CASCADE"), primary_key=True)
    last_agent_id: Mapped[int | None] = mapped_column(Integer)


class AutomationCursor(Base):
    """How far a consumer of the change feed has got (the rules: the last event id they processed).

    Advanced in the same transaction as the actions the events caused, so every
    event is processed exactly once, whoever runs the rules.
    """

    __tablename__ = "automation_cursors"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_event_id: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


__all__ = ["AssignmentCursor", "AutomationCursor", "Rule"]
