"""Automatic assignment: round-robin or least-loaded over a department's available members.

A department's mode is in its settings ("assignment": manual | round-robin |
least-loaded; manual by default). The candidates are the department's active
members whose availability is "available" (not paused by `termdesk agent
pause`) and whose load — tickets assigned to them that are new, open or
pending — is below their optional `max_load` (agent settings). With no
candidate the ticket stays unassigned; `assign_waiting` hands such tickets
out later (the scheduler runs it), oldest first.

Round-robin remembers the agent it chose last per department
(`assignment_cursors`, read FOR UPDATE so concurrent assignments queue) and
picks the next candidate by agent id after it, wrapping around: a paused or
full agent is skipped without losing the others' turns.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.errors import BadArgument, Forbidden, NotFound
from core.policy import Actor
from core.tickets import ACTIVE_STATUSES, apply_change
from storage.models import Agent, Department, Membership, Ticket
from storage.rules import AssignmentCursor
from storage.types import Availability, Role

MODES = ("manual", "round-robin", "least-loaded")


def mode_of(department: Department) -> str:
    return str((department.settings or {}).get("assignment", "manual"))


async def candidates(session: AsyncSession, department_id: int) -> list[tuple[Agent, int]]:
    """Available members below their max load, with their load, by agent id."""
    agents = (
        await session.execute(
            select(Agent)
            .join(Membership, Membership.agent_id == Agent.id)
            .where(
                Membership.department_id == department_id,
                Agent.active.is_(True),
                Agent.availability == Availability.AVAILABLE.value,
            )
            .order_by(Agent.id)
        )
    ).scalars().all()
    if not agents:
        return []
    loads = dict(
        (
            await session.execute(
                select(Ticket.assignee_id, func.count())
                .where(Ticket.assignee_id.in_([agent.id for agent in agents]), Ticket.status.in_(ACTIVE_STATUSES))
                .group_by(Ticket.assignee_id)
            )
        ).all()
    )
    out = []
    for agent in agents:
        load = int(loads.get(agent.id, 0))
        limit = (agent.settings or {}).get("max_load")
        if limit is not None and load >= int(limit):
            continue
        out.append((agent, load))
    return out


async def choose(session: AsyncSession, department: Department, mode: str) -> Agent | None:
    """The agent `mode` picks in `department` now, or None when nobody is available."""
    if mode not in ("round-robin", "least-loaded"):
        raise BadArgument(f"{mode!r} is not an automatic assignment mode; use round-robin or least-loaded.")
    found = await candidates(session, department.id)
    if not found:
        return None
    if mode == "least-loaded":
        return min(found, key=lambda pair: (pair[1], pair[0].id))[0]
    cursor = (
        await session.execute(
            select(AssignmentCursor).where(AssignmentCursor.department_id == department.id).with_for_update()
        )
    ).scalar_one_or_none()
    if cursor is None:
        cursor = AssignmentCursor(department_id=department.id, last_agent_id=None)
        session.add(cursor)
    last = cursor.last_agent_id or 0
    chosen = next((agent for agent, _ in found if agent.id > last), found[0][0])
    cursor.last_agent_id = chosen.id
    return chosen


async def auto_assign(
    session: AsyncSession, actor: Actor, ticket: Ticket, mode: str | None = None, *, why: str = ""
) -> Agent | None:
    """Assign the ticket by its department's mode (or `mode`); None when manual or nobody is available."""
    department = await session.get(Department, ticket.department_id)
    assert department is not None
    mode = mode or mode_of(department)
    if mode == "manual":
        return None
    agent = await choose(session, department, mode)
    if agent is None or agent.id == ticket.assignee_id:
        return agent
    data: dict[str, Any] = {"assignee": agent.handle, "how": mode}
    if why:
        data["why"] = why
    await apply_change(
        session, actor, ticket, "ticket.assigned", expected_version=None, changes={"assignee_id": agent.id}, data=data
    )
    return agent


async def assign_waiting(session: AsyncSession, actor: Actor, limit: int = 500) -> int:
    """Hand unassigned active tickets of automatic departments to available agents, oldest first."""
    departments = (await session.execute(select(Department).where(Department.active.is_(True)))).scalars().all()
    done = 0
    for department in departments:
        if mode_of(department) == "manual":
            continue
        waiting = (
            await session.execute(
                select(Ticket)
                .where(
                    Ticket.department_id == department.id,
                    Ticket.assignee_id.is_(None),
                    Ticket.status.in_(ACTIVE_STATUSES),
                )
                .order_by(Ticket.id)
                .limit(limit)
            )
        ).scalars().all()
        for ticket in waiting:
            if await auto_assign(session, actor, ticket, why="waiting") is None:
                break  # nobody free in this department: the rest wait too
            done += 1
    return done


async def set_availability(session: AsyncSession, actor: Actor, handle: str, availability: Availability) -> Agent:
    """Pause or resume an agent: the agents themselves, or an admin."""
    agent = (
        await session.execute(select(Agent).where(Agent.handle == handle.strip().lower(), Agent.active.is_(True)))
    ).scalar_one_or_none()
    if agent is None:
        raise NotFound(f"There is no active agent {handle!r}; list them with `termdesk agent list`.")
    if actor.role is not Role.ADMIN and actor.id != agent.id:
        raise Forbidden(f"Only {agent.handle} or an admin may pause or resume {agent.handle}.")
    if agent.availability != availability.value:
        before = agent.availability
        agent.availability = availability.value
        await events.record(
            session, actor, "agent.availability",
            data={"agent": agent.handle, "changes": {"availability": {"before": before, "after": availability.value}}},
        )
    return agent


async def set_max_load(session: AsyncSession, actor: Actor, handle: str, limit: int | None) -> Agent:
    from core.policy import require_admin

    require_admin(actor, "set an agent's maximum load")
    agent = (
        await session.execute(select(Agent).where(Agent.handle == handle.strip().lower()))
    ).scalar_one_or_none()
    if agent is None:
        raise NotFound(f"There is no agent {handle!r}; list them with `termdesk agent list`.")
    if limit is not None and limit < 1:
        raise BadArgument(f"A maximum load of {limit} would never assign anything; give 1 or more, or none.")
    settings = dict(agent.settings or {})
    if limit is None:
        settings.pop("max_load", None)
    else:
        settings["max_load"] = limit
    agent.settings = settings
    return agent


__all__ = ["MODES", "assign_waiting", "auto_assign", "candidates", "choose", "mode_of", "set_availability"]
