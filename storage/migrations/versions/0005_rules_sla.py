"""Rules, SLA bookkeeping on tickets, round-robin cursors

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 17:30:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("stop", sa.Boolean(), nullable=False),
        sa.Column("trigger", sa.JSON(), nullable=False),
        sa.Column("conditions", sa.JSON(), nullable=False),
        sa.Column("actions", sa.JSON(), nullable=False),
        sa.Column("start_event_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
        sa.UniqueConstraint("name", name=op.f("uq_rules_name")),
    )
    op.create_index("ix_rules_active_position", "rules", ["active", "position", "id"], unique=False)
    op.create_table(
        "assignment_cursors",
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("last_agent_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["department_id"],
            ["departments.id"],
            name=op.f("fk_assignment_cursors_department_id_departments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("department_id", name=op.f("pk_assignment_cursors")),
    )
    op.create_table(
        "automation_cursors",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_automation_cursors")),
    )
    # The rules start with the events written from now on, not with the whole history.
    op.execute(
        "INSERT INTO automation_cursors (name, last_event_id, updated_at) "
        "SELECT 'rules', COALESCE(MAX(id), 0), CURRENT_TIMESTAMP FROM events"
    )
    # Plain ADD COLUMN on both databases (no table copy on SQLite).
    with op.batch_alter_table("tickets", recreate="never") as batch:
        batch.add_column(sa.Column("sla_check_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("sla_state", sa.JSON(), nullable=True))
    op.create_index("ix_tickets_sla_check", "tickets", ["sla_check_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_tickets_sla_check", table_name="tickets")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("sla_state")
        batch.drop_column("sla_check_at")
    op.drop_table("automation_cursors")
    op.drop_table("assignment_cursors")
    op.drop_index("ix_rules_active_position", table_name="rules")
    op.drop_table("rules")
