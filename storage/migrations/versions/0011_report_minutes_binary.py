"""Reports: stored durations rounded to 1/64 minute, so the day cache's sums equal the base SQL's exactly;
a log of dropped day marks

Revision ID: 0011
Revises: 0010

The report averages are sums divided by counts, summed per day by the day cache and per bucket by the
base SQL. Since this revision every stored duration (tickets.first_response_minutes,
tickets.resolution_minutes, messages.answer_minutes) is a whole multiple of 1/64 minute
(core.reports.durations.stored_minutes): any sum of them is exact in a double whatever the order, so the
two paths give the same average to the last bit. This migration rounds the rows stored before (half up:
floor(x * 64 + 0.5) / 64, the same rounding as the code; the stored minutes are never negative) and empties
the day cache, whose sums were of the unrounded values.

`report_dropped_days` logs the past days whose marks a refresher dropped, so that a computation running
meanwhile (the warm-up of `termdesk serve`, another report) does not store a day changed under it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_COLUMNS = (
    ("tickets", "first_response_minutes"),
    ("tickets", "resolution_minutes"),
    ("messages", "answer_minutes"),
)
_STEPS = 64  # core.reports.durations.MINUTE_STEPS (storage may not import core)


def _rounded(dialect: str, column: str) -> str:
    # SQLite may lack floor(); a cast to INTEGER truncates, which is floor for the non-negative minutes.
    if dialect == "sqlite":
        return f"(CAST({column} * {_STEPS} + 0.5 AS INTEGER) / {float(_STEPS)})"
    return f"(floor({column} * {_STEPS} + 0.5) / {_STEPS})"


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        "report_dropped_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    for table, column in _COLUMNS:
        rounded = _rounded(dialect, column)
        # Only rows that change: the triggers of 0009 mark their days, and rows already on the grid cost nothing.
        op.execute(f"UPDATE {table} SET {column} = {rounded} WHERE {column} IS NOT NULL AND {column} <> {rounded}")
    for table in ("report_day_cells", "report_cached_days", "report_dirty_days"):
        op.execute(f"DELETE FROM {table}")


def downgrade() -> None:
    """Rounded minutes are valid minutes and stay; the log goes."""
    op.drop_table("report_dropped_days")
