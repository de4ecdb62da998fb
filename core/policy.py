"""Who may see and do what: the only place access is decided, always as SQL inside the query.

An agent sees and acts on tickets of the departments they are a member of,
whatever their role; supervisors additionally see their departments'
dashboards and reports; admins administer departments and agents. A ticket
the actor may not see is answered exactly like a ticket that does not exist,
so every ticket lookup goes through `visible_ticket()`.

The local operator (the CLI run without `--as`, by whoever holds the database
file or URL) may administer, and may create tickets from an intake like a mail
sync would, but sees no queue.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, Select, false, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import Forbidden, NotFound, UnknownAgent
from storage.models import Agent, Department, Membership, Ticket
from storage.types import Role


@dataclass(frozen=True)
class Actor:
    """The identity a Desk call acts as. `id` is None for the operator and the system."""

    id: int | None
    handle: str
    role: Role

    @property
    def is_agent(self) -> bool:
        return self.id is not None

    @classmethod
    def operator(cls) -> Actor:
        return cls(id=None, handle="operator", role=Role.ADMIN)

    @classmethod
    def system(cls) -> Actor:
        """Automatic work: mail sync, rules, the demo builder."""
        return cls(id=None, handle="system", role=Role.ADMIN)


async def resolve_actor(session: AsyncSession, handle: str) -> Actor:
    agent = (
        await session.execute(select(Agent).where(Agent.handle == handle.strip().lower()))
    ).scalar_one_or_none()
    if agent is None or not agent.active:
        raise UnknownAgent(
            f"There is no active agent with handle {handle!r}; list them with `termdesk agent list`."
        )
    return Actor(id=agent.id, handle=agent.handle, role=Role(agent.role))


async def current_actor(session: AsyncSession, actor: Actor) -> Actor:
    """The actor as the database says now, so a deactivated or demoted agent loses rights at once.

    A TUI session keeps its `Actor` for hours; trusting it would let a deactivated
    agent go on working until they log out.
    """
    if not actor.is_agent:
        return actor
    row = (
        await session.execute(select(Agent.handle, Agent.role, Agent.active).where(Agent.id == actor.id))
    ).first()
    if row is None or not row.active:
        raise UnknownAgent(
            f"There is no active agent with handle {actor.handle!r}; list them with `termdesk agent list`."
        )
    return Actor(id=actor.id, handle=row.handle, role=Role(row.role))


def visible_department_ids(actor: Actor) -> Select[int]:
    """The departments whose tickets the actor may see, as a subquery."""
    return select(Membership.department_id).where(Membership.agent_id == actor.id)


def ticket_visible(actor: Actor) -> ColumnElement[bool]:
    """WHERE clause: the ticket belongs to one of the actor's departments.

    Written `department_id + 0` so that no index on `department_id` can serve
    this term: without planner statistics SQLite would otherwise drive an
    all-departments queue page by `department_id IN (…)` and sort the whole
    desk (4.7 s at a million tickets) instead of walking the index of the
    page's order. A chosen department (`Ticket.department_id == …`) still
    uses those indexes. The clause means exactly what it says either way.
    """
    if not actor.is_agent:
        return false()
    return (Ticket.department_id + 0).in_(visible_department_ids(actor))


def not_found(ref: str) -> NotFound:
    """The one answer for a ticket that is missing or belongs to another department."""
    return NotFound(f"No ticket {ref} exists; check the reference with `termdesk ticket list`.")


async def visible_ticket(session: AsyncSession, actor: Actor, ticket_id: int | None, ref: str) -> Ticket:
    """Load a ticket the actor may act on, or raise the same NotFound as for a missing one."""
    if ticket_id is None:
        raise not_found(ref)
    ticket = (
        await session.execute(select(Ticket).where(Ticket.id == ticket_id, ticket_visible(actor)))
    ).scalar_one_or_none()
    if ticket is None:
        raise not_found(ref)
    return ticket


def require_admin(actor: Actor, what: str) -> None:
    if actor.role is not Role.ADMIN:
        raise Forbidden(f"Only admins may {what}; ask an admin, or run the command without --as as the operator.")


def require_supervisor(actor: Actor, what: str) -> None:
    """Supervisors and admins see their departments' dashboards; agents work their queues."""
    if actor.role is Role.AGENT:
        raise Forbidden(
            f"{actor.handle} is an agent; only supervisors and admins may {what}, so ask an admin to make you "
            "a supervisor."
        )


async def require_member(session: AsyncSession, actor: Actor, department: Department, what: str) -> None:
    """Members of the department (and admins, and the operator) may `what`."""
    if not actor.is_agent or actor.role is Role.ADMIN:
        return
    if not await is_member(session, actor.id, department.id):  # type: ignore[arg-type]
        raise Forbidden(f"Only members of {department.name} may {what}; ask an admin to add you to it.")


async def require_department_supervisor(
    session: AsyncSession, actor: Actor, department: Department, what: str
) -> None:
    """Admins (and the operator), and supervisors who are members of the department, may `what`."""
    if not actor.is_agent or actor.role is Role.ADMIN:
        return
    if actor.role is Role.SUPERVISOR and await is_member(session, actor.id, department.id):  # type: ignore[arg-type]
        return
    raise Forbidden(f"Only admins and supervisors of {department.name} may {what}; ask one of them.")


async def is_member(session: AsyncSession, agent_id: int, department_id: int) -> bool:
    found = await session.execute(
        select(Membership.agent_id).where(
            Membership.agent_id == agent_id, Membership.department_id == department_id
        )
    )
    return found.first() is not None
