"""The loop guard: automatic mail is flagged (never auto-answered), people's mail is not."""

from __future__ import annotations

import pytest

from core.config import MailSettings
from core.mail.guard import LOOP_HEADER, automatic_flags, never_auto_mail
from core.mail.parse import parse_message
from tests.corpus import corpus_bytes, corpus_files, corpus_messages, needs_corpus

LIMITS = MailSettings()
MESSAGES = corpus_messages()


def flags_for(
    headers: list[tuple[str, str]],
    *,
    content_type: str = "text/plain",
    return_path: str | None = "customer@example.org",
    sender: str = "customer@example.org",
) -> frozenset[str]:
    return automatic_flags(
        headers, content_type=content_type, return_path=return_path, sender=sender, loop_header_value="termdesk"
    )


@pytest.mark.parametrize(
    "value", ["auto-replied", "auto-generated", "auto-notified", "Auto-Replied", "  auto-replied ; x=y", "yes", ""]
)
def test_auto_submitted_with_any_value_but_no_is_flagged(value: str) -> None:
    assert "auto-submitted" in flags_for([("Auto-Submitted", value)])


@pytest.mark.parametrize("value", ["no", "No", " NO ", "no; comment=x", "no (a person wrote this)"])
def test_auto_submitted_no_is_a_person(value: str) -> None:
    assert flags_for([("Auto-Submitted", value)]) == frozenset()


@pytest.mark.parametrize("name", ["Precedence", "X-Precedence"])
@pytest.mark.parametrize("value", ["bulk", "list", "junk", "auto_reply", "BULK", " list "])
def test_precedence_bulk_list_junk_auto_reply_is_flagged(name: str, value: str) -> None:
    assert flags_for([(name, value)]) == {"precedence"}


@pytest.mark.parametrize("value", ["normal", "first-class", "urgent"])
def test_other_precedence_is_a_person(value: str) -> None:
    assert flags_for([("Precedence", value)]) == frozenset()


@pytest.mark.parametrize("value", ["All", "AutoReply", "OOF", "DR, OOF, AutoReply", "dr,rn,all"])
def test_x_auto_response_suppress_is_flagged(value: str) -> None:
    assert flags_for([("X-Auto-Response-Suppress", value)]) == {"suppress"}


@pytest.mark.parametrize("value", ["DR", "RN, NRN", "NDR"])
def test_x_auto_response_suppress_for_receipts_only_is_a_person(value: str) -> None:
    # Outlook sets DR/RN on ordinary mail to suppress receipts; only All/AutoReply/OOF speak to us.
    assert flags_for([("X-Auto-Response-Suppress", value)]) == frozenset()


@pytest.mark.parametrize("name", ["X-Autoreply", "X-Autorespond", "X-Autoresponder"])
def test_autoresponder_headers_are_flagged(name: str) -> None:
    assert flags_for([(name, "yes")]) == {"autoreply"}


def test_x_loop_is_flagged() -> None:
    assert flags_for([("X-Loop", "someone@example.org")]) == {"x-loop"}


@pytest.mark.parametrize("name", ["List-Unsubscribe", "List-Id"])
def test_list_mail_is_flagged(name: str) -> None:
    assert flags_for([(name, "<mailto:leave@lists.example.org>")]) == {"list"}


def test_null_return_path_is_a_bounce() -> None:
    assert flags_for([], return_path="") == {"bounce"}
    assert flags_for([], return_path=None) == frozenset()  # absent is not the null sender


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@mx.example.org", "postmaster@example.org", "mailer-daemon"])
def test_mailer_daemon_and_postmaster_are_bounces(sender: str) -> None:
    assert "bounce" in flags_for([], sender=sender)
    assert "bounce" in flags_for([], return_path=sender)


def test_delivery_status_reports_are_bounces() -> None:
    flags = flags_for([], content_type='multipart/report; report-type="delivery-status"; boundary="x"')
    assert "bounce" in flags
    assert "bounce" in flags_for([], content_type="Multipart/Report; boundary=x; Report-Type=delivery-status")
    assert "bounce" in flags_for([], content_type="message/delivery-status")


def test_feedback_reports_are_complaints_and_read_receipts_are_receipts() -> None:
    assert {"bounce", "complaint"} <= flags_for([], content_type="multipart/report; report-type=feedback-report")
    assert {"bounce", "receipt"} <= flags_for([], content_type="multipart/report; report-type=disposition-notification")


def test_our_own_loop_header_coming_back_is_flagged() -> None:
    assert flags_for([(LOOP_HEADER, "termdesk")]) == {"our-loop"}
    assert flags_for([(LOOP_HEADER, " TermDesk ")]) == {"our-loop"}
    assert flags_for([("X-Loop", "termdesk")]) == {"x-loop", "our-loop"}
    # Another installation's loop header is not ours.
    assert flags_for([(LOOP_HEADER, "other-desk")]) == frozenset()


def test_ordinary_customer_mail_is_not_flagged() -> None:
    headers = [
        ("From", "Jane <jane@example.org>"),
        ("To", "support@example.com"),
        ("Subject", "Auto insurance: my printer is broken"),
        ("Content-Type", "text/plain; charset=utf-8"),
    ]
    assert flags_for(headers, content_type="text/plain; charset=utf-8") == frozenset()


