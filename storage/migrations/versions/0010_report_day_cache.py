"""Reports: a cache of per-day report partials, and triggers that mark the days every change touches

Revision ID: 0010
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None

# The triggers, not the Python write paths, mark dirty days: tickets, messages, tags and ratings are written
# from many places (core, storage.bulk, the rules, mail intake), and a trigger sees every one of them in the
# same transaction as the change. A marked day is never read from the cache (core/reports/daycache.py).
# `day` is 'YYYY-MM-DD' (UTC; timestamps are stored naive UTC). A day is marked at most once until read.
_TICKET_DAYS = ("created_at", "resolved_at", "first_response_at", "first_response_due", "resolution_due")
# Changes of these ticket columns change what the ticket contributes to a report.
_TICKET_WATCHED = (
    "department_id",
    "assignee_id",
    "channel",
    "status",
    *_TICKET_DAYS,
    "first_response_minutes",
    "resolution_minutes",
)
# Changes of these move the ticket's messages to another group too.
_TICKET_GROUPS = ("department_id", "assignee_id", "channel")


def _day(dialect: str, expression: str) -> str:
    return f"date({expression})" if dialect == "sqlite" else f"to_char({expression}, 'YYYY-MM-DD')"


def _mark(dialect: str, days: str) -> str:
    """INSERT the days of the subquery `days` (one column `day`, possibly NULL) that are not marked yet."""
    return (
        f"INSERT INTO report_dirty_days (day) SELECT DISTINCT d.day FROM ({days}) AS d "
        f"WHERE d.day IS NOT NULL AND NOT EXISTS (SELECT 1 FROM report_dirty_days m WHERE m.day = d.day)"
    )


def _row_days(dialect: str, row: str) -> str:
    return " UNION ".join(f"SELECT {_day(dialect, f'{row}.{column}')} AS day" for column in _TICKET_DAYS)


def _ticket_days(dialect: str, ticket_id: str) -> str:
    """Every day a ticket contributes to: its own moments and its messages'."""
    own = " UNION ".join(
        f"SELECT {_day(dialect, f't.{column}')} AS day FROM tickets t WHERE t.id = {ticket_id}"
        for column in _TICKET_DAYS
    )
    return f"{own} UNION SELECT {_day(dialect, 'x.created_at')} AS day FROM messages x WHERE x.ticket_id = {ticket_id}"


def _message_days(dialect: str, ticket_id: str) -> str:
    return f"SELECT {_day(dialect, 'x.created_at')} AS day FROM messages x WHERE x.ticket_id = {ticket_id}"


def _statements(dialect: str) -> list[tuple[str, str, str, list[str]]]:
    """(table, event, condition, statements) for every trigger."""
    changed = " OR ".join(
        f"OLD.{c} IS NOT NEW.{c}" if dialect == "sqlite" else f"OLD.{c} IS DISTINCT FROM NEW.{c}"
        for c in _TICKET_WATCHED
    )
    moved = " OR ".join(
        f"OLD.{c} IS NOT NEW.{c}" if dialect == "sqlite" else f"OLD.{c} IS DISTINCT FROM NEW.{c}"
        for c in _TICKET_GROUPS
    )
    message = lambda row: f"SELECT {_day(dialect, f'{row}.created_at')} AS day"  # noqa: E731
    rating = lambda row: (  # noqa: E731
        f"SELECT {_day(dialect, 't.resolved_at')} AS day FROM tickets t WHERE t.id = {row}.ticket_id"
    )
    return [
        ("tickets", "INSERT", "", [_mark(dialect, _row_days(dialect, "NEW"))]),
        (
            "tickets",
            "UPDATE",
            changed,
            [
                _mark(dialect, f"{_row_days(dialect, 'OLD')} UNION {_row_days(dialect, 'NEW')}"),
            ],
        ),
        ("tickets", "UPDATE", moved, [_mark(dialect, _message_days(dialect, "NEW.id"))]),
        (
            "tickets",
            "DELETE",
            "",
            [
                _mark(dialect, f"{_row_days(dialect, 'OLD')} UNION {_message_days(dialect, 'OLD.id')}"),
            ],
        ),
        ("messages", "INSERT", "", [_mark(dialect, message("NEW"))]),
        (
            "messages",
            "UPDATE",
            "",
            [
                _mark(
                    dialect,
                    f"{message('OLD')} UNION {message('NEW')} UNION {_ticket_days(dialect, 'OLD.ticket_id')}"
                    f" UNION {_ticket_days(dialect, 'NEW.ticket_id')}",
                ),
            ],
        ),
        ("messages", "DELETE", "", [_mark(dialect, message("OLD"))]),
        ("ticket_tags", "INSERT", "", [_mark(dialect, _ticket_days(dialect, "NEW.ticket_id"))]),
        (
            "ticket_tags",
            "UPDATE",
            "",
            [
                _mark(
                    dialect, f"{_ticket_days(dialect, 'OLD.ticket_id')} UNION {_ticket_days(dialect, 'NEW.ticket_id')}"
                ),
            ],
        ),
        ("ticket_tags", "DELETE", "", [_mark(dialect, _ticket_days(dialect, "OLD.ticket_id"))]),
        ("ratings", "INSERT", "", [_mark(dialect, rating("NEW"))]),
        ("ratings", "UPDATE", "", [_mark(dialect, f"{rating('OLD')} UNION {rating('NEW')}")]),
        ("ratings", "DELETE", "", [_mark(dialect, rating("OLD"))]),
    ]


def _name(table: str, event: str, number: int) -> str:
    return f"report_dirty_{table}_{event.lower()}_{number}"


def upgrade() -> None:
    op.create_table(
        "report_dirty_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_report_dirty_days_day", "report_dirty_days", ["day"])
    op.create_table(
        "report_cached_days",
        sa.Column("grouping", sa.String(length=16), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.PrimaryKeyConstraint("grouping", "day"),
    )
    op.create_table(
        "report_day_cells",
        sa.Column("grouping", sa.String(length=16), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("group_key", sa.String(length=200), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("minutes", sa.LargeBinary(), nullable=True),
        sa.PrimaryKeyConstraint("grouping", "day", "department_id", "group_key"),
    )
    dialect = op.get_bind().dialect.name
    for number, (table, event, condition, statements) in enumerate(_statements(dialect)):
        name = _name(table, event, number)
        if dialect == "sqlite":
            when = f" WHEN {condition}" if condition else ""
            body = "; ".join(statements)
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{when} BEGIN {body}; END")
        else:
            body = "; ".join(statements)
            op.execute(
                f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {body}; RETURN NULL; END $$"
            )
            when = f" WHEN ({condition})" if condition else ""
            op.execute(f"CREATE TRIGGER {name} AFTER {event} ON {table} FOR EACH ROW{when} EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for number, (table, event, _, _) in enumerate(_statements(dialect)):
        name = _name(table, event, number)
        op.execute(
            f"DROP TRIGGER IF EXISTS {name} ON {table}" if dialect != "sqlite" else f"DROP TRIGGER IF EXISTS {name}"
        )
        if dialect != "sqlite":
            op.execute(f"DROP FUNCTION IF EXISTS {name}()")
    op.drop_table("report_day_cells")
    op.drop_table("report_cached_days")
    op.drop_index("ix_report_dirty_days_day", table_name="report_dirty_days")
    op.drop_table("report_dirty_days")
