"""Every message of the shared corpus goes through the real intake: a ticket, a reply, or quarantine with a reason."""

from __future__ import annotations

from sqlalchemy import func, select

from core import Desk
from core.mail.intake import Intake, RawMail, Source
from core.policy import Actor
from storage.models import Message, Ticket
from storage.models import RawMail as RawMailRow
from tests.corpus import corpus_messages, needs_corpus

pytestmark = needs_corpus


async def test_every_corpus_message_is_imported_or_quarantined_and_none_stops_the_batch(desk: Desk) -> None:
    await desk.add_department(Actor.operator(), "Technical", email="support@example.com")
    intake = Intake(desk)
    messages = corpus_messages()
    assert len(messages) > 250
    source = Source(name="corpus", department="Technical", uidvalidity=1)
    total_tickets = total_replies = total_quarantined = total_duplicates = total_dropped = 0
    for start in range(0, len(messages), 50):
        chunk = messages[start : start + 50]
        result = await intake.ingest_batch(
            source, [RawMail(item.read(), uid=start + offset + 1) for offset, item in enumerate(chunk)]
        )
        accounted = result.tickets + result.replies + result.quarantined + result.duplicates + result.dropped
        assert accounted == len(chunk), result
        total_tickets += result.tickets
        total_replies += result.replies
        total_quarantined += result.quarantined
        total_duplicates += result.duplicates
        total_dropped += result.dropped
    async with desk.db.reading() as session:
        tickets = (await session.execute(select(func.count()).select_from(Ticket))).scalar_one()
        customer = (await session.execute(select(func.count()).select_from(Message))).scalar_one()
        reasons = (
            await session.execute(select(RawMailRow.reason).where(RawMailRow.state == "quarantined"))
        ).scalars().all()
        kept = (await session.execute(select(func.count()).select_from(RawMailRow))).scalar_one()
    assert tickets == total_tickets
    assert customer == total_tickets + total_replies
    assert len(reasons) == total_quarantined and all(reason for reason in reasons)
    # Every distinct mail is kept raw; only byte-identical copies are not stored twice.
    assert kept + total_duplicates >= len(messages) - total_dropped
    assert total_tickets > 200
    assert await desk.check_counters(repair=False) == 0
    checkpoint = await intake.checkpoint("corpus")
    assert checkpoint is not None and checkpoint.last_uid == len(messages)
