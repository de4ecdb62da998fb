"""Report indexes: tickets and messages by the times reports range over

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 17:50:00
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Each report metric ranges over one timestamp; without these a year's report
# reads every ticket and every message (bodies included) once per metric.
INDEXES = (
    ("ix_tickets_created", "tickets", ["created_at", "department_id", "status"]),
    ("ix_tickets_resolved", "tickets", ["resolved_at", "department_id", "status"]),
    ("ix_tickets_first_response", "tickets", ["first_response_at", "department_id"]),
    ("ix_tickets_first_response_due", "tickets", ["first_response_due", "department_id"]),
    ("ix_tickets_resolution_due", "tickets", ["resolution_due", "department_id"]),
    ("ix_messages_created", "messages", ["created_at", "kind", "ticket_id", "author_agent_id"]),
    # "The next agent reply after this customer message", without reading message bodies.
    ("ix_messages_ticket_kind", "messages", ["ticket_id", "kind", "created_at"]),
)


def upgrade() -> None:
    for name, table, columns in INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
