"""The outbox table: every mail we send, queued in the transaction that decided to send it.

A row holds the finished message bytes (so its Message-ID, Date and content are
fixed at queue time and identical on every retry), one envelope recipient, and
the delivery state a worker moves along: queued -> sending (claimed, with a
lease) -> sent | failed. A worker that dies while a row is `sending` leaves
the lease to expire; the row is then claimed again and sent with the same
Message-ID.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base, BigId
from storage.types import utcnow


class OutboxMail(Base):
    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # reply | auto-ack | resolved | notification
    kind: Mapped[str] = mapped_column(String(16))
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    # The thread entry this mail delivers (agent replies); its delivery_status follows the row.
    entry_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    mail_message_id: Mapped[str] = mapped_column(String(998), unique=True)
    sender: Mapped[str] = mapped_column(String(320))  # envelope MAIL FROM
    recipient: Mapped[str] = mapped_column(String(320))  # envelope RCPT TO, lower-cased
    # Normalised subject, for the per-recipient limit on repeated automatic mail.
    subject_key: Mapped[str] = mapped_column(String(200), default="")
    data: Mapped[bytes] = mapped_column(LargeBinary)
    # queued | sending | sent | failed
    state: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    # While `sending`: who holds the claim and until when.
    claim_token: Mapped[str | None] = mapped_column(String(64))
    claimed_until: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        Index("ix_outbox_state_due", "state", "next_attempt_at", "id"),
        Index("ix_outbox_recipient_created", "recipient", "created_at"),
        Index("ix_outbox_ticket", "ticket_id", "id"),
    )


__all__ = ["OutboxMail"]
