"""Reports: a cache of per-day report partials, and triggers that mark the days every change touches

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# The triggers, not the Python write paths, mark dirty days: tickets, messages, tags and ratings are written
# from many places (core, storage.bulk, the rules, mail intake), and a trigger sees every one of them in the
# same transaction as the change. A marked day is never read from the cache (core/reports/daycache.py).
# `day` is 'YYYY-MM-DD' (UTC; timestamps are stored naive UTC). A day is marked at most once until read.
_TICKET_DAYS = ("created_at", "resolved_at", "first_response_at", "first_response_due", "resolution_due")
# Changes of these move all of a ticket's contributions (its messages' too) to another group.
_TICKET_GROUPS = ("department_id", "assignee_id", "channel")
# A ticket update marks only the days whose numbers it can change, so that resolving or answering an older
# ticket marks today and its due days rather than every day of its life (each marked past day is computed
# live until the next report stores it again): (changed columns, days marked, old and new).
_TICKET_PARTS = (
    (("created_at",), "created_at"),  # created, created_not_spam (backlog)
    (("resolved_at", "resolution_minutes"), "resolved_at"),  # resolved, resolution average, ratings, backlog
    (("first_response_at", "first_response_minutes"), "first_response_at"),  # first answer average, median
)
# SLA targets: (due, done). Only past days are cached, and on a past due day a target is met when done <= due
# and breached otherwise (late, or still not done and so overdue): its due day is marked when the due time or
# that verdict changes, not whenever the ticket is answered or resolved (resolving an overdue ticket keeps it
# breached; marking its due day would send a long-past day back to the base tables for nothing).
_TICKET_TARGETS = (("first_response_due", "first_response_at"), ("resolution_due", "resolved_at"))
# Message columns a report reads (its day, kind, author, answer time, ticket).
_MESSAGE_WATCHED = ("ticket_id", "kind", "author_agent_id", "created_at", "answer_minutes")


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


def _changed(dialect: str, columns: tuple[str, ...]) -> str:
    operator = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    return " OR ".join(f"OLD.{column} {operator} NEW.{column}" for column in columns)


def _statements(dialect: str) -> list[tuple[str, str, str, list[str]]]:
    """(table, event, condition, statements) for every trigger."""
    operator = "IS NOT" if dialect == "sqlite" else "IS DISTINCT FROM"
    # Status matters only as spam or not (spam is left out of resolved, SLA, ratings and backlog).
    spam = f"(OLD.status = 'spam') {operator} (NEW.status = 'spam')"
    moved = _changed(dialect, _TICKET_GROUPS)
    message = lambda row: f"SELECT {_day(dialect, f'{row}.created_at')} AS day"  # noqa: E731
    rating = lambda row: (  # noqa: E731
        f"SELECT {_day(dialect, 't.resolved_at')} AS day FROM tickets t WHERE t.id = {row}.ticket_id"
    )
    everything = _mark(dialect, f"{_row_days(dialect, 'OLD')} UNION {_row_days(dialect, 'NEW')}")

    def both(column: str) -> str:
        return " UNION ".join(f"SELECT {_day(dialect, f'{row}.{column}')} AS day" for row in ("OLD", "NEW"))

    false = "0" if dialect == "sqlite" else "false"
    parts = [
        ("tickets", "UPDATE", _changed(dialect, columns), [_mark(dialect, both(day))]) for columns, day in _TICKET_PARTS
    ]
    for due, done in _TICKET_TARGETS:
        verdict = f"COALESCE(OLD.{done} <= OLD.{due}, {false}) {operator} COALESCE(NEW.{done} <= NEW.{due}, {false})"
        parts.append(("tickets", "UPDATE", f"{_changed(dialect, (due,))} OR {verdict}", [_mark(dialect, both(due))]))
    return [
        ("tickets", "INSERT", "", [_mark(dialect, _row_days(dialect, "NEW"))]),
        *parts,
        ("tickets", "UPDATE", f"{moved} OR {spam}", [everything]),
        ("tickets", "UPDATE", moved, [_mark(dialect, _message_days(dialect, "NEW.id"))]),
        (
            "tickets",
            "DELETE",
            "",
            [_mark(dialect, f"{_row_days(dialect, 'OLD')} UNION {_message_days(dialect, 'OLD.id')}")],
        ),
        ("messages", "INSERT", "", [_mark(dialect, message("NEW"))]),
        (
            "messages",
            "UPDATE",
            _changed(dialect, _MESSAGE_WATCHED),
            [_mark(dialect, f"{message('OLD')} UNION {message('NEW')}")],
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
                )
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
