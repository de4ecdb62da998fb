"""Outbox: outgoing mail queued with the change that caused it, delivered by a worker

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 17:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", BigId, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("ticket_id", BigId, nullable=True),
        sa.Column("entry_id", BigId, nullable=True),
        sa.Column("mail_message_id", sa.String(length=998), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=False),
        sa.Column("recipient", sa.String(length=320), nullable=False),
        sa.Column("subject_key", sa.String(length=200), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claimed_until", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["entry_id"], ["messages.id"], name=op.f("fk_outbox_entry_id_messages"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_outbox_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("mail_message_id", name=op.f("uq_outbox_mail_message_id")),
    )
    op.create_index("ix_outbox_state_due", "outbox", ["state", "next_attempt_at", "id"], unique=False)
    op.create_index("ix_outbox_recipient_created", "outbox", ["recipient", "created_at"], unique=False)
    op.create_index("ix_outbox_ticket", "outbox", ["ticket_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_outbox_ticket", table_name="outbox")
    op.drop_index("ix_outbox_recipient_created", table_name="outbox")
    op.drop_index("ix_outbox_state_due", table_name="outbox")
    op.drop_table("outbox")
