"""Report durations stored on tickets and replies, and the ratings table

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 16:20:00

Business time needs each department's calendar (core.hours), which storage
may not import: the columns start empty here and `core.desk.Desk.init`
fills them for the rows that existed (`core.reports.durations.backfill`)
right after upgrading a database from before this revision.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN on both databases (no table copy on SQLite).
    with op.batch_alter_table("tickets", recreate="never") as batch:
        batch.add_column(sa.Column("first_response_minutes", sa.Float(), nullable=True))
        batch.add_column(sa.Column("resolution_minutes", sa.Float(), nullable=True))
    with op.batch_alter_table("messages", recreate="never") as batch:
        batch.add_column(sa.Column("answer_minutes", sa.Float(), nullable=True))
    op.create_table(
        "ratings",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("ticket_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("score", sa.SmallInteger(), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_ratings_ticket_id_tickets"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["messages.id"], name=op.f("fk_ratings_message_id_messages"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["contact_id"], ["contacts.id"], name=op.f("fk_ratings_contact_id_contacts"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ratings")),
    )
    op.create_index("ix_ratings_ticket", "ratings", ["ticket_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_ratings_ticket", table_name="ratings")
    op.drop_table("ratings")
    # ALTER TABLE ... DROP COLUMN in place (SQLite 3.35+): a table copy would drop `tickets`, and with
    # foreign keys on SQLite deletes every message and event of every ticket on the way (ON DELETE CASCADE).
    with op.batch_alter_table("messages", recreate="never") as batch:
        batch.drop_column("answer_minutes")
    with op.batch_alter_table("tickets", recreate="never") as batch:
        batch.drop_column("resolution_minutes")
        batch.drop_column("first_response_minutes")
