"""Builders shared by the desk tests: a small desk with three departments, agents in some of them, and tickets.

The cast:
- `bill`   agent in Billing
- `tech`   agent in Technical
- `both`   agent in Billing and Technical
- `nobody` agent in no department
- `sup`    supervisor in Billing
- `boss`   admin in Returns only (admins administer; they see only their departments' tickets)

Tickets (one per department, plus a second Billing one), all from the same
contact so "the contact's other tickets" crosses departments.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import pytest

from core import Desk
from core.policy import Actor
from core.views import Intake, TicketRow
from storage.models import Attachment, Blob

DEPARTMENTS = ("Billing", "Technical", "Returns")

AGENTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "bill": ("agent", ("Billing",)),
    "tech": ("agent", ("Technical",)),
    "both": ("agent", ("Billing", "Technical")),
    "nobody": ("agent", ()),
    "sup": ("supervisor", ("Billing",)),
    "boss": ("admin", ("Returns",)),
}

SHARED_CONTACT = "Shared.Customer@Example.org"


def departments_of(handle: str) -> tuple[str, ...]:
    return AGENTS[handle][1]


@dataclass
class World:
    """What `build_world()` made: ticket rows by a short name."""

    tickets: dict[str, TicketRow] = field(default_factory=dict)

    def ref(self, name: str) -> str:
        return self.tickets[name].ref

    def department(self, name: str) -> str:
        return self.tickets[name].department


async def add_departments(desk: Desk, names: tuple[str, ...] = DEPARTMENTS) -> None:
    operator = Actor.operator()
    for name in names:
        await desk.add_department(operator, name, email=f"{name.lower()}@desk.example")


async def add_agents(desk: Desk, agents: dict[str, tuple[str, tuple[str, ...]]] = AGENTS) -> None:
    operator = Actor.operator()
    for handle, (role, departments) in agents.items():
        await desk.add_agent(
            operator,
            handle,
            name=handle.title(),
            email=f"{handle}@desk.example",
            role=role,
            departments=list(departments),
        )


async def new_ticket(
    desk: Desk,
    department: str,
    subject: str,
    body: str = "Please help.",
    *,
    contact: str = "customer@example.org",
    name: str = "",
    priority: str = "normal",
) -> TicketRow:
    return await desk.create_ticket(
        Actor.system(),
        Intake(
            department=department,
            contact_email=contact,
            contact_name=name,
            subject=subject,
            body=body,
            priority=priority,
        ),
    )


async def build_world(desk: Desk) -> World:
    """Three departments, the cast above, and four tickets from one contact."""
    await add_departments(desk)
    await add_agents(desk)
    world = World()
    world.tickets["billing"] = await new_ticket(
        desk, "Billing", "Invoice 2041 charged twice", "I was charged twice for invoice 2041.", contact=SHARED_CONTACT
    )
    world.tickets["billing2"] = await new_ticket(
        desk, "Billing", "Refund for order 77", "Please refund order 77.", contact="other@example.org"
    )
    world.tickets["technical"] = await new_ticket(
        desk, "Technical", "Router secret-alpha keeps rebooting", "The router secret-alpha reboots hourly.",
        contact=SHARED_CONTACT,
    )
    world.tickets["returns"] = await new_ticket(
        desk, "Returns", "Return label for parcel", "Send me a label please.", contact=SHARED_CONTACT
    )
    return world


async def add_attachment(desk: Desk, ref: str, content: bytes, filename: str = "invoice.pdf") -> int:
    """Attach `content` to the ticket's first message directly in the database; returns the attachment id."""
    from sqlalchemy import select

    from storage.models import Message

    ticket_id = int(ref.rsplit("-", 1)[1])
    digest = hashlib.sha256(content).hexdigest()
    async with desk.db.writing() as session:
        message_id = (
            await session.execute(
                select(Message.id).where(Message.ticket_id == ticket_id).order_by(Message.id).limit(1)
            )
        ).scalar_one()
        if await session.get(Blob, digest) is None:
            session.add(Blob(sha256=digest, size=len(content), data=content))
            await session.flush()
        attachment = Attachment(
            message_id=message_id,
            filename=filename,
            content_type="application/pdf",
            size=len(content),
            sha256=digest,
            inline=False,
        )
        session.add(attachment)
        await session.flush()
        return attachment.id


async def event_count(desk: Desk, ticket_ref: str | None = None) -> int:
    from sqlalchemy import func, select

    from storage.models import Event

    query = select(func.count()).select_from(Event)
    if ticket_ref is not None:
        query = query.where(Event.ticket_id == int(ticket_ref.rsplit("-", 1)[1]))
    async with desk.db.reading() as session:
        return int((await session.execute(query)).scalar_one())


async def ticket_state(desk: Desk, ref: str) -> dict[str, object]:
    """Everything an action could change on a ticket, read straight from the database (no access check)."""
    from sqlalchemy import func, select

    from storage.models import Event, Message, Tag, Ticket, TicketTag

    ticket_id = int(ref.rsplit("-", 1)[1])
    async with desk.db.reading() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None, f"{ref} should exist in the database"
        messages = (
            await session.execute(select(func.count()).select_from(Message).where(Message.ticket_id == ticket_id))
        ).scalar_one()
        events = (
            await session.execute(select(func.count()).select_from(Event).where(Event.ticket_id == ticket_id))
        ).scalar_one()
        tags = sorted(
            (
                await session.execute(
                    select(Tag.name).join(TicketTag, TicketTag.tag_id == Tag.id).where(TicketTag.ticket_id == ticket_id)
                )
            ).scalars()
        )
        return {
            "version": ticket.version,
            "department_id": ticket.department_id,
            "assignee_id": ticket.assignee_id,
            "status": ticket.status,
            "priority": ticket.priority,
            "message_count": ticket.message_count,
            "messages": messages,
            "events": events,
            "tags": tags,
            "updated_at": ticket.updated_at,
        }


# -- a desk shared by the tests of one module (read-mostly matrices) -------------


BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _module_database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('desk') / 'desk.sqlite3'}"
    from tests.conftest import _create_database, _drop_database

    server: str = request.getfixturevalue("postgres_server")
    url = _create_database(server)
    request.addfinalizer(lambda: _drop_database(server, url))
    return url


@pytest.fixture(scope="module", params=BACKENDS)
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Like conftest's `db_url`, but one empty database per test module and back end."""
    return _module_database(request, tmp_path_factory)


@pytest.fixture(scope="module", params=BACKENDS)
def second_module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Another empty database per module and back end, for a second shared desk."""
    return _module_database(request, tmp_path_factory)


async def ticket_columns(desk: Desk, ref: str) -> dict[str, object]:
    """Every column of the ticket row as stored, read without an access check."""
    from storage.models import Ticket

    async with desk.db.reading() as session:
        ticket = await session.get(Ticket, int(ref.rsplit("-", 1)[1]))
        assert ticket is not None, f"{ref} should exist in the database"
        return {column.key: getattr(ticket, column.key) for column in Ticket.__table__.columns}


async def set_ticket_columns(desk: Desk, ref: str, **values: object) -> None:
    """Force column values (due times, equal timestamps) that no Desk call sets yet."""
    from sqlalchemy import update

    from storage.models import Ticket

    async with desk.db.writing() as session:
        await session.execute(
            update(Ticket)
            .where(Ticket.id == int(ref.rsplit("-", 1)[1]))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
