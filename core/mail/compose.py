"""Building outgoing mail: department identity, threading headers, and header text that cannot inject.

Everything here is pure: values in, the finished RFC 5322 bytes out. Any text
that reaches a header (subjects, display names, addresses, Message-IDs) passes
through `header_text` or `check_address` first, so a CR, LF or other control
character typed by a customer or an admin can never start a header of its own.
The serialisation itself is the standard library's `email` package with the
SMTP policy (CRLF line ends, RFC 2047 for non-ASCII names and subjects).
"""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime

from core.errors import BadArgument

# The strictest useful addr-spec: printable ASCII only, no spaces, quotes, brackets or separators.
_ADDRESS = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_MESSAGE_ID = re.compile(r"^[\x21-\x3b\x3d\x3f-\x7e]{1,900}$")  # printable ASCII, no < or >
# Control characters (C0, DEL, C1) and Unicode line/paragraph separators.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u0085]+")
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|aw|sv|antw|fwd?|wg|tr)\s*(?:\[\d+\])?\s*:\s*)+", re.IGNORECASE)
_SUBJECT_REF = re.compile(r"\[\s*#?\s*[A-Za-z][A-Za-z0-9]{0,9}-\d{1,18}\s*\]")
MAX_HEADER_TEXT = 900
MAX_REFERENCES = 20


def header_text(value: str, limit: int = MAX_HEADER_TEXT) -> str:
    """Text safe for one header: control characters become spaces, runs of space collapse.

    `=?` is broken up as well: the standard library decodes RFC 2047 encoded words in
    the values it is given, so `=?utf-8?q?a=0D=0ABcc:...?=` would come out as a raw CRLF.
    """
    text = " ".join(_CONTROL.sub(" ", value).split())
    return text.replace("=?", "= ?")[:limit]


def check_address(value: str) -> str:
    """A lower-cased addr-spec we can put in an envelope and a header, or BadArgument."""
    address = value.strip().lower()
    if not _ADDRESS.match(address) or ".." in address:
        raise BadArgument(
            f"{header_text(value, 200)!r} cannot be used as a mail address; it must be plain ASCII like "
            "name@example.com."
        )
    return address


def message_id_for(address: str) -> str:
    """A new globally unique Message-ID (without angle brackets) in the domain of `address`."""
    domain = address.rpartition("@")[2]
    if not re.fullmatch(r"[A-Za-z0-9.-]{1,253}", domain):
        domain = "termdesk.invalid"
    return f"{uuid.uuid4().hex}@{domain}"


def clean_message_ids(ids: Iterable[str]) -> list[str]:
    """Message-IDs usable in In-Reply-To/References; anything malformed is left out."""
    return [
        value for value in (item.strip().strip("<>") for item in ids) if _MESSAGE_ID.match(value) and "=?" not in value
    ]


def subject_key(subject: str) -> str:
    """A subject without reply prefixes, ticket references and case: "the same subject" for rate limits."""
    text = _SUBJECT_REF.sub(" ", header_text(subject))
    return " ".join(_REPLY_PREFIX.sub("", text).split()).casefold()[:200]


def with_ref(subject: str, ref: str, *, reply: bool) -> str:
    """`Re: <subject> [#TD-12]`: the reference our threading finds again (see core.mail.thread)."""
    text = _SUBJECT_REF.sub(" ", header_text(subject))
    text = " ".join(_REPLY_PREFIX.sub("", text).split()) or "(no subject)"
    prefix = "Re: " if reply else ""
    return f"{prefix}{text} [#{ref}]"


@dataclass(frozen=True)
class Identity:
    """Who a department's mail is from."""

    name: str
    address: str
    reply_to: str
    signature: str = ""


@dataclass(frozen=True)
class Outgoing:
    """One mail to compose; `headers` are extra (name, value) pairs such as Auto-Submitted."""

    identity: Identity
    to_address: str
    to_name: str
    subject: str
    text: str
    message_id: str
    date: datetime
    html: str | None = None
    in_reply_to: str | None = None
    references: Sequence[str] = ()
    headers: Sequence[tuple[str, str]] = field(default_factory=tuple)


def _address(name: str, address: str) -> Address:
    local, _, domain = check_address(address).partition("@")
    return Address(display_name=header_text(name, 200), username=local, domain=domain)


def body_with_signature(text: str, signature: str) -> str:
    """The body with the department's signature under the standard `-- ` separator."""
    body = text.rstrip()
    if signature.strip():
        body = f"{body}\n\n-- \n{signature.strip()}"
    return body + "\n"


def text_to_html(text: str) -> str:
    """A minimal HTML alternative of a text body: escaped, line breaks kept; nothing in it is markup."""
    escaped = html.escape(text).replace("\n", "<br>\n")
    return f'<!DOCTYPE html>\n<html><body><div style="white-space: pre-wrap">{escaped}</div></body></html>\n'


def compose(mail: Outgoing) -> bytes:
    """The finished message as bytes with CRLF line ends, ready for DATA."""
    message = EmailMessage(policy=policy.SMTP)
    message["From"] = _address(mail.identity.name, mail.identity.address)
    message["To"] = _address(mail.to_name, mail.to_address)
    if mail.identity.reply_to and mail.identity.reply_to != mail.identity.address:
        message["Reply-To"] = _address(mail.identity.name, mail.identity.reply_to)
    message["Subject"] = header_text(mail.subject) or "(no subject)"
    message["Date"] = format_datetime(mail.date)
    own_ids = clean_message_ids([mail.message_id])
    if not own_ids:
        raise BadArgument(f"{header_text(mail.message_id, 100)!r} is not a usable Message-ID.")
    message["Message-ID"] = f"<{own_ids[0]}>"
    parent = clean_message_ids([mail.in_reply_to] if mail.in_reply_to else [])
    if parent:
        message["In-Reply-To"] = f"<{parent[0]}>"
    references = clean_message_ids(mail.references)[-MAX_REFERENCES:]
    if references:
        message["References"] = " ".join(f"<{item}>" for item in references)
    for name, value in mail.headers:
        message[name] = header_text(value)
    body = body_with_signature(mail.text, mail.identity.signature)
    # Quoted-printable: 7-bit clean for any relay, and still readable ASCII for the common case.
    message.set_content(body, subtype="plain", charset="utf-8", cte="quoted-printable")
    if mail.html is not None:
        message.add_alternative(mail.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return message.as_bytes()
