"""Customer ratings of tickets: one row per rating, the ticket's rating being its latest one.

Customers will rate from mail links or a portal (a later issue); until then
`Desk.rate` records one on the customer's behalf (tests, imports). Reports
read the table (core/reports/metrics.py: rated_positive, rated_negative,
not_rated).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadArgument
from core.tickets import MAX_BODY, check_text
from storage.models import Message, Rating, Ticket
from storage.types import utcnow

SCORES = {"positive": 1, "good": 1, "+": 1, "negative": -1, "bad": -1, "-": -1}


def parse_score(text: str) -> int:
    score = SCORES.get(text.strip().lower())
    if score is None:
        raise BadArgument(f"{text!r} is not a rating; use positive or negative.")
    return score


async def record(
    session: AsyncSession,
    ticket: Ticket,
    score: str,
    *,
    comment: str = "",
    message_id: int | None = None,
    at: datetime | None = None,
) -> Rating:
    """The ticket's contact rates it (or one reply of it, `message_id`), positive or negative."""
    if message_id is not None:
        found = (
            await session.execute(select(Message.id).where(Message.id == message_id, Message.ticket_id == ticket.id))
        ).scalar()
        if found is None:
            raise BadArgument(f"Message {message_id} is not part of this ticket; rate one of its own replies.")
    rating = Rating(
        ticket_id=ticket.id,
        message_id=message_id,
        contact_id=ticket.contact_id,
        score=parse_score(score),
        comment=check_text("comment", comment, MAX_BODY),
        created_at=at or utcnow(),
    )
    session.add(rating)
    await session.flush()
    return rating


__all__ = ["SCORES", "parse_score", "record"]
