"""Console: a NOTIFY on every insert into events (PostgreSQL), and canned responses per department

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Events are inserted from many places (core.events.record, storage.bulk, the rules). A statement-level
# trigger catches them all and costs one notification per statement; PostgreSQL delivers it at commit
# and folds identical notifications of one transaction into one, so a burst stays cheap. The payload
# is empty on purpose: listeners only learn "something changed" and then read what their agent may see.
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION termdesk_events_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('termdesk_events', '');
    RETURN NULL;
END
$$
"""
NOTIFY_TRIGGER = (
    "CREATE TRIGGER events_notify AFTER INSERT ON events FOR EACH STATEMENT EXECUTE FUNCTION termdesk_events_notify()"
)


def upgrade() -> None:
    op.create_table(
        "canned_responses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_canned_responses_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_canned_responses")),
        sa.UniqueConstraint("department_id", "name", name=op.f("uq_canned_responses_department_id_name")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
        op.execute(NOTIFY_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_notify ON events")
        op.execute("DROP FUNCTION IF EXISTS termdesk_events_notify()")
    op.drop_table("canned_responses")
