"""A ticket's thread as `Text`: messages and history events in time order, each kind labelled in words.

Customer mail, agent replies, internal notes and system events differ by a
word label and a rule character as well as by colour (256-colour terminals,
colour-blind agents). Runs of quoted lines (`> …`) longer than a few lines are
folded to one line unless unfolded.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.text import Text

from core.views import EventView, MessageView, TicketDetail
from storage.types import Priority
from tui.console.cells import ago
from tui.inert import inert, inert_block

QUOTE_FOLD_AT = 4
# Events that only repeat a message already in the thread.
_MESSAGE_EVENTS = {"ticket.created", "ticket.replied", "ticket.noted", "ticket.customer_replied", "ticket.reply"}
KIND_LABEL = {
    "customer": ("CUSTOMER", "bold cyan", "━"),
    "reply": ("AGENT REPLY", "bold green", "━"),
    "note": ("INTERNAL NOTE", "bold yellow", "┄"),
    "system": ("SYSTEM", "dim", "·"),
}


@dataclass(frozen=True)
class Entry:
    at: datetime
    kind: str  # customer / reply / note / system / event
    text: Text


def fold_quotes(body: str) -> str:
    """Replace each run of more than QUOTE_FOLD_AT quoted lines by one line saying how many were folded."""
    lines = body.split("\n")
    kept: list[str] = []
    run: list[str] = []

    def flush() -> None:
        if len(run) > QUOTE_FOLD_AT:
            kept.append(f"> [{len(run)} quoted lines folded; z unfolds]")
        else:
            kept.extend(run)
        run.clear()

    for line in lines:
        if line.lstrip().startswith(">"):
            run.append(line)
        else:
            flush()
            kept.append(line)
    flush()
    return "\n".join(kept)


def message_entry(message: MessageView, now: datetime, *, folded: bool) -> Entry:
    label, style, rule = KIND_LABEL.get(message.kind, (message.kind.upper(), "bold", "━"))
    text = Text()
    text.append(f"{rule * 2} {label} ", style=style)
    text.append_text(inert(message.author, style))
    text.append(f" · {ago(message.created_at, now)} ago", style="dim")
    if message.delivery_status and message.delivery_status not in ("sent", "none"):
        text.append(" · delivery: ")
        text.append_text(inert(message.delivery_status))
    text.append("\n")
    body = fold_quotes(message.body) if folded else message.body
    text.append_text(inert_block(body.rstrip("\n"), "italic" if message.kind == "note" else ""))
    for attachment in message.attachments:
        text.append("\n  attachment: ", style="dim")
        text.append_text(inert(attachment.filename))
        text.append(f" ({attachment.size:,} bytes)", style="dim")
    return Entry(message.created_at, message.kind, text)


def describe_event(event: EventView) -> Text:
    data: dict[str, Any] = event.data
    text = Text()
    kind = event.kind.removeprefix("ticket.")
    if not data.get("changes"):
        text.append(f"{kind}", style="bold")
    if event.kind == "ticket.transferred":
        text.append(" from ")
        text.append_text(inert(str(data.get("from", "?"))))
        text.append(" to ")
        text.append_text(inert(str(data.get("to", "?"))))
    elif event.kind in ("ticket.assigned", "ticket.unassigned"):
        text.append(" to ")
        text.append_text(inert(str(data.get("assignee") or "nobody")))
    else:
        for index, (field, change) in enumerate((data.get("changes") or {}).items()):
            text.append(f"{' ' if index else ''}{field}: ", style="bold")
            if isinstance(change, dict) and "before" in change:
                before, after = change.get("before"), change.get("after")
            elif isinstance(change, (list, tuple)) and len(change) == 2:
                before, after = change
            else:
                text.append_text(inert(str(change)))
                continue
            text.append_text(inert(_value(field, before)))
            text.append(" → ")
            text.append_text(inert(_value(field, after)))
        for field in ("added", "removed", "add", "remove"):
            if data.get(field):
                text.append(f" {field}: ")
                text.append_text(inert(", ".join(map(str, data[field]))))
    if event.actor:
        text.append(" by ")
        text.append_text(inert(event.actor))
    return text


def _value(field: str, value: object) -> str:
    if field == "priority" and isinstance(value, int) and value in tuple(Priority):
        return Priority(value).label
    return "-" if value is None else str(value)


def event_entry(event: EventView, now: datetime) -> Entry:
    text = Text()
    text.append("·· SYSTEM ", style="dim")
    text.append_text(describe_event(event))
    text.append(f" · {ago(event.at, now)} ago", style="dim")
    return Entry(event.at, "event", text)


def thread_entries(detail: TicketDetail, now: datetime, *, folded: bool = True) -> list[Entry]:
    """Messages and history in time order, oldest first (the newest is at the bottom)."""
    entries = [message_entry(message, now, folded=folded) for message in detail.messages]
    entries += [event_entry(event, now) for event in detail.events if event.kind not in _MESSAGE_EVENTS]
    return sorted(entries, key=lambda entry: entry.at)


def contact_panel(detail: TicketDetail, now: datetime) -> Text:
    """The contact, their attributes and notes, and their other tickets (from the agent's departments only)."""
    contact = detail.contact
    text = Text()
    text.append("CONTACT\n", style="bold")
    text.append_text(inert(contact.name or "(no name)"))
    text.append("\n")
    text.append_text(inert(contact.email))
    text.append("\n")
    for key, value in sorted(contact.attributes.items()):
        text.append_text(inert(f"{key}: {value}", "dim"))
        text.append("\n")
    if contact.notes:
        text.append("\nNOTES\n", style="bold")
        text.append_text(inert_block(contact.notes))
        text.append("\n")
    text.append(f"\nOTHER TICKETS ({len(detail.other_tickets)})\n", style="bold")
    for row in detail.other_tickets:
        text.append(f"{row.ref} {row.status} {ago(row.created_at, now)}\n", style="dim")
        text.append("  ")
        text.append_text(inert(row.subject, limit=60))
        text.append("\n")
    return text
