"""Administration of departments, agents and memberships (admins and the local operator)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core import counters, events
from core.errors import BadArgument, Conflict, NotFound
from core.policy import Actor, is_member, require_admin
from core.refs import slugify
from core.tickets import check_text, department_by_name
from core.views import AgentView, DepartmentView
from storage.models import Agent, Department, Membership
from storage.types import Availability, Role

_HANDLE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
_EMAIL = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+\.[^@\s<>()\[\],;:\"]+$")


def check_email(value: str) -> str:
    address = check_text("email address", value.strip(), 320)
    if not _EMAIL.match(address) or len(address) > 320:
        raise BadArgument(f"{value!r} is not an email address; give one like support@example.com.")
    return address


def check_handle(value: str) -> str:
    handle = value.strip().lower()
    if not _HANDLE.match(handle):
        raise BadArgument(
            f"{value!r} is not a usable handle; use 1 to 64 of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit."
        )
    return handle


def parse_role(value: str) -> Role:
    try:
        return Role(value.strip().lower())
    except ValueError:
        raise BadArgument(f"{value!r} is not a role; use agent, supervisor or admin.") from None


async def _flush_unique(session: AsyncSession, what: str) -> None:
    try:
        await session.flush()
    except IntegrityError:
        raise Conflict(f"{what} already exists; pick another name or change the existing one.") from None


async def add_department(
    session: AsyncSession, actor: Actor, name: str, email: str, sender_name: str, signature: str
) -> Department:
    require_admin(actor, "add departments")
    clean = check_text("department name", " ".join(name.split()), 120)
    if not clean or len(clean) > 120:
        raise BadArgument("A department name needs 1 to 120 characters; give one like 'Billing'.")
    slug = slugify(clean)
    if not slug:
        raise BadArgument(f"{name!r} has no letters or digits to make a department name from; pick another.")
    department = Department(
        name=clean,
        slug=slug,
        email=check_email(email),
        sender_name=check_text("sender name", " ".join(sender_name.split()), 200) or clean,
        signature=check_text("signature", signature, 10_000),
        settings={},
    )
    session.add(department)
    await _flush_unique(session, f"A department named {clean!r}")
    await counters.create_for_department(session, department.id)
    await events.record(
        session, actor, "department.created", department_id=department.id, data={"name": clean, "email": email}
    )
    return department


async def update_department(session: AsyncSession, actor: Actor, name: str, fields: dict[str, Any]) -> Department:
    require_admin(actor, "change departments")
    department = await department_by_name(session, name)
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key == "email":
            value = check_email(value)
        elif key == "sender_name":
            value = check_text("sender name", " ".join(value.split()), 200)
        elif key == "signature":
            value = check_text("signature", value, 10_000)
        if getattr(department, key) != value:
            changes[key] = {"before": getattr(department, key), "after": value}
            setattr(department, key, value)
    if changes:
        await events.record(
            session, actor, "department.changed", department_id=department.id, data={"changes": changes}
        )
    return department


async def add_agent(
    session: AsyncSession,
    actor: Actor,
    handle: str,
    name: str,
    email: str,
    role: str,
    departments: list[str],
) -> Agent:
    require_admin(actor, "add agents")
    agent = Agent(
        handle=check_handle(handle),
        name=check_text("name", " ".join(name.split()), 200) or handle,
        email=check_email(email),
        role=parse_role(role).value,
        availability=Availability.AVAILABLE.value,
        settings={},
    )
    session.add(agent)
    await _flush_unique(session, f"An agent with handle {agent.handle!r}")
    await events.record(session, actor, "agent.created", data={"handle": agent.handle, "role": agent.role})
    for department_name in departments:
        await join(session, actor, agent.handle, department_name)
    return agent


async def _agent(session: AsyncSession, handle: str) -> Agent:
    agent = (await session.execute(select(Agent).where(Agent.handle == handle.strip().lower()))).scalar_one_or_none()
    if agent is None:
        raise NotFound(f"There is no agent {handle!r}; list them with `termdesk agent list`.")
    return agent


async def join(session: AsyncSession, actor: Actor, handle: str, department_name: str) -> bool:
    require_admin(actor, "change memberships")
    agent = await _agent(session, handle)
    department = await department_by_name(session, department_name)
    if await is_member(session, agent.id, department.id):
        return False
    session.add(Membership(agent_id=agent.id, department_id=department.id))
    await session.flush()
    await events.record(
        session, actor, "membership.added", department_id=department.id, data={"agent": agent.handle}
    )
    return True


async def leave(session: AsyncSession, actor: Actor, handle: str, department_name: str) -> bool:
    require_admin(actor, "change memberships")
    agent = await _agent(session, handle)
    department = await department_by_name(session, department_name)
    result = await session.execute(
        delete(Membership).where(Membership.agent_id == agent.id, Membership.department_id == department.id)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    await events.record(
        session, actor, "membership.removed", department_id=department.id, data={"agent": agent.handle}
    )
    return True


async def set_agent(session: AsyncSession, actor: Actor, handle: str, fields: dict[str, Any]) -> Agent:
    require_admin(actor, "change agents")
    agent = await _agent(session, handle)
    changes: dict[str, Any] = {}
    for key, value in fields.items():
        if value is None:
            continue
        if key == "role":
            value = parse_role(value).value
        elif key == "name":
            value = check_text("name", " ".join(value.split()), 200) or agent.handle
        elif key == "email":
            value = check_email(value)
        if getattr(agent, key) != value:
            changes[key] = {"before": getattr(agent, key), "after": value}
            setattr(agent, key, value)
    if changes:
        await events.record(session, actor, "agent.changed", data={"agent": agent.handle, "changes": changes})
    return agent


async def department_views(session: AsyncSession, actor: Actor) -> list[DepartmentView]:
    """Every active department; member lists only for admins (agents need names to transfer)."""
    departments = (
        await session.execute(select(Department).where(Department.active.is_(True)).order_by(Department.name))
    ).scalars().all()
    members: dict[int, list[str]] = defaultdict(list)
    if actor.role is Role.ADMIN:
        rows = await session.execute(
            select(Membership.department_id, Agent.handle)
            .join(Agent, Agent.id == Membership.agent_id)
            .order_by(Agent.handle)
        )
        for department_id, handle in rows:
            members[department_id].append(handle)
    return [
        DepartmentView(
            id=department.id,
            name=department.name,
            slug=department.slug,
            email=department.email,
            sender_name=department.sender_name,
            signature=department.signature,
            active=department.active,
            members=tuple(members[department.id]),
        )
        for department in departments
    ]


async def agent_views(session: AsyncSession, actor: Actor) -> list[AgentView]:
    agents = (await session.execute(select(Agent).order_by(Agent.handle))).scalars().all()
    rows = await session.execute(
        select(Membership.agent_id, Department.name)
        .join(Department, Department.id == Membership.department_id)
        .order_by(Department.name)
    )
    departments: dict[int, list[str]] = defaultdict(list)
    for agent_id, name in rows:
        departments[agent_id].append(name)
    return [
        AgentView(
            id=agent.id,
            handle=agent.handle,
            name=agent.name,
            email=agent.email,
            role=agent.role,
            availability=agent.availability,
            active=agent.active,
            departments=tuple(departments[agent.id]),
        )
        for agent in agents
    ]
