"""What parsing a raw email yields: plain values the rest of the mail path works with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


class Unparseable(Exception):
    """The message cannot be turned into a thread entry; it is quarantined with `reason`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class MailAddress:
    address: str  # lower-cased addr-spec, "" when there was none usable
    name: str = ""


@dataclass(frozen=True)
class ParsedAttachment:
    filename: str  # decoded (RFC 2047 / RFC 2231), never a path; "" when none was given
    content_type: str
    data: bytes
    inline: bool = False
    truncated_from: int | None = None  # original size when cut to the configured limit


@dataclass(frozen=True)
class DroppedAttachment:
    filename: str
    content_type: str
    size: int
    reason: str


@dataclass(frozen=True)
class ParsedMail:
    """A message as the desk needs it. Header text is decoded; nothing is rendered."""

    message_id: str  # without angle brackets; derived from the raw bytes' sha256 when absent
    has_message_id: bool
    subject: str
    sender: MailAddress  # From (first address)
    reply_to: MailAddress | None
    to: tuple[MailAddress, ...]
    cc: tuple[MailAddress, ...]
    date: datetime | None  # aware; None when missing or unreadable
    in_reply_to: tuple[str, ...]  # Message-IDs without angle brackets
    references: tuple[str, ...]
    text: str  # the full text body (HTML converted to readable text when there is no text part)
    html: str | None  # the HTML body as received, if any
    display_text: str  # `text` with quoted history trimmed for display (signatures kept: they carry contact details)
    attachments: tuple[ParsedAttachment, ...] = ()
    dropped_attachments: tuple[DroppedAttachment, ...] = ()
    # Loop-guard findings, e.g. {"auto-submitted", "precedence", "bounce", "list", "our-loop"}.
    automatic: frozenset[str] = frozenset()
    return_path: str | None = None  # "" for the null sender <>, None when absent
    defects: tuple[str, ...] = ()  # names of email-package defects found
    # Headers worth keeping verbatim for the thread view and later rules (name, decoded value).
    headers: tuple[tuple[str, str], ...] = field(default=())

    @property
    def is_automatic(self) -> bool:
        return bool(self.automatic)

    @property
    def is_bounce(self) -> bool:
        return "bounce" in self.automatic
