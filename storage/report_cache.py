"""Tables of the report day cache (core/reports/daycache.py) and the dirty-day marks its triggers write.

Migration 0009 owns the triggers that fill `report_dirty_days` on every change to tickets, messages,
ticket tags and ratings; nothing in Python writes marks, so no write path can forget one.
"""

from __future__ import annotations

from sqlalchemy import Index, Integer, LargeBinary, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base


class ReportDirtyDay(Base):
    """A UTC day ('YYYY-MM-DD') some change touched since the cache last dropped it."""

    __tablename__ = "report_dirty_days"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))

    __table_args__ = (Index("ix_report_dirty_days_day", "day"),)


class ReportDroppedDay(Base):
    """A past day whose marks a refresher dropped (core.reports.daycache.drop_marked), in drop order: a
    computation that began before the drop must not store that day. The oldest rows are pruned; the ids are
    never reused (AUTOINCREMENT on SQLite, a sequence on PostgreSQL), so they order drops and computations."""

    __tablename__ = "report_dropped_days"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    day: Mapped[str] = mapped_column(String(10))

    __table_args__ = ({"sqlite_autoincrement": True},)


class ReportCachedDay(Base):
    """A whole past day whose cells are stored for one grouping (a day without cells is still listed)."""

    __tablename__ = "report_cached_days"

    grouping: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)


class ReportDayCell(Base):
    """One (grouping, day, department, group) cell: counts and sums as JSON, sorted first-answer minutes."""

    __tablename__ = "report_day_cells"

    grouping: Mapped[str] = mapped_column(String(16), primary_key=True)
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    department_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    minutes: Mapped[bytes | None] = mapped_column(LargeBinary)  # array('d') of sorted floats


report_dirty_days: Table = ReportDirtyDay.__table__  # type: ignore[assignment]
report_cached_days: Table = ReportCachedDay.__table__  # type: ignore[assignment]
report_dropped_days: Table = ReportDroppedDay.__table__  # type: ignore[assignment]
report_day_cells: Table = ReportDayCell.__table__  # type: ignore[assignment]
