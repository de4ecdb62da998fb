"""Console: kept drafts and ticket presence

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_drafts_agent_id_agents"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_drafts_ticket_id_tickets"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agent_id", "ticket_id", "kind", name=op.f("pk_drafts")),
    )
    op.create_table(
        "presence",
        sa.Column("agent_id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", BigId, nullable=False),
        sa.Column("activity", sa.String(length=16), nullable=False),
        sa.Column("seen_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], name=op.f("fk_presence_agent_id_agents"), ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["ticket_id"], ["tickets.id"], name=op.f("fk_presence_ticket_id_tickets"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("agent_id", "ticket_id", name=op.f("pk_presence")),
    )
    op.create_index("ix_presence_ticket", "presence", ["ticket_id", "seen_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_presence_ticket", table_name="presence")
    op.drop_table("presence")
    op.drop_table("drafts")
