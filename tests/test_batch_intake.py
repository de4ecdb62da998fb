"""The set-based batch import (core/mail/batch.py) leaves exactly what the per-mail path leaves.

Both paths take the same mail — generated mail with replies inside and across
batches, attachments, automatic mail, plus the awkward cases (our loop header,
no From, unparseable, a follow-up to a closed ticket, a subject reference,
re-delivery) — into two fresh desks, and the desks must agree row for row on
everything but timestamps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bench.mailgen import DEPARTMENT_ADDRESSES, generate
from core import Desk
from core.mail import batch
from core.mail.intake import BatchResult, Intake, RawMail, Source
from core.policy import Actor
from storage.database import Database
from storage.models import Attachment, Contact, Event, Message, QueueCounter, Ticket
from storage.models import RawMail as RawMailRow
from tests.conftest import _create_database, _drop_database
from tests.test_intake import mail

SOURCE = Source("import", DEPARTMENT_ADDRESSES[0][0])


def awkward_mail() -> list[bytes]:
    first = "<first-awkward@example.org>"
    return [
        mail(subject="Opening", message_id=first, sender="Olga <olga@example.org>"),
        mail(subject="Re: Opening", in_reply_to=first, message_id="<r1@example.org>", sender="olga@example.org"),
        mail(subject="Re: Opening", references=f"<nope@x> {first}", message_id="<r2@example.org>"),
        mail(subject="[#TD-1] by reference", message_id="<r3@example.org>", sender="someone@else.example"),
        mail(subject="Loop", headers={"X-Termdesk-Loop": "termdesk"}, message_id="<loop@example.org>"),
        b"Subject: no sender\r\nMessage-ID: <nofrom@example.org>\r\n\r\nbody\r\n",
        b"\x00\x01 not a mail at all",
        mail(subject="Out of office", headers={"Auto-Submitted": "auto-replied"}, message_id="<ooo@example.org>"),
        mail(subject="For billing", to="billing@example.com", message_id="<bill@example.org>",
             attachment=("invoice.pdf", b"%PDF-1.4 fake")),
        mail(subject="Same attachment", message_id="<bill2@example.org>", attachment=("copy.pdf", b"%PDF-1.4 fake")),
        mail(subject="Re: Opening", in_reply_to=first, message_id="<late@example.org>", sender="olga@example.org"),
        mail(subject="Re: by reference", in_reply_to="<r3@example.org>", message_id="<reopen@example.org>"),
    ]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases of one kind: one for each import path."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'set.sqlite3'}", f"sqlite:///{tmp_path / 'per-mail.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_server")
    urls = (_create_database(server), _create_database(server))
    yield urls
    for url in urls:
        _drop_database(server, url)


async def fresh_desk(url: str, sla: dict[str, Any] | None = None) -> Desk:
    desk = Desk(Database(url))
    await desk.init()
    for name, address in DEPARTMENT_ADDRESSES:
        await desk.add_department(Actor.operator(), name, email=address)
        if sla:
            await desk.set_automation(Actor.operator(), name, "sla", sla)
    await desk.add_agent(
        Actor.operator(), "ada", name="Ada", email="ada@example.com", role="admin",
        departments=[name for name, _ in DEPARTMENT_ADDRESSES],
    )
    return desk


async def run(desk: Desk, batches: list[list[bytes]]) -> BatchResult:
    intake = Intake(desk)
    total = BatchResult()
    uid = 0
    for number, chunk in enumerate(batches):
        if number == 2:  # a follow-up to a closed ticket opens a new one
            await desk.set_status("ada", "TD-1", "closed")
            await desk.set_status("ada", "TD-2", "resolved")  # a reply reopens it
        raws = []
        for raw in chunk:
            uid += 1
            raws.append(RawMail(raw, uid=uid))
        total.add(await intake.ingest_batch(SOURCE, raws))
    return total


async def dump(desk: Desk) -> dict[str, Any]:
    async with desk.db.reading() as session:
        async def rows(*columns: Any, order: Any) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in await session.execute(select(*columns).order_by(*order))]

        events = []
        for kind, ticket_id, department_id, data in await rows(
            Event.kind, Event.ticket_id, Event.department_id, Event.data, order=[Event.id]
        ):
            changes = {
                name: change for name, change in (data.get("changes") or {}).items()
                if name not in ("last_customer_message_at", "resolved_at", "closed_at")
            }
            events.append((kind, ticket_id, department_id, {**data, "changes": changes}))
        return {
            "tickets": await rows(
                Ticket.id, Ticket.subject, Ticket.department_id, Ticket.contact_id, Ticket.status,
                Ticket.message_count, Ticket.version, Ticket.resolved_at.is_(None), order=[Ticket.id],
            ),
            "messages": await rows(
                Message.id, Message.ticket_id, Message.kind, Message.author_contact_id, Message.message_id,
                Message.body_text, Message.body_display, Message.subject, Message.from_address,
                Message.to_addresses, Message.automatic, Message.warnings, Message.raw_mail_id,
                Message.in_reply_to, Message.references, order=[Message.id],
            ),
            "raw": await rows(
                RawMailRow.id, RawMailRow.uid, RawMailRow.dedupe_key, RawMailRow.state, RawMailRow.reason,
                RawMailRow.ticket_id, RawMailRow.sha256, order=[RawMailRow.id],
            ),
            "contacts": await rows(Contact.id, Contact.email, Contact.name, order=[Contact.id]),
            "attachments": await rows(
                Attachment.message_id, Attachment.filename, Attachment.sha256, order=[Attachment.id]
            ),
            "counters": await rows(
                QueueCounter.department_id, QueueCounter.status, QueueCounter.assigned, QueueCounter.count,
                order=[QueueCounter.department_id, QueueCounter.status, QueueCounter.assigned],
            ),
            "events": events,
        }


async def test_set_based_import_leaves_what_the_per_mail_path_leaves(
    two_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    generated = generate(240, seed=11)
    awkward = awkward_mail()
    # Awkward mail first (ticket 1 is "Opening"), generated mail with its own reply chains after, then
    # (ticket 1 closed meanwhile) the rest of the awkward mail, and last a batch with re-deliveries.
    batches = [awkward[:4], generated[:120], generated[120:200] + awkward[4:], generated[200:] + awkward[:2]]

    calls: list[bool] = []
    real = batch.import_batch

    async def counting(*args: Any, **kwargs: Any) -> BatchResult | None:
        result = await real(*args, **kwargs)
        calls.append(result is not None)
        return result

    monkeypatch.setattr(batch, "import_batch", counting)
    set_based = await fresh_desk(two_urls[0])
    set_result = await run(set_based, batches)
    # Re-delivered mail is for the per-mail path; everything else took the set-based one.
    assert calls == [True, True, True, False]

    async def never(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(batch, "import_batch", never)
    per_mail = await fresh_desk(two_urls[1])
    per_mail_result = await run(per_mail, batches)

    assert set_result == per_mail_result
    assert set_result.tickets > 100 and set_result.replies > 20 and set_result.quarantined >= 2
    assert set_result.dropped == 1 and set_result.duplicates >= 2
    left, right = await dump(set_based), await dump(per_mail)
    for table in left:
        assert left[table] == right[table], table
    assert await set_based.check_counters(repair=False) == 0
    assert await per_mail.check_counters(repair=False) == 0
    await set_based.close()
    await per_mail.close()


async def sla_dump(desk: Desk) -> list[tuple[Any, ...]]:
    """Each ticket's due times relative to the instants they count from (absolute times differ per run)."""

    def since(due: Any, start: Any) -> Any:
        return None if due is None else round((due - start).total_seconds())

    async with desk.db.reading() as session:
        rows = await session.execute(
            select(
                Ticket.id, Ticket.created_at, Ticket.last_customer_message_at, Ticket.first_response_due,
                Ticket.next_response_due, Ticket.resolution_due, Ticket.sla_check_at, Ticket.sla_state,
                Ticket.sla_risk_at, Ticket.sla_breach_at, Ticket.waiting_since,
            ).order_by(Ticket.id)
        )
        return [
            (row.id, since(row.first_response_due, row.created_at), since(row.next_response_due,
             row.last_customer_message_at), since(row.resolution_due, row.created_at),
             since(row.sla_check_at, row.created_at), row.sla_state, since(row.sla_risk_at, row.created_at),
             since(row.sla_breach_at, row.created_at), since(row.waiting_since, row.last_customer_message_at))
            for row in rows
        ]


async def test_set_based_import_sets_the_due_times_the_per_mail_path_sets(
    two_urls: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    policy = {"first_response": 60, "next_response": 30, "resolution": 600}
    batches = [generate(80, seed=5)[:50], generate(80, seed=5)[50:]]
    set_based = await fresh_desk(two_urls[0], policy)
    await run(set_based, batches)

    async def never(*args: Any, **kwargs: Any) -> None:
        return None

    monkeypatch.setattr(batch, "import_batch", never)
    per_mail = await fresh_desk(two_urls[1], policy)
    await run(per_mail, batches)
    left, right = await sla_dump(set_based), await sla_dump(per_mail)
    assert left == right
    assert all(row[1] == 3600 and row[3] == 36000 for row in left if row[0] > 2)
    assert all(row[8] is not None for row in left)  # every imported ticket waits for an answer
    assert (await dump(set_based))["tickets"] == (await dump(per_mail))["tickets"]
    await set_based.close()
    await per_mail.close()
