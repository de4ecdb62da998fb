"""What a rule does to a ticket: each action carried out through core.tickets / core.assign, or described.

Every action returns a short sentence ("moved it to Returns") that goes into
the `rule.fired` event; a dry run gets the same sentences from `describe`
without touching anything.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import assign, tickets
from core.policy import Actor
from storage.models import Agent, Department, Ticket
from storage.types import MessageKind, Status


def describe(action: dict[str, Any]) -> str:
    do = action["do"]
    if do == "transfer":
        return f"move it to {action['department']}"
    if do == "assign":
        how = action["how"]
        if how == "agent":
            return f"assign it to {action['agent']}"
        if how == "unassign":
            return "unassign it"
        return f"assign it to an available agent ({how})"
    if do == "add_tag":
        return "tag it " + ", ".join(action["tags"])
    if do == "remove_tag":
        return "remove the tags " + ", ".join(action["tags"])
    if do == "set_priority":
        return f"set the priority to {action['priority']}"
    if do == "set_status":
        return f"set the status to {action['status']}"
    if do == "send_template":
        return f"mail the {action['template']} template to the contact"
    if do == "notify":
        return "notify the department's agents"
    if do == "mark_spam":
        return "mark it as spam"
    return "add an internal note"


async def run(
    session: AsyncSession, actor: Actor, ticket: Ticket, action: dict[str, Any], outbox: tickets.Outbox
) -> str:
    """Carry out one action; the sentence says what happened (which may be "nothing to do")."""
    do = action["do"]
    if do == "transfer":
        target = await tickets.department_by_name(session, action["department"])
        if target.id == ticket.department_id:
            return f"left it in {target.name} (already there)"
        await tickets.transfer(session, actor, ticket, target, None, expected_version=None)
        return f"moved it to {target.name}"
    if do == "assign":
        how = action["how"]
        if how == "unassign":
            await tickets.apply_change(
                session, actor, ticket, "ticket.unassigned", expected_version=None,
                changes={"assignee_id": None}, data={"assignee": None} if ticket.assignee_id is not None else None,
            )
            return "unassigned it"
        if how == "agent":
            department = await session.get(Department, ticket.department_id)
            assert department is not None
            agent = await tickets.agent_in_department(session, action["agent"], department)
            if ticket.assignee_id != agent.id:
                await tickets.apply_change(
                    session, actor, ticket, "ticket.assigned", expected_version=None,
                    changes={"assignee_id": agent.id}, data={"assignee": agent.handle},
                )
            return f"assigned it to {agent.handle}"
        chosen = await assign.auto_assign(session, actor, ticket, how)
        if chosen is None:
            return f"left it unassigned: nobody in the department is available ({how})"
        return f"assigned it to {chosen.handle} ({how})"
    if do in ("add_tag", "remove_tag"):
        adding = action["tags"] if do == "add_tag" else []
        removing = action["tags"] if do == "remove_tag" else []
        await tickets.change_tags(session, actor, ticket, adding, removing, expected_version=None)
        return ("tagged it " if adding else "removed the tags ") + ", ".join(action["tags"])
    if do == "set_priority":
        level = tickets.parse_priority(action["priority"])
        await tickets.apply_change(
            session, actor, ticket, "ticket.priority", expected_version=None, changes={"priority": int(level)}
        )
        return f"set the priority to {level.label}"
    if do in ("set_status", "mark_spam"):
        status = Status.SPAM if do == "mark_spam" else tickets.parse_status(action["status"])
        newly_resolved = status is Status.RESOLVED and ticket.status != Status.RESOLVED
        await tickets.apply_change(
            session, actor, ticket, "ticket.status", expected_version=None,
            changes=tickets.status_changes(ticket, status),
        )
        if newly_resolved:
            await outbox.ticket_resolved(session, ticket)
        return "marked it as spam" if do == "mark_spam" else f"set the status to {status.value}"
    if do == "send_template":
        await outbox.send_template(session, ticket, action["template"])
        return f"mailed the {action['template']} template to the contact"
    if do == "notify":
        await outbox.notify(session, ticket, action.get("event") or "Rule")
        return "notified the department's agents"
    # note
    await tickets.add_entry(
        session, actor, ticket, MessageKind.NOTE, action["body"], expected_version=None, status=None, outbox=outbox
    )
    return "added an internal note"


async def agent_handle(session: AsyncSession, agent_id: int | None) -> str | None:
    if agent_id is None:
        return None
    agent = await session.get(Agent, agent_id)
    return agent.handle if agent else None
