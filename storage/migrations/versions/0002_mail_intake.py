"""Mail intake: raw mails kept before parsing, mailbox checkpoints, mail fields on messages

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 14:57:15.365343
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

MESSAGE_COLUMNS: list[sa.Column[Any]] = [
    sa.Column("subject", sa.Text(), nullable=True),
    sa.Column("from_address", sa.String(length=320), nullable=True),
    sa.Column("to_addresses", sa.Text(), nullable=True),
    sa.Column("body_display", sa.Text(), nullable=True),
    sa.Column("automatic", sa.JSON(), nullable=True),
    sa.Column("warnings", sa.JSON(), nullable=True),
]


def upgrade() -> None:
    op.create_table(
        "mailbox_checkpoints",
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("source", name=op.f("pk_mailbox_checkpoints")),
    )
    op.create_table(
        "raw_mails",
        sa.Column("id", BigId, nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("department", sa.String(length=120), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=1000), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("ticket_id", BigId, nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"], ["tickets.id"], name=op.f("fk_raw_mails_ticket_id_tickets"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_raw_mails")),
    )
    op.create_index("ix_raw_mails_sha256", "raw_mails", ["sha256"], unique=False)
    op.create_index("ix_raw_mails_state", "raw_mails", ["state", "id"], unique=False)
    op.create_index("uq_raw_mails_source_dedupe", "raw_mails", ["source", "dedupe_key"], unique=True)
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot add a foreign key in place: batch mode rebuilds `messages`,
        # which drops the triggers that keep its FTS index current; put them back.
        with op.batch_alter_table("messages", recreate="always") as batch:
            for column in MESSAGE_COLUMNS:
                batch.add_column(column._copy())
            batch.add_column(sa.Column("raw_mail_id", BigId, nullable=True))
            batch.create_foreign_key(
                "fk_messages_raw_mail_id_raw_mails", "raw_mails", ["raw_mail_id"], ["id"], ondelete="SET NULL"
            )
        create_message_search_triggers()
    else:
        for column in MESSAGE_COLUMNS:
            op.add_column("messages", column._copy())
        op.add_column("messages", sa.Column("raw_mail_id", BigId, nullable=True))
        op.create_foreign_key(
            "fk_messages_raw_mail_id_raw_mails", "messages", "raw_mails", ["raw_mail_id"], ["id"], ondelete="SET NULL"
        )


def create_message_search_triggers() -> None:
    """The FTS5 triggers of revision 0001 for `messages`, as they were there."""
    op.execute(
        "CREATE TRIGGER IF NOT EXISTS messages_fts_insert AFTER INSERT ON messages BEGIN "
        "INSERT INTO messages_fts(rowid, body_text) VALUES (new.id, new.body_text); END"
    )
    op.execute(
        "CREATE TRIGGER IF NOT EXISTS messages_fts_delete AFTER DELETE ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, body_text) VALUES ('delete', old.id, old.body_text); END"
    )
    op.execute(
        "CREATE TRIGGER IF NOT EXISTS messages_fts_update AFTER UPDATE OF body_text ON messages BEGIN "
        "INSERT INTO messages_fts(messages_fts, rowid, body_text) VALUES ('delete', old.id, old.body_text); "
        "INSERT INTO messages_fts(rowid, body_text) VALUES (new.id, new.body_text); END"
    )


def downgrade() -> None:
    names = ["raw_mail_id", *(column.name for column in reversed(MESSAGE_COLUMNS))]
    if op.get_bind().dialect.name == "sqlite":
        with op.batch_alter_table("messages", recreate="always") as batch:
            batch.drop_constraint("fk_messages_raw_mail_id_raw_mails", type_="foreignkey")
            for name in names:
                batch.drop_column(name)
        create_message_search_triggers()
    else:
        op.drop_constraint("fk_messages_raw_mail_id_raw_mails", "messages", type_="foreignkey")
        for name in names:
            op.drop_column("messages", name)
    op.drop_index("uq_raw_mails_source_dedupe", table_name="raw_mails")
    op.drop_index("ix_raw_mails_state", table_name="raw_mails")
    op.drop_index("ix_raw_mails_sha256", table_name="raw_mails")
    op.drop_table("raw_mails")
    op.drop_table("mailbox_checkpoints")
