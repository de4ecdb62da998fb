"""Canned responses: each department's ready-made reply texts, who may manage and use them, and filling them in.

Admins (any department) and supervisors (their own departments) add, edit
and delete them; every member of a department lists and inserts them. A
canned response is a Jinja2 template written by people, so it is rendered in
the same sandbox as the mail templates (core.mail.templates), with plain
strings as the only variables: VARIABLES below.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from jinja2 import TemplateError
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadArgument, Conflict, NotFound
from core.mail.templates import check_syntax, render_text
from core.policy import Actor, require_department_supervisor, require_member
from core.tickets import department_by_name
from storage.console import CannedResponse
from storage.models import Agent, Contact, Department, Ticket
from storage.types import utcnow

VARIABLES = ("contact_name", "contact_email", "ticket_ref", "subject", "agent_name", "agent_handle", "department")
MAX_NAME = 120
MAX_BODY = 20_000


@dataclass(frozen=True)
class CannedView:
    id: int
    department: str
    name: str
    body: str
    updated_at: datetime

    def as_dict(self) -> dict[str, object]:
        return {
            "id": self.id,
            "department": self.department,
            "name": self.name,
            "body": self.body,
            "updated_at": self.updated_at.isoformat(),
        }


def _name(text: str) -> str:
    name = " ".join(text.split())
    if not name:
        raise BadArgument('A canned response needs a name; give one, e.g. "Refund issued".')
    if len(name) > MAX_NAME:
        raise BadArgument(f"The name is {len(name)} characters long; keep it to {MAX_NAME}.")
    return name


def _body(text: str) -> str:
    if not text.strip():
        raise BadArgument("A canned response needs text; pass --body TEXT or pipe it on standard input.")
    if len(text) > MAX_BODY:
        raise BadArgument(f"The text is {len(text):,} characters long; keep it to {MAX_BODY:,}.")
    problem = check_syntax(text)
    if problem is not None:
        raise BadArgument(f"The text is not a valid template ({problem}); fix the {{{{ … }}}} or {{% … %}} part.")
    return text


def _view(row: CannedResponse, department: Department) -> CannedView:
    return CannedView(id=row.id, department=department.name, name=row.name, body=row.body, updated_at=row.updated_at)


async def _find(session: AsyncSession, department: Department, name: str) -> CannedResponse:
    wanted = " ".join(name.split())
    row = (
        await session.execute(
            select(CannedResponse).where(
                CannedResponse.department_id == department.id, func.lower(CannedResponse.name) == wanted.lower()
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(
            f"{department.name} has no canned response {wanted!r}; list them with "
            f"`termdesk canned list --department {department.name!r}`."
        )
    return row


async def _taken(session: AsyncSession, department: Department, name: str, but: int | None = None) -> bool:
    query = select(CannedResponse.id).where(
        CannedResponse.department_id == department.id, func.lower(CannedResponse.name) == name.lower()
    )
    if but is not None:
        query = query.where(CannedResponse.id != but)
    return (await session.execute(query)).first() is not None


async def list_for(session: AsyncSession, actor: Actor, department_name: str) -> list[CannedView]:
    department = await department_by_name(session, department_name)
    await require_member(session, actor, department, "use its canned responses")
    return await _of_department(session, department)


async def _of_department(session: AsyncSession, department: Department) -> list[CannedView]:
    rows = await session.execute(
        select(CannedResponse)
        .where(CannedResponse.department_id == department.id)
        .order_by(func.lower(CannedResponse.name), CannedResponse.id)
    )
    return [_view(row, department) for row in rows.scalars()]


async def add(session: AsyncSession, actor: Actor, department_name: str, name: str, body: str) -> CannedView:
    department = await department_by_name(session, department_name)
    await require_department_supervisor(session, actor, department, "change its canned responses")
    clean = _name(name)
    if await _taken(session, department, clean):
        raise Conflict(f"{department.name} already has a canned response {clean!r}; edit it or choose another name.")
    row = CannedResponse(department_id=department.id, name=clean, body=_body(body), updated_at=utcnow())
    session.add(row)
    await session.flush()
    return _view(row, department)


async def edit(
    session: AsyncSession, actor: Actor, department_name: str, name: str, *, new_name: str | None, body: str | None
) -> CannedView:
    department = await department_by_name(session, department_name)
    await require_department_supervisor(session, actor, department, "change its canned responses")
    row = await _find(session, department, name)
    if new_name is not None:
        clean = _name(new_name)
        if await _taken(session, department, clean, but=row.id):
            raise Conflict(f"{department.name} already has a canned response {clean!r}; choose another name.")
        row.name = clean
    if body is not None:
        row.body = _body(body)
    row.updated_at = utcnow()
    await session.flush()
    return _view(row, department)


async def delete(session: AsyncSession, actor: Actor, department_name: str, name: str) -> str:
    department = await department_by_name(session, department_name)
    await require_department_supervisor(session, actor, department, "change its canned responses")
    row = await _find(session, department, name)
    await session.delete(row)
    return row.name


async def for_ticket(session: AsyncSession, ticket: Ticket) -> list[CannedView]:
    """The canned responses of the ticket's department (the caller has checked the ticket is visible)."""
    department = await session.get_one(Department, ticket.department_id)
    return await _of_department(session, department)


async def render_for_ticket(session: AsyncSession, actor: Actor, ticket: Ticket, ref: str, canned_id: int) -> str:
    """The canned response filled in for this ticket and agent; only one of the ticket's own department."""
    row = (
        await session.execute(
            select(CannedResponse).where(
                CannedResponse.id == canned_id, CannedResponse.department_id == ticket.department_id
            )
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"That canned response is gone or not of {ref}'s department; pick another one.")
    department = await session.get_one(Department, ticket.department_id)
    contact = await session.get_one(Contact, ticket.contact_id)
    agent = await session.get(Agent, actor.id) if actor.id is not None else None
    variables = {
        "contact_name": contact.name or contact.email,
        "contact_email": contact.email,
        "ticket_ref": ref,
        "subject": ticket.subject,
        "agent_name": agent.name if agent is not None else actor.handle,
        "agent_handle": actor.handle,
        "department": department.name,
    }
    try:
        return render_text(row.body, variables)
    except (TemplateError, ValueError, TypeError, RecursionError) as error:
        raise BadArgument(
            f"The canned response {row.name!r} cannot be filled in ({error}); "
            f"its variables are {', '.join(VARIABLES)}; fix it with `termdesk canned edit`."
        ) from None
