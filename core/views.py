"""Values that cross from core to the screens and the CLI: plain frozen dataclasses, no ORM objects."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

QueueSort = Literal["updated", "newest", "oldest", "priority", "due"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    return value


class _Json:
    def to_json(self) -> dict[str, Any]:
        return _jsonable(asdict(self))  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class Intake(_Json):
    """A new customer request from any channel, before it is a ticket."""

    department: str
    contact_email: str
    subject: str
    body: str
    contact_name: str = ""
    channel: str = "email"
    body_html: str | None = None
    message_id: str | None = None
    priority: str = "normal"


@dataclass(frozen=True)
class QueueFilter:
    """What a queue page shows. Every field narrows; nothing widens past the actor's departments."""

    department: str | None = None
    statuses: tuple[str, ...] = ()
    assignee: str | None = None  # a handle
    unassigned: bool = False
    tag: str | None = None
    # With a term of 3+ characters, results come newest matching entry first and `sort` is ignored.
    text: str | None = None
    sort: QueueSort = "updated"
    limit: int = 50
    cursor: str | None = None
    # Read towards the start: the page that ends just before `cursor`, or without one the queue's last
    # page (rows still in queue order). Not with a text search of 3+ characters (read newest match first).
    backward: bool = False


@dataclass(frozen=True)
class TicketRow(_Json):
    id: int
    ref: str
    subject: str
    department: str
    status: str
    priority: str
    channel: str
    assignee: str | None
    contact: str
    contact_name: str
    tags: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    first_response_due: datetime | None
    resolution_due: datetime | None
    message_count: int
    version: int


@dataclass(frozen=True)
class QueuePage(_Json):
    rows: tuple[TicketRow, ...]
    next_cursor: str | None
    # Backward pages only: the cursor of the page before this one, None when this page starts the queue.
    previous_cursor: str | None = None


@dataclass(frozen=True)
class AttachmentView(_Json):
    id: int
    filename: str
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True)
class MessageView(_Json):
    id: int
    kind: str
    author: str  # an agent handle, a contact's address, or "system"
    body: str
    body_html: str | None
    created_at: datetime
    message_id: str | None
    delivery_status: str | None
    attachments: tuple[AttachmentView, ...] = ()


@dataclass(frozen=True)
class EventView(_Json):
    id: int
    kind: str
    actor: str | None
    at: datetime
    ticket_ref: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class ContactView(_Json):
    id: int
    email: str
    name: str
    attributes: dict[str, Any]
    notes: str


@dataclass(frozen=True)
class TicketDetail(_Json):
    ticket: TicketRow
    contact: ContactView
    messages: tuple[MessageView, ...]
    events: tuple[EventView, ...]
    # The contact's other tickets, from the actor's departments only.
    other_tickets: tuple[TicketRow, ...] = ()

    def to_json(self) -> dict[str, Any]:
        data = self.ticket.to_json()
        data["contact_details"] = self.contact.to_json()
        data["messages"] = [message.to_json() for message in self.messages]
        data["events"] = [event.to_json() for event in self.events]
        data["other_tickets"] = [row.to_json() for row in self.other_tickets]
        return data


@dataclass(frozen=True)
class DepartmentCounts(_Json):
    department: str
    slug: str
    new: int = 0
    open: int = 0
    pending: int = 0
    resolved: int = 0
    closed: int = 0
    spam: int = 0
    unassigned: int = 0  # of new + open + pending
    mine: int = 0  # new + open + pending assigned to the actor


@dataclass(frozen=True)
class DepartmentView(_Json):
    id: int
    name: str
    slug: str
    email: str
    sender_name: str
    signature: str
    active: bool
    members: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class AgentView(_Json):
    id: int
    handle: str
    name: str
    email: str
    role: str
    availability: str
    active: bool
    departments: tuple[str, ...] = ()