def test_parse_message_fills_the_flags() -> None:
    raw = (
        b"From: Out of office <jane@example.org>\nTo: support@example.com\nSubject: Away\n"
        b"Auto-Submitted: auto-replied\nX-Termdesk-Loop: termdesk\n\nI am away.\n"
    )
    parsed = parse_message(raw, LIMITS)
    assert parsed.automatic == {"auto-submitted", "our-loop"}
    assert parsed.is_automatic and not parsed.is_bounce
    other_desk = parse_message(raw, LIMITS, loop_header_value="another-desk")
    assert other_desk.automatic == {"auto-submitted"}
    person = parse_message(b"From: jane@example.org\nSubject: Help\n\nPlease help.\n", LIMITS)
    assert person.automatic == frozenset() and not person.is_automatic


@pytest.mark.parametrize(
    "address",
    [
        "MAILER-DAEMON@example.org",
        "postmaster@example.org",
        "abuse@example.org",
        "noreply@example.org",
        "no-reply@shop.example",
        "donotreply@bank.example",
        "<NoReply@Example.org>",
        "support@ourdesk.example",
        "",
        "not-an-address",
    ],
)
def test_never_auto_mail_machines_abuse_desks_and_ourselves(address: str) -> None:
    assert never_auto_mail(address, {"Support@OurDesk.example"})


@pytest.mark.parametrize("address", ["jane@example.org", "reply@example.org", "no.reply.fan@example.org"])
def test_people_may_get_automatic_mail(address: str) -> None:
    assert not never_auto_mail(address, {"support@ourdesk.example"})


# --- the corpus --------------------------------------------------------------------------------

_AUTOMATIC_TAGS = {"auto/bulk-header", "bounce/dsn", "arf-complaint", "mdn"}
# Flagged although INDEX.tsv does not tag them, each by a rule RELIABILITY.md asks for:
_FLAGGED_BEYOND_THE_TAGS = {
    "flanker/bounce/broken-mime.eml": {"bounce"},  # From postmaster@
    "flanker/bounce/gmail-invalid-address.eml": {"bounce"},  # From mailer-daemon@
    "flanker/bounce/gmail-no-dns.eml": {"bounce"},  # From mailer-daemon@
    "flanker/long-links.eml": {"bounce"},  # From postmaster@ (RT treats it the same way)
    "spamassassin/nice/005.eml": {"list"},  # a Mailman list post (List-Id, List-Unsubscribe)
    "spamscope-mail-parser/mail_test_13.eml": {"list"},  # Mailchimp newsletter (List-Unsubscribe)
    "spamscope-mail-parser/mail_test_6.eml": {"list"},  # List-Id / List-Unsubscribe
}


@needs_corpus
def test_corpus_automatic_mail_is_flagged_and_ordinary_mail_is_not() -> None:
    checked = 0
    for message in MESSAGES:
        if message.path in {"rt/lorem-ipsum.eml", "spamassassin/spam/bsmtp.eml"} or message.path.endswith(
            ("mail_outlook_1.eml", "enclosed-endless.eml")
        ):
            continue  # quarantined (see test_parse)
        parsed = parse_message(message.read(), LIMITS)
        checked += 1
        if message.tags & _AUTOMATIC_TAGS:
            assert parsed.automatic, message.path
            if "bounce/dsn" in message.tags:
                assert parsed.is_bounce, message.path
            if "arf-complaint" in message.tags:
                assert "complaint" in parsed.automatic, message.path
        elif message.path in _FLAGGED_BEYOND_THE_TAGS:
            assert parsed.automatic == _FLAGGED_BEYOND_THE_TAGS[message.path], message.path
        else:
            assert parsed.automatic == frozenset(), (message.path, parsed.automatic)
    assert checked == len(MESSAGES) - 4


@needs_corpus
def test_an_auto_looking_subject_alone_is_not_automatic() -> None:
    # Discourse flags "[AUTO GENERATED]" in the subject; headers are what we trust.
    parsed = parse_message(corpus_bytes("discourse/auto_generated_subject.eml"), LIMITS)
    assert parsed.subject.startswith("[AUTO GENERATED]")
    assert parsed.automatic == frozenset()


@needs_corpus
@pytest.mark.parametrize("path", [p.name for p in corpus_files("discourse", "auto_*.eml") if "subject" not in p.name])
def test_discourse_auto_generated_mail_is_flagged(path: str) -> None:
    assert parse_message(corpus_bytes(f"discourse/{path}"), LIMITS).automatic


@needs_corpus
def test_corpus_bounces_and_complaints() -> None:
    zammad = parse_message(corpus_bytes("zammad/mail033-undelivered-mail-returned-to-sender-notification.eml"), LIMITS)
    assert {"bounce", "auto-submitted"} <= zammad.automatic
    assert zammad.return_path == "mailer-daemon"
    for path in corpus_files("flanker/bounce", "*.eml"):
        assert parse_message(path.read_bytes(), LIMITS).is_bounce, path.name
    for path in corpus_files("flanker/complaints", "*.eml"):
        assert "complaint" in parse_message(path.read_bytes(), LIMITS).automatic, path.name
