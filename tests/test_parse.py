"""Parsing raw mail: the shared corpus against its expected outputs, charsets, limits, hostile input."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.config import MailSettings
from core.mail.message import ParsedMail, Unparseable
from core.mail.parse import html_to_text, parse_message
from tests.corpus import CORPUS, corpus_bytes, corpus_files, corpus_messages, needs_corpus

LIMITS = MailSettings()
MESSAGES = corpus_messages()

# Files the corpus holds that are not RFC 5322 messages, or that break the part limit on purpose.
EXPECTED_QUARANTINE = {
    "flanker/enclosed-endless.eml": "more than 1000 MIME parts",
    "rt/lorem-ipsum.eml": "no header fields",  # plain prose, no header at all
    "spamassassin/spam/bsmtp.eml": "no header fields",  # an SMTP transcript (HELO, MAIL FROM, DATA…)
    "spamscope-mail-parser/mail_outlook_1.eml": "no header fields",  # a binary Outlook .msg file
}


def mail(headers: dict[str, str] | list[tuple[str, str]], body: str | bytes = "Hello\n") -> bytes:
    items = headers.items() if isinstance(headers, dict) else headers
    head = "".join(f"{name}: {value}\n" for name, value in items).encode("utf-8")
    return head + b"\n" + (body.encode("utf-8") if isinstance(body, str) else body)


def parse(raw: bytes, limits: MailSettings = LIMITS) -> ParsedMail:
    return parse_message(raw, limits)


# --- the corpus ------------------------------------------------------------------------------


@needs_corpus
@pytest.mark.parametrize("message", MESSAGES, ids=[message.path for message in MESSAGES])
def test_every_corpus_message_parses_or_is_quarantined_with_a_reason(message) -> None:
    raw = message.read()
    try:
        parsed = parse(raw)
    except Unparseable as error:
        assert message.path in EXPECTED_QUARANTINE, f"unexpectedly unparseable: {error.reason}"
        assert EXPECTED_QUARANTINE[message.path] in error.reason
        return
    assert message.path not in EXPECTED_QUARANTINE
    assert "<" not in parsed.message_id and ">" not in parsed.message_id
    if not parsed.has_message_id:
        assert parsed.message_id == f"{hashlib.sha256(raw).hexdigest()}@termdesk.invalid"
    if "no-message-id" in message.tags and message.path != "dovecot-testsuite/malformed/019.eml":
        # (019 starts with "Fro :…", which the tagger's parser stopped at; read as obsolete
        # syntax, as Stalwart does, its Message-ID is found.)
        assert not parsed.has_message_id
    assert parsed.date is None or parsed.date.tzinfo is not None
    for name, value in parsed.headers:
        assert "\x00" not in value, name
    # Everything we return must be storable: no lone surrogates anywhere.
    parsed.text.encode("utf-8")
    parsed.display_text.encode("utf-8")
    parsed.subject.encode("utf-8")
    if "defects" in message.tags:
        assert parsed.defects


@needs_corpus
def test_the_corpus_is_all_there() -> None:
    assert len(MESSAGES) == 302
    quarantined = []
    for message in MESSAGES:
        try:
            parse(message.read())
        except Unparseable:
            quarantined.append(message.path)
    assert sorted(quarantined) == sorted(EXPECTED_QUARANTINE)


def _mail_parser_expectations() -> list[str]:
    files = corpus_files("dovecot-testsuite/expected", "*/*.json") + corpus_files("stalwart-rfc/expected", "*.json")
    return [str(path.relative_to(CORPUS)) for path in files]


# Stalwart's parser and the stdlib's split these malformed multiparts differently; the stdlib's
# reading is as defensible, so the body text is not compared for them (subject and sender are).
_DIFFERENT_MULTIPART_READING = {
    # boundaries "a--" and "a----" are prefixes of each other (forbidden by RFC 2046 §5.1.1)
    "dovecot-testsuite/expected/malformed/005.json",
    # two Content-Type headers on one part: Stalwart takes the last, the stdlib the first
    "dovecot-testsuite/expected/malformed/020.json",
    "dovecot-testsuite/expected/malformed/021.json",
}


def _header(headers: list[dict], name: str) -> object:
    for header in headers:
        if header["name"] == name:
            return header["value"]
    return None


@needs_corpus
@pytest.mark.parametrize("expected_path", _mail_parser_expectations())
def test_subject_sender_and_body_match_the_mail_parser_expectations(expected_path: str) -> None:
    expected = json.loads((CORPUS / expected_path).read_text(encoding="utf-8"))
    eml = expected_path.replace("expected/", "").replace(".json", ".eml")
    parsed = parse(corpus_bytes(eml))
    top = expected["parts"][0]["headers"]

    subject = _header(top, "subject")
    assert parsed.subject == (subject["Text"] if isinstance(subject, dict) else "")

    sender = _header(top, "from")
    first = sender["Address"]["List"][0] if isinstance(sender, dict) and "List" in sender.get("Address", {}) else {}
    expected_address = (first.get("address") or "").lower()
    if "@" in expected_address:
        assert parsed.sender.address == expected_address
        assert parsed.sender.name == (first.get("name") or "")
    else:
        # No addr-spec with a domain (e.g. "Moderator-Address <moderator>"): we keep no address
        # rather than guess one; Stalwart reports the bare local part.
        assert parsed.sender.address == ""

    date = _header(top, "date")
    # 019's first Date is cut off mid-time ("10:00:t <rimap…"): Stalwart guesses the seconds, we say None.
    if isinstance(date, dict) and "DateTime" in date and not expected_path.endswith("malformed/019.json"):
        value = date["DateTime"]
        offset = timedelta(hours=value["tz_hour"], minutes=value["tz_minute"])
        zone = timezone(offset if value["tz_before_gmt"] is False else -offset)
        when = datetime(value["year"], value["month"], value["day"], value["hour"], value["minute"], value["second"])
        assert parsed.date == when.replace(tzinfo=zone)

    if expected_path in _DIFFERENT_MULTIPART_READING:
        return
    text = parsed.text.replace("\r\n", "\n")
    for index in expected["text_body"]:
        body = expected["parts"][index]["body"]
        if "Text" in body:
            wanted = body["Text"].replace("\r\n", "\n").strip()
        elif "Html" in body:
            # Stalwart keeps the HTML; ours is converted, so compare against the same conversion.
            wanted = html_to_text(body["Html"]).strip()
        else:
            continue
        # Undecodable bytes become U+FFFD on both sides, but not necessarily as many of them.
        wanted = wanted.split("\ufffd", 1)[0].strip()
        assert wanted in text, f"part {index}: {wanted[:80]!r} not in {text[:300]!r}"


@needs_corpus
@pytest.mark.parametrize("eml", [path.name for path in corpus_files("talon/standard_replies", "*.eml")])
def test_display_text_keeps_only_the_reply_like_talon_expects(eml: str) -> None:
    path = CORPUS / "talon" / "standard_replies" / eml
    reply_file = path.with_name(path.stem + "_reply_text")
    expected = reply_file.read_text(encoding="utf-8").strip() if reply_file.exists() else "Hello"
    parsed = parse(path.read_bytes())
    assert parsed.display_text.strip() == expected
    # The stored text keeps the quoted history.
    assert len(parsed.text.strip()) > len(expected)


@needs_corpus
def test_zammad_bounce_matches_its_expected_yml() -> None:
    # zammad/expected/*.yml is a Ruby-tagged YAML dump; the fields we compare are plain lines.
    expected = (CORPUS / "zammad/expected/mail033-undelivered-mail-returned-to-sender-notification.yml").read_text()
    fields = {
        key: value.strip()
        for key, _, value in (line.partition(":") for line in expected.splitlines() if not line.startswith(" "))
    }
    body = expected.split("body: |\n", 1)[1].split("\ncontent_type:", 1)[0]
    body = "\n".join(line[2:] for line in body.splitlines())
    parsed = parse(corpus_bytes("zammad/mail033-undelivered-mail-returned-to-sender-notification.eml"))
    assert parsed.subject == fields["subject"]
    assert parsed.sender.address == fields["from_email"].lower()
    assert parsed.sender.name == fields["from_display_name"]
    assert [address.address for address in parsed.to] == [fields["to"]]
    assert parsed.text.strip() == body.strip()
    # Zammad names attachments itself ("Delivery report.txt"); we keep the sender's (none), so only
    # the kinds and the report's content are compared.
    kinds = [attachment.content_type for attachment in parsed.attachments]
    assert kinds == ["message/delivery-status", "message/rfc822"]
    assert b"Reporting-MTA: dns; mx1.zammad.com" in parsed.attachments[0].data
    assert b"Diagnostic-Code: smtp; 550 5.1.1" in parsed.attachments[0].data
    assert parsed.attachments[1].filename.endswith(".eml")
    assert parsed.is_bounce


# --- charsets --------------------------------------------------------------------------------


@needs_corpus
def test_corpus_charsets_decode_to_the_right_text() -> None:
    gb18030 = parse(corpus_bytes("rt/new-ticket-from-gb18030.eml"))
    assert gb18030.subject == "测试"
    assert gb18030.text.strip() == "测试"

    big5 = parse(corpus_bytes("spamassassin/nice/cjk__big5-base64.1.eml"))
    assert "新片又到" in big5.subject  # raw 8-bit Big5 in the Subject, read with the body's charset
    assert "永久網址" in big5.text

    utf16 = parse(corpus_bytes("dovecot-testsuite/thirdparty/005.eml"))
    assert utf16.text.count("Test message") == 3  # utf-16le binary, utf-16be and utf-16le base64
    assert "『世界人権宣言』" in utf16.text  # EUC-JP

    mislabelled = parse(corpus_bytes("spamassassin/nice/cjk__iso-2022-jp.2.eml"))
    assert "心当たりがあります" in mislabelled.text  # labelled iso-2022-jp, written in EUC-JP

    latin9 = parse(corpus_bytes("rt/8859-15-message-series/msg1.eml"))
    assert latin9.subject == "test äöüßÄÖÜß€"

    broken_utf8_name = parse(corpus_bytes("flanker/mailformed-headers.eml"))
    assert broken_utf8_name.sender.name.startswith("Юникод запрещен")


@pytest.mark.parametrize(
    ("charset", "text"),
    [
        ("windows-1251", "Здравствуйте, у меня не работает принтер"),
        ("koi8-r", "Здравствуйте, у меня не работает принтер"),
        ("gb18030", "你好，我的打印机坏了"),
        ("big5", "您好，我的印表機壞了"),
        ("iso-2022-jp", "こんにちは、プリンターが壊れました"),
        ("shift_jis", "こんにちは、プリンターが壊れました"),
        ("utf-16", "Grüße — die Drucker 🖨 streiken"),
    ],
)
def test_declared_charsets_decode_in_body_and_encoded_word_subject(charset: str, text: str) -> None:
    subject = f"=?{charset}?B?{base64.b64encode(text.encode(charset)).decode()}?="
    raw = mail(
        {
            "From": "a@example.org",
            "Subject": subject,
            "Content-Type": f"text/plain; charset={charset}",
            "Content-Transfer-Encoding": "base64",
        },
        base64.encodebytes(text.encode(charset)),
    )
    parsed = parse(raw)
    assert parsed.subject == text
    assert parsed.text == text


def test_unknown_and_lying_charsets_fall_back_without_crashing() -> None:
    unknown = parse(mail({"From": "a@example.org", "Content-Type": "text/plain; charset=x-klingon"}, "café"))
    assert unknown.text == "café"  # UTF-8 bytes under an unknown label
    latin = parse(
        mail({"From": "a@example.org", "Content-Type": "text/plain; charset=us-ascii"}, b"caf\xe9 cr\xe8me\n")
    )
    assert latin.text == "café crème\n"  # 8-bit bytes under us-ascii: Windows-1252
    escape = parse(mail({"From": "a@example.org", "Content-Type": "text/plain; charset=unicode_escape"}, "a\\u0041"))
    assert escape.text == "a\\u0041"  # a Python codec that runs escapes is not a charset
    surrogate = parse(mail({"From": "a@example.org", "Content-Type": "text/plain; charset=utf-7"}, "+2AA-"))
    surrogate.text.encode("utf-8")  # UTF-7 can spell a lone surrogate; it never reaches storage


def test_broken_encoded_words_keep_what_can_be_read() -> None:
    parsed = parse(
        mail(
            {
                "From": "=?utf-8?q?Zo=C3=AB?= <zoe@example.org>",
                "Subject": "=?utf-8?B?SGVsbG8gd29ybGQ?= =?x-nonsense?q?abc?= =?utf-8?Q?caf=C3=A9?= =?utf-8?B?@@@?=",
            }
        )
    )
    assert parsed.sender == parsed.sender.__class__(address="zoe@example.org", name="Zoë")
    assert parsed.subject.startswith("Hello world")
    assert "abc" in parsed.subject and "café" in parsed.subject
    split = parse(mail({"From": "a@example.org", "Subject": "=?utf-8?B?5pel?= =?utf-8?B?5pys6Kqe?="}))
    assert split.subject == "日本語"  # adjacent words joined; whitespace between them dropped


def test_raw_utf8_headers_are_read_as_utf8() -> None:
    parsed = parse(mail({"From": "Jürgen Groß <jg@example.org>", "Subject": "Größe"}))
    assert parsed.subject == "Größe"
    assert parsed.sender.name == "Jürgen Groß"


# --- HTML and attachments ----------------------------------------------------------------------


def test_html_only_mail_becomes_readable_text() -> None:
    html = (
        "<html><head><style>p {color: red}</style><script>alert(1)</script></head><body>"
        "<p>Dear support,</p><p>my <b>printer</b> &amp; scanner fail.</p>"
        "<ul><li>first</li><li>second</li></ul><table><tr><td>A</td><td>B</td></tr></table></body></html>"
    )
    parsed = parse(mail({"From": "a@example.org", "Content-Type": "text/html; charset=utf-8"}, html))
    assert parsed.html == html
    assert "Dear support," in parsed.text
    assert "my printer & scanner fail." in parsed.text
    assert "first" in parsed.text and "second" in parsed.text
    assert "<" not in parsed.text and "alert(1)" not in parsed.text and "color: red" not in parsed.text


@needs_corpus
def test_html_only_corpus_mail_has_text() -> None:
    for message in MESSAGES:
        if "html-only" in message.tags:
            parsed = parse(message.read())
            assert parsed.text.strip(), message.path
            assert parsed.html is not None


def _with_attachment(disposition: str, size: int = 3000) -> bytes:
    payload = base64.encodebytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256)).decode()
    return (
        "From: a@example.org\nSubject: files\nMIME-Version: 1.0\n"
        'Content-Type: multipart/mixed; boundary="b"\n\n'
        "--b\nContent-Type: text/plain; charset=utf-8\n\nSee attached.\n"
        f"--b\nContent-Type: application/pdf\nContent-Disposition: {disposition}\n"
        f"Content-Transfer-Encoding: base64\n\n{payload}--b--\n"
    ).encode()


@needs_corpus
def test_rfc2231_filenames_are_decoded() -> None:
    parsed = parse(corpus_bytes("rt/rfc2231-attachment-filename-continuations.eml"))
    assert [attachment.filename for attachment in parsed.attachments] == ["新しいテキスト ドキュメント.txt"]
    synthetic = parse(
        _with_attachment("attachment; filename*0*=utf-8''%E2%82%AC%20rates; filename*1=\" 2024.pdf\"")
    )
    assert synthetic.attachments[0].filename == "€ rates 2024.pdf"
    encoded_word = parse(_with_attachment('attachment; filename="=?utf-8?q?R=C3=A9sum=C3=A9.pdf?="'))
    assert encoded_word.attachments[0].filename == "Résumé.pdf"


def test_attachment_filenames_are_never_paths() -> None:
    parsed = parse(_with_attachment('attachment; filename="../../etc/passwd"'))
    assert parsed.attachments[0].filename == "passwd"
    windows = parse(_with_attachment('attachment; filename="C:\\\\Users\\\\x\\\\evil.exe"'))
    assert windows.attachments[0].filename == "evil.exe"


def test_attachments_keep_their_content() -> None:
    parsed = parse(_with_attachment('attachment; filename="a.pdf"', size=3000))
    (attachment,) = parsed.attachments
    assert attachment.content_type == "application/pdf"
    assert len(attachment.data) == 3000 and attachment.data[:3] == bytes([0, 1, 2])
    assert attachment.truncated_from is None
    assert parsed.text == "See attached."


def test_oversize_attachment_is_dropped_or_truncated_per_config() -> None:
    raw = _with_attachment('attachment; filename="big.pdf"', size=5000)
    dropped = parse(raw, MailSettings(max_attachment_bytes=4096, oversize_attachments="drop"))
    assert dropped.attachments == ()
    (gone,) = dropped.dropped_attachments
    assert (gone.filename, gone.content_type, gone.size) == ("big.pdf", "application/pdf", 5000)
    assert "4096" in gone.reason
    truncated = parse(raw, MailSettings(max_attachment_bytes=4096, oversize_attachments="truncate"))
    (cut,) = truncated.attachments
    assert len(cut.data) == 4096 and cut.truncated_from == 5000
    assert truncated.dropped_attachments == ()


@needs_corpus
def test_attached_mail_is_kept_as_an_eml_attachment() -> None:
    parsed = parse(corpus_bytes("rt/nested-rfc-822.eml"))
    (attached,) = [a for a in parsed.attachments if a.content_type == "message/rfc822"]
    assert attached.filename.endswith(".eml")
    inner = parse(attached.data)
    assert inner.subject  # the attached mail is itself a parseable message


# --- limits ------------------------------------------------------------------------------------


def _nested(depth: int) -> bytes:
    """`depth` nested multiparts (the top one included) around one text part."""
    head = b"From: a@example.org\nSubject: deep\n"
    opening = b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (level, level) for level in range(depth)
    )
    closing = b"".join(b"--b%d--\n" % level for level in reversed(range(depth)))
    return head + opening + b"Content-Type: text/plain\n\ndeep down\n" + closing


def test_mime_depth_over_twenty_is_unparseable() -> None:
    assert parse(_nested(20)).text.strip() == "deep down"
    with pytest.raises(Unparseable, match="deeper than 20"):
        parse(_nested(21))
    with pytest.raises(Unparseable):
        parse(_nested(3000))  # deeper than the stdlib parser's recursion: still only Unparseable


def _many_parts(count: int) -> bytes:
    parts = b"".join(b"--b\nContent-Type: text/plain\n\npart %d\n" % index for index in range(count))
    return b'From: a@example.org\nContent-Type: multipart/mixed; boundary="b"\n\n' + parts + b"--b--\n"


def test_more_than_a_thousand_parts_is_unparseable() -> None:
    assert parse(_many_parts(1000)).text.startswith("part 0")
    with pytest.raises(Unparseable, match="more than 1000 MIME parts"):
        parse(_many_parts(1001))


def test_message_over_the_size_limit_is_unparseable() -> None:
    limits = MailSettings(max_message_bytes=2048)
    with pytest.raises(Unparseable, match="over the limit of 2048"):
        parse(mail({"From": "a@example.org"}, "x" * 3000), limits)


@pytest.mark.parametrize("raw", [b"", b"   \r\n", b"just some words without a colon\n\nmore", b"\x00\xff\xfe" * 50])
def test_input_without_headers_is_unparseable(raw: bytes) -> None:
    with pytest.raises(Unparseable):
        parse(raw)


def test_a_quadratic_parameter_header_is_parsed_in_bounded_time() -> None:
    # email.message._parseparam is quadratic in ";" (seconds for 100k); we cut such headers first.
    raw = b"From: a@example.org\nContent-Type: text/plain; charset=utf-8" + b"; a=b" * 200_000 + b"\n\nbody\n"
    started = time.perf_counter()
    parse(raw)
    assert time.perf_counter() - started < 5


# --- headers, ids, dates, addresses ----------------------------------------------------------


def test_missing_message_id_is_derived_from_the_raw_bytes() -> None:
    raw = mail({"From": "a@example.org", "Subject": "no id"})
    first, second = parse(raw), parse(raw)
    assert not first.has_message_id
    assert first.message_id == second.message_id == f"{hashlib.sha256(raw).hexdigest()}@termdesk.invalid"
    other = parse(raw + b"!")
    assert other.message_id != first.message_id


def test_message_ids_lose_their_angle_brackets_and_garbage_is_tolerated() -> None:
    parsed = parse(
        mail(
            {
                "From": "a@example.org",
                "Message-ID": "  <abc.123@example.org> (comment)",
                "In-Reply-To": "<parent@example.org> garbage <<>> <also@example.org>",
                "References": "<root@example.org>\n <parent@example.org> <parent@example.org> junk",
            }
        )
    )
    assert parsed.has_message_id and parsed.message_id == "abc.123@example.org"
    assert parsed.in_reply_to == ("parent@example.org", "also@example.org")
    assert parsed.references == ("root@example.org", "parent@example.org")
    bare = parse(mail({"From": "a@example.org", "Message-ID": "bare@example.org", "In-Reply-To": "!!!"}))
    assert bare.message_id == "bare@example.org" and bare.in_reply_to == ()


def test_dates_are_aware_or_none() -> None:
    parsed = parse(mail({"From": "a@example.org", "Date": "Tue, 7 Apr 2026 10:00:01 +0200"}))
    assert parsed.date == datetime(2026, 4, 7, 8, 0, 1, tzinfo=UTC)
    unknown_zone = parse(mail({"From": "a@example.org", "Date": "Tue, 7 Apr 2026 10:00:01 -0000"}))
    assert unknown_zone.date is not None and unknown_zone.date.tzinfo is not None
    for garbage in ("yesterday", "Tue, 99 Foo 99999 99:99:99 +9999", ""):
        assert parse(mail({"From": "a@example.org", "Date": garbage})).date is None


def test_cve_2023_27043_address_never_becomes_the_one_in_the_comment() -> None:
    parsed = parse(mail({"From": "alice@example.org(<bob@example.org>", "To": "alice@example.org(<bob@example.org>"}))
    for address in (parsed.sender, *parsed.to):
        assert "bob" not in address.address
        assert address.address in ("", "alice@example.org")
    # The display-name trick: an address-looking name in front of another address is ambiguous.
    spoof = parse(mail({"From": "alice@example.com <bob@example.com>"}))
    assert spoof.sender.address == ""
    assert spoof.sender.name == "alice@example.com <bob@example.com>"


def test_address_lists_names_and_groups() -> None:
    parsed = parse(
        mail(
            {
                "From": '"Doe, Jane" <Jane.Doe@Example.ORG>',
                "To": "bob@example.org, Carol <carol@example.org>",
                "Cc": "team: dave@example.org, erin@example.org;",
                "Reply-To": "=?utf-8?q?Help_Desk?= <help@example.org>",
            }
        )
    )
    assert (parsed.sender.address, parsed.sender.name) == ("jane.doe@example.org", "Doe, Jane")
    assert [a.address for a in parsed.to] == ["bob@example.org", "carol@example.org"]
    assert [a.address for a in parsed.cc] == ["dave@example.org", "erin@example.org"]
    assert parsed.reply_to is not None and parsed.reply_to.name == "Help Desk"


def test_kept_headers_include_the_loop_guard_headers() -> None:
    raw = mail(
        [
            ("From", "a@example.org"),
            ("To", "b@example.org"),
            ("Subject", "s"),
            ("Auto-Submitted", "auto-replied"),
            ("Precedence", "bulk"),
            ("Return-Path", "<>"),
            ("List-Id", "<x.example.org>"),
            ("X-Loop", "x"),
            ("X-Termdesk-Loop", "termdesk"),
            ("Received", "from somewhere"),
        ]
    )
    parsed = parse(raw)
    names = [name for name, _ in parsed.headers]
    for name in ("From", "To", "Subject", "Auto-Submitted", "Precedence", "Return-Path", "List-Id", "X-Loop"):
        assert name in names
    assert "X-Termdesk-Loop" in names and "Received" not in names
    assert parsed.return_path == ""


def test_nul_in_header_values_is_replaced_and_bodies_are_untouched() -> None:
    parsed = parse(mail({"From": "a@example.org", "Subject": "a\x00b"}, "body\x00kept\n"))
    assert parsed.subject == "a\ufffdb"
    assert parsed.text == "body\x00kept\n"


def test_control_sequences_and_markup_are_stored_intact() -> None:
    hostile = "\x1b]0;owned\x07\x1b[2J[@click=app.quit]z[/] [bold]x[/bold] \x9b31m \x1b]8;;http://evil\x1b\\"
    parsed = parse(
        mail(
            {"From": "a@example.org", "Subject": hostile, "Content-Type": "text/plain; charset=utf-8"},
            hostile + "\n",
        )
    )
    assert parsed.subject == hostile
    assert parsed.text == hostile + "\n"
    assert parsed.display_text == hostile


def test_quoted_history_is_trimmed_for_display_only() -> None:
    body = (
        "Thanks, that fixed it.\n\n"
        "On Tue, 7 Apr 2026 at 10:00, Support <help@example.org> wrote:\n> Try a restart.\n"
    )
    parsed = parse(mail({"From": "a@example.org"}, body))
    assert parsed.display_text == "Thanks, that fixed it."
    assert parsed.text == body
    outlook = "Works now.\n\n________________________________\nFrom: Support\nSent: Monday\nTo: me\nSubject: x\n\nold"
    assert parse(mail({"From": "a@example.org"}, outlook)).display_text == "Works now."
    german = "Danke!\n\nAm 07.04.2026 um 10:00 schrieb Support <help@example.org>:\n> Alt\n"
    assert parse(mail({"From": "a@example.org"}, german)).display_text == "Danke!"
    only_quote = "> everything is quoted\n"
    assert parse(mail({"From": "a@example.org"}, only_quote)).display_text == "> everything is quoted"


# --- fuzzing -----------------------------------------------------------------------------------


def _parse_or_unparseable(raw: bytes) -> None:
    started = time.perf_counter()
    try:
        result = parse_message(raw, LIMITS)
    except Unparseable as error:
        assert error.reason
    else:
        assert isinstance(result, ParsedMail)
        result.text.encode("utf-8")
        result.subject.encode("utf-8")
    assert time.perf_counter() - started < 5


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4000))
def test_arbitrary_bytes_parse_or_are_unparseable(raw: bytes) -> None:
    _parse_or_unparseable(raw)


_HEADERISH = st.lists(
    st.tuples(
        st.sampled_from(["From", "To", "Subject", "Content-Type", "Content-Disposition", "Date", "Message-ID"]),
        st.text(max_size=80),
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_HEADERISH, st.text(max_size=500))
def test_arbitrary_header_text_parses_or_is_unparseable(headers: list[tuple[str, str]], body: str) -> None:
    raw = "".join(f"{name}: {value}\n" for name, value in headers).encode("utf-8", "surrogatepass") + b"\n"
    _parse_or_unparseable(raw + body.encode("utf-8", "surrogatepass"))


_SEEDS = [message.path for message in MESSAGES if message.size < 60_000]


@needs_corpus
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(_SEEDS or ["missing"]), st.randoms(use_true_random=False), st.integers(1, 40))
def test_mutated_corpus_messages_parse_or_are_unparseable(path: str, rng: random.Random, mutations: int) -> None:
    data = bytearray(corpus_bytes(path))
    interesting = [b"\n", b"\r\n", b"--", b":", b";", b"=?", b"?=", b"\"", b"<", b">", b"\x00", b"\xff", b"=", b" "]
    for _ in range(mutations):
        if not data:
            break
        position = rng.randrange(len(data))
        action = rng.randrange(4)
        if action == 0:
            data[position] = rng.randrange(256)
        elif action == 1:
            data[position:position] = rng.choice(interesting)
        elif action == 2:
            del data[position : position + rng.randrange(1, 64)]
        else:
            chunk = data[position : position + rng.randrange(1, 200)]
            data[position:position] = chunk
    _parse_or_unparseable(bytes(data))
