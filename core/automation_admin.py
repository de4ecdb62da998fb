"""Admin settings of a department's automation: SLA policy, assignment mode, auto-close days.

They live in `Department.settings` (validated here on the way in, so the code
reading them can trust them); each change is a `department.changed` event.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core import events
from core.errors import BadArgument
from core.policy import Actor, require_admin
from core.sla import parse_policy
from core.tickets import department_by_name
from storage.models import Department

ASSIGNMENT_MODES = ("manual", "round-robin", "least-loaded")
DEFAULT_AUTO_CLOSE_DAYS = 3


def check_setting(key: str, value: Any) -> Any:
    if key == "sla":
        if value:
            parse_policy(dict(value))
        return dict(value) if value else None
    if key == "assignment":
        mode = str(value).strip().lower()
        if mode not in ASSIGNMENT_MODES:
            raise BadArgument(f"{value!r} is not an assignment mode; use one of {', '.join(ASSIGNMENT_MODES)}.")
        return mode
    if key == "auto_close_days":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0 or value > 3650:
            raise BadArgument(f"{value!r} is not a number of days; give 1 to 3650, or 0 to never auto-close.")
        return value
    raise BadArgument(f"{key!r} is not an automation setting; use sla, assignment or auto_close_days.")


async def set_setting(session: AsyncSession, actor: Actor, name: str, key: str, value: Any) -> Department:
    require_admin(actor, "change departments")
    department = await department_by_name(session, name)
    value = check_setting(key, value)
    settings = dict(department.settings or {})
    before = settings.get(key)
    if value is None:
        settings.pop(key, None)
    else:
        settings[key] = value
    if before != value:
        department.settings = settings  # a new dict, so the JSON column is written
        await events.record(
            session, actor, "department.changed", department_id=department.id,
            data={"changes": {key: {"before": before, "after": value}}},
        )
    return department


def assignment_mode(department: Department) -> str:
    return str((department.settings or {}).get("assignment", "manual"))


def auto_close_days(department: Department) -> int:
    return int((department.settings or {}).get("auto_close_days", DEFAULT_AUTO_CLOSE_DAYS))
