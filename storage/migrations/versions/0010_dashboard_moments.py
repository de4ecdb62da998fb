"""Dashboard: each active ticket's SLA risk and breach moments and the start of its customer's wait, indexed
per department, and agents' load counters

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The dashboard used to read every new, open and pending ticket on each refresh (~400 ms at a million
# tickets); with these it counts index ranges and reads counter rows. core.sla writes the three moments on
# every ticket change; `Desk.init` fills the two SLA moments of existing tickets (they need each
# department's business-hours calendar, which SQL does not have).
MOMENTS = ("sla_risk_at", "sla_breach_at", "waiting_since")

# The same rule as core.sla.waiting_since, for the tickets that exist now.
WAITING = (
    "CASE WHEN status IN ('new', 'open') AND (last_agent_reply_at IS NULL OR last_customer_message_at IS NULL "
    "OR last_customer_message_at > last_agent_reply_at) THEN COALESCE(last_customer_message_at, created_at) END"
)


def upgrade() -> None:
    for column in MOMENTS:
        op.add_column("tickets", sa.Column(column, sa.DateTime(), nullable=True))
    op.execute(f"UPDATE tickets SET waiting_since = {WAITING} WHERE status IN ('new', 'open')")
    for column in MOMENTS:
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(
            f"ix_tickets_{column}", "tickets", ["department_id", column], sqlite_where=where, postgresql_where=where
        )
    # Today's resolutions per agent without a table lookup per resolution (a busy day has thousands).
    op.drop_index("ix_tickets_resolved", table_name="tickets")
    op.create_index("ix_tickets_resolved", "tickets", ["resolved_at", "department_id", "status", "assignee_id"])
    op.create_table(
        "agent_load_counters",
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["departments.id"],
            name=op.f("fk_agent_load_counters_department_id_departments"), ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"], ["agents.id"], name=op.f("fk_agent_load_counters_agent_id_agents"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("department_id", "agent_id", "status", name=op.f("pk_agent_load_counters")),
    )
    op.execute(
        "INSERT INTO agent_load_counters (department_id, agent_id, status, count) "
        "SELECT department_id, assignee_id, status, COUNT(*) FROM tickets WHERE assignee_id IS NOT NULL "
        "GROUP BY department_id, assignee_id, status"
    )


def downgrade() -> None:
    op.drop_table("agent_load_counters")
    op.drop_index("ix_tickets_resolved", table_name="tickets")
    op.create_index("ix_tickets_resolved", "tickets", ["resolved_at", "department_id", "status"])
    for column in reversed(MOMENTS):
        op.drop_index(f"ix_tickets_{column}", table_name="tickets")
    # In place (SQLite 3.35+): a table copy would cascade-delete every message and event (see 0007).
    with op.batch_alter_table("tickets", recreate="never") as batch:
        for column in reversed(MOMENTS):
            batch.drop_column(column)
