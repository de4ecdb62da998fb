"""Header safety: hostile subjects, names and addresses never add a header to the bytes we send."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update

from core.errors import BadArgument
from core.mail.compose import Identity, Outgoing, compose, header_text, message_id_for
from storage.models import Contact, Department
from tests.outbox_fixtures import CUSTOMER, MailDesk, customer_mail

EXPECTED = {"From", "To", "Reply-To", "Subject", "Date", "Message-ID", "In-Reply-To", "References", "MIME-Version",
            "Content-Type", "Content-Transfer-Encoding"}
ATTACKS = [
    "Hello\r\nBcc: victim@evil.example",
    "Hello\nBcc: victim@evil.example",
    "Hello\rBcc: victim@evil.example",
    "Hello\r\n\r\nInjected body",
    "Hello\x00\x1b[31m\x85Bcc: x@evil.example",
    "Hello\u2028Bcc: x@evil.example\u2029",
    "=?utf-8?q?Hello=0D=0ABcc:_victim@evil.example?=",
]


def header_names(data: bytes) -> list[str]:
    """Header field names exactly as serialised: every unfolded line before the blank line."""
    head = data.split(b"\r\n\r\n", 1)[0]
    names = []
    for line in head.split(b"\r\n"):
        assert b"\n" not in line and b"\r" not in line, "a bare CR or LF in the header section"
        if line[:1] in (b" ", b"\t"):
            continue  # a folded continuation line
        names.append(line.split(b":", 1)[0].decode("ascii"))
    return names


def outgoing(subject: str, name: str, signature: str = "") -> Outgoing:
    return Outgoing(
        identity=Identity(name, "support@desk.example", "help@desk.example", signature),
        to_address="carla@customer.example",
        to_name=name,
        subject=subject,
        text="Body",
        message_id=message_id_for("support@desk.example"),
        date=datetime(2026, 11, 23, tzinfo=UTC),
        in_reply_to="a@b\r\nBcc: x@evil.example",
        references=["ok@customer.example", "bad\r\nBcc: x@evil.example"],
        headers=[("Auto-Submitted", "auto-replied\r\nBcc: x@evil.example")],
    )


@pytest.mark.parametrize("attack", ATTACKS)
def test_control_characters_in_subject_and_names_inject_no_header(attack: str) -> None:
    data = compose(outgoing(attack, attack, signature=attack))
    names = header_names(data)
    assert "Bcc" not in names
    assert set(names) <= EXPECTED | {"Auto-Submitted"}
    assert len(names) == len(set(names))
    assert not re.search(rb"(?im)^bcc:", data.split(b"\r\n\r\n", 1)[0])


@pytest.mark.parametrize(
    "address",
    ["carla@customer.example\r\nBcc: x@evil.example", "carla@customer.example>\nBcc:x@e.example", "a b@c.example",
     "carla@customer.example,x@evil.example", "\x00@customer.example", "carla@@customer.example", "ümlaut@x.example"],
)
def test_hostile_addresses_are_refused_not_serialised(address: str) -> None:
    mail = outgoing("Hello", "Carla")
    with pytest.raises(BadArgument):
        compose(Outgoing(**{**mail.__dict__, "to_address": address}))


@settings(max_examples=200, deadline=None)
@given(subject=st.text(max_size=300), name=st.text(max_size=100))
def test_any_text_in_subject_or_name_keeps_the_header_set_fixed(subject: str, name: str) -> None:
    data = compose(outgoing(subject, name))
    names = header_names(data)
    assert sorted(names) == sorted(
        ["From", "To", "Reply-To", "Subject", "Date", "Message-ID", "References", "Auto-Submitted",
         "MIME-Version", "Content-Type", "Content-Transfer-Encoding"]
    )


def test_header_text_makes_control_characters_spaces() -> None:
    assert header_text("a\r\nb\tc\x00d\u2028e") == "a b c d e"


async def test_hostile_values_stored_in_the_desk_inject_nothing_into_the_sent_bytes(mail_desk: MailDesk) -> None:
    mail = mail_desk
    [ref] = (await mail.receive(customer_mail())).refs
    async with mail.desk.db.writing() as session:
        await session.execute(update(Contact).values(name="Carla\r\nBcc: victim@evil.example"))
        await session.execute(
            update(Department).where(Department.name == "Support")
            .values(sender_name="Support\nBcc: other@evil.example", settings={"auto_ack": False})
        )
        from storage.models import Ticket

        await session.execute(update(Ticket).values(subject="Hi\r\nBcc: third@evil.example\r\n\r\nfake body"))
    await mail.desk.reply("alice", ref, "Answer")
    await mail.worker().flush()
    delivered = mail.server.recorder.delivered
    assert [item.recipients for item in delivered] == [(CUSTOMER,), (CUSTOMER,)]  # acknowledgement, reply
    for item in delivered:
        names = header_names(item.data)
        assert "Bcc" not in names and len(names) == len(set(names))
    assert str(delivered[1].message["Subject"]) == f"Re: Hi Bcc: third@evil.example fake body [#{ref}]"


async def test_a_contact_address_we_cannot_send_to_fails_the_delivery_not_the_reply(mail_desk: MailDesk) -> None:
    mail = mail_desk
    [ref] = (await mail.receive(customer_mail())).refs
    async with mail.desk.db.writing() as session:
        await session.execute(update(Contact).values(email="carla@customer.example\x0bbcc"))
    await mail.desk.reply("alice", ref, "Answer")
    detail = await mail.desk.ticket("alice", ref)
    assert [m.delivery_status for m in detail.messages if m.kind == "reply"] == ["failed"]
    failed = await mail.events("mail.failed")
    assert len(failed) == 1 and "cannot be used as a mail address" in failed[0].data["error"]
    async with mail.desk.db.reading() as session:
        assert (await session.execute(select(Contact.email))).scalar_one().startswith("carla@")
