"""How desk values look in the console: ages, due times, compact counts and queue table cells, all as `Text`.

Every untrusted value goes through `tui.inert`; the rest are our own words and
numbers. Cues never rely on colour alone (an overdue time also carries `!`),
because agents work in 256-colour terminals over SSH and some are colour-blind.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.text import Text

from core.views import DepartmentCounts, TicketRow
from tui.inert import inert
from tui.plain import display_width


def queue_columns(subject_width: int) -> list[tuple[str, str, int]]:
    """(key, label, width) of the queue table, in the order `queue_cells` fills them."""
    return [
        ("mark", " ", 1),
        ("ref", "Ref", 10),
        ("subject", "Subject", subject_width),
        ("status", "Status", 8),
        ("priority", "Prio", 6),
        ("age", "Age", 4),
        ("contact", "Contact", 22),
        ("assignee", "Assignee", 12),
        ("due", "Due", 11),
        ("tags", "Tags", 20),
    ]


PRIORITY_STYLE = {"urgent": "bold red", "high": "yellow", "normal": "", "low": "dim"}
STATUS_STYLE = {"new": "bold cyan", "open": "green", "pending": "yellow", "resolved": "dim", "closed": "dim",
                "spam": "dim red"}


def span(delta: timedelta) -> str:
    """A duration in one short unit: 45s, 12m, 3h, 5d, 7w, 2y."""
    seconds = int(abs(delta.total_seconds()))
    for unit, size in (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def ago(moment: datetime, now: datetime) -> str:
    """How long ago, never negative (another host's clock may run a little ahead)."""
    return span(max(now - moment, timedelta(0)))


def age(moment: datetime, now: datetime) -> Text:
    return Text(ago(moment, now))


def due(moment: datetime | None, now: datetime) -> Text:
    if moment is None:
        return Text("-", style="dim")
    if moment < now:
        return Text(f"!{span(now - moment)} late", style="bold red")
    return Text(f"in {span(moment - now)}")


def compact(number: int) -> str:
    """A count in at most four columns: 987, 1.2k, 45k, 1.2M."""
    if number < 1000:
        return str(number)
    if number < 10_000:
        return f"{number / 1000:.1f}k"
    if number < 1_000_000:
        return f"{number // 1000}k"
    return f"{number / 1_000_000:.1f}M"


def queue_cells(row: TicketRow, now: datetime, marked: bool, subject_limit: int = 48) -> list[Text]:
    """The cells of one queue row, in `queue_columns()` order."""
    return [
        Text("*" if marked else " ", style="bold reverse" if marked else ""),
        Text(row.ref),
        inert(row.subject, limit=subject_limit),
        Text(row.status, style=STATUS_STYLE.get(row.status, "")),
        Text(row.priority, style=PRIORITY_STYLE.get(row.priority, "")),
        age(row.created_at, now),
        inert(row.contact_name or row.contact, limit=24),
        inert(row.assignee or "-", limit=12),
        due(row.resolution_due if row.status in ("new", "open", "pending") else None, now),
        inert(",".join(row.tags), limit=24),
    ]


def department_line(index: int, counts: DepartmentCounts | None, name: str, width: int = 9) -> Text:
    """`1 Billing    12   3   4 1.2k   2`: number key, name, new/open/pending/resolved/mine."""
    key = str(index) if index < 10 else " "
    line = Text(f"{key} ")
    shown = inert(name, limit=width)
    line.append_text(shown)
    line.append(" " * max(0, width - display_width(shown.plain)))
    values = (counts.new, counts.open, counts.pending, counts.resolved, counts.mine) if counts else (0,) * 5
    for value in values:
        line.append(f"{compact(value):>5}")
    return line


def department_header(width: int = 9) -> Text:
    return Text("  " + "Dept".ljust(width) + "  New Open Pend  Res Mine", style="bold")
