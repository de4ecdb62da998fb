"""The supervisor dashboard's numbers: today's load per department and per agent, and today's hours, in SQL.

One call reads everything the dashboard shows in a handful of queries, none of which reads every active
ticket: the queue and agent-load counters (kept per change, so no GROUP BY over the desk), index ranges over
the SLA moments core.sla keeps on new and open tickets (`ix_tickets_sla_breach_at`, `ix_tickets_sla_risk_at`),
one index step per department for the oldest wait (`ix_tickets_waiting_since`), today's resolutions by
`ix_tickets_resolved`, today's tickets by `ix_tickets_created`, today's customer messages by
`ix_messages_created`. Every query is limited to the actor's departments
(`core.policy.visible_department_ids`), so an agent never sees a department they are not in.

Definitions (the README's "Dashboard and reports screen" section repeats them):

- *today* is the current calendar day in the desk's time zone
  (`[desk] timezone`, UTC by default), from its midnight to now;
- *new / open / pending* count tickets in that status; *unassigned* the
  new, open and pending ones with no assignee (as the queues screen counts);
- *resolved today*: tickets resolved or closed now whose resolution fell today;
- *SLA breached*: new or open tickets with a running clock (first response, next
  response, resolution) already past its due time;
- *SLA at risk*: new or open tickets not breached where a running clock has
  passed its at-risk moment (the policy's `at_risk` share of its target, in
  business time), whether or not the SLA scan has announced it yet;
- *oldest waiting*: among new and open tickets whose customer is waiting for
  an answer (no agent reply since their latest message), the earliest such
  wait start (the latest customer message, else the creation);
- an agent's *load*: new, open and pending tickets assigned to them, in the
  actor's departments; *resolved today* the same departments' resolutions
  of today assigned to them;
- per hour of today: tickets created, customer messages received, tickets
  resolved (an hour is counted from the local midnight in whole hours; in a
  zone with a half-hour offset the hours are still whole hours from midnight).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import BigInteger, ColumnElement, Integer, cast, func, literal, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.policy import Actor, require_supervisor
from core.queues import counter_totals, visible_departments
from core.tickets import ACTIVE_STATUSES  # an agent's load: new, open and pending, as the queues count
from storage.models import Agent, AgentLoadCounter, Department, Membership, Message, Ticket
from storage.types import MessageKind, Status

RESOLVED_STATUSES = (Status.RESOLVED.value, Status.CLOSED.value)


@dataclass(frozen=True)
class DepartmentLoad:
    department: str
    new: int = 0
    open: int = 0
    pending: int = 0
    unassigned: int = 0
    resolved_today: int = 0
    sla_at_risk: int = 0
    sla_breached: int = 0
    waiting_since: datetime | None = None  # start of the oldest wait; None when nobody waits

    def oldest_waiting(self, now: datetime) -> timedelta | None:
        return None if self.waiting_since is None else max(now - self.waiting_since, timedelta(0))


@dataclass(frozen=True)
class AgentLoad:
    handle: str
    name: str
    role: str
    availability: str
    load: int = 0
    resolved_today: int = 0


@dataclass(frozen=True)
class HourCounts:
    start: datetime  # aware, in the desk's time zone
    created: int = 0
    incoming: int = 0
    resolved: int = 0


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    day_start: datetime  # local midnight, aware in the desk's time zone
    departments: list[DepartmentLoad]
    agents: list[AgentLoad]
    hours: list[HourCounts] = field(default_factory=list)


def day_bounds(now: datetime, timezone: str) -> tuple[datetime, int]:
    """Today's local midnight (aware, local) and how many hours today has (23 to 25 around DST)."""
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    tomorrow = start.date() + timedelta(days=1)
    following = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=zone)
    hours = round((following.astimezone(UTC) - start.astimezone(UTC)).total_seconds() / 3600)
    return start, hours


def _hour_of(column: Any, start: datetime, dialect: str) -> ColumnElement[int]:
    """The whole hours from `start` to the column's time (the column is at or after `start`, within 2 days)."""
    origin = start.astimezone(UTC)
    if dialect == "sqlite":
        # Stored as 'YYYY-MM-DD HH:MM:SS.ffffff' (naive UTC). Minutes since `origin` from the text itself:
        # strftime('%s') parses each row's whole timestamp and was most of this query's time on a busy day.
        day = func.substr(column, 1, 10)
        minutes = (
            cast(func.substr(column, 12, 2), Integer) * 60
            + cast(func.substr(column, 15, 2), Integer)
            + sum(
                (cast(day > literal(f"{origin.date() + timedelta(days=n):%Y-%m-%d}"), Integer) * 1440 for n in (0, 1)),
                start=literal(0),
            )
            - literal(origin.hour * 60 + origin.minute)
        )
        return minutes // literal(60)
    # extract(epoch) of a timestamp without time zone is its nominal UTC seconds; floor so 09:59:59.6 stays in
    # hour 9 (a cast alone would round it). Floor division (`//`) renders integer division.
    seconds = cast(func.floor(func.extract("epoch", column)), BigInteger)
    return (seconds - literal(int(origin.timestamp()), BigInteger)) // literal(3600, BigInteger)


async def build_dashboard(
    session: AsyncSession, actor: Actor, dialect: str, now: datetime, timezone: str = "UTC"
) -> Dashboard:
    require_supervisor(actor, "see the dashboard")
    day_start, hour_count = day_bounds(now, timezone)
    start_utc = day_start.astimezone(UTC)
    departments = [(department_id, name) for department_id, name, _ in await visible_departments(session, actor)]
    ids = [department_id for department_id, _ in departments]
    if not ids:
        return Dashboard(
            now, day_start, [], [], [HourCounts(day_start + timedelta(hours=h)) for h in range(hour_count)]
        )
    # 1. Status and unassigned counts from the counters every ticket change keeps (as the queues count them).
    numbers: dict[int, dict[str, Any]] = dict(await counter_totals(session, ids))

    # 2. SLA and the oldest wait per department, from the moments core.sla keeps on new and open tickets:
    # index ranges, so a refresh never reads every active ticket. Every breached ticket's at-risk moment
    # has passed too (it is never later than its due), so "at risk" is the difference of the two counts.
    for moment, inclusive, name in (
        (Ticket.sla_breach_at, False, "sla_breached"),
        (Ticket.sla_risk_at, True, "sla_passed_risk"),
    ):
        passed = moment <= now if inclusive else moment < now
        counted = await session.execute(
            select(Ticket.department_id, func.count())
            .where(Ticket.department_id.in_(ids), moment.is_not(None), passed)
            .group_by(Ticket.department_id)
        )
        for department_id, count in counted:
            numbers[department_id][name] += count
    for row in numbers.values():
        row["sla_at_risk"] = max(row.pop("sla_passed_risk", 0) - row["sla_breached"], 0)
    # The oldest wait: one step down ix_tickets_waiting_since per department.
    oldest = select(func.min(Ticket.waiting_since)).where(
        Ticket.department_id == Department.id, Ticket.waiting_since.is_not(None)
    )
    for department_id, since in await session.execute(
        select(Department.id, oldest.scalar_subquery()).where(Department.id.in_(ids))
    ):
        numbers[department_id]["waiting_since"] = _aware(since)

    # Agents' load in these departments, from the counters every ticket change keeps.
    load: dict[int, int] = defaultdict(int)
    for agent_id, count in await session.execute(
        select(AgentLoadCounter.agent_id, func.sum(AgentLoadCounter.count))
        .where(
            AgentLoadCounter.department_id.in_(ids),
            AgentLoadCounter.status.in_([status.value for status in ACTIVE_STATUSES]),
        )
        .group_by(AgentLoadCounter.agent_id)
    ):
        load[agent_id] += int(count or 0)

    # 3. Today's resolutions per department and assignee, and per hour (ix_tickets_resolved covers both).
    # Two small GROUP BYs: grouping by all three at once sorted thousands of groups on a busy day.
    hours: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    resolved_by_agent: dict[int, int] = defaultdict(int)
    # `department_id + 0` in today's ranges: for a reader of a few departments SQLite otherwise walks
    # ix_tickets_queue through every resolved ticket of those departments (1.5 s at a million) instead of
    # today's range.
    in_departments = (Ticket.department_id + 0).in_(ids)
    resolved_today = (
        Ticket.resolved_at >= start_utc,
        Ticket.resolved_at <= now,
        in_departments,
        Ticket.status.in_(RESOLVED_STATUSES),
    )
    for department_id, assignee_id, count in await session.execute(
        select(Ticket.department_id, Ticket.assignee_id, func.count())
        .where(*resolved_today)
        .group_by(Ticket.department_id, Ticket.assignee_id)
    ):
        numbers[department_id]["resolved_today"] += count
        if assignee_id is not None:
            resolved_by_agent[assignee_id] += count
    resolved_hour = _hour_of(Ticket.resolved_at, start_utc, dialect).label("hour")
    for hour, count in await session.execute(
        select(resolved_hour, func.count()).where(*resolved_today).group_by(resolved_hour)
    ):
        hours[int(hour)]["resolved"] += count

    # 4. Today's new tickets and customer messages per hour (ix_tickets_created, ix_messages_created).
    created_hour = _hour_of(Ticket.created_at, start_utc, dialect).label("hour")
    created = await session.execute(
        select(created_hour, func.count())
        .where(Ticket.created_at >= start_utc, Ticket.created_at <= now, in_departments)
        .group_by(created_hour)
    )
    for hour, count in created:
        hours[int(hour)]["created"] += count
    message_hour = _hour_of(Message.created_at, start_utc, dialect).label("hour")
    incoming_today = select(message_hour, func.count()).where(
        Message.created_at >= start_utc, Message.created_at <= now, Message.kind == MessageKind.CUSTOMER.value
    )
    if len(ids) < (await session.execute(select(func.count()).select_from(Department))).scalar_one():
        # Only some departments: each message's ticket says which (a lookup per message of today).
        # `+ 0` again: PostgreSQL would otherwise hash-join every ticket of those departments (64 ms at 1M).
        incoming_today = incoming_today.join(Ticket, Ticket.id == Message.ticket_id).where(in_departments)
    incoming = await session.execute(incoming_today.group_by(message_hour))
    for hour, count in incoming:
        hours[int(hour)]["incoming"] += count

    # 5. The members of these departments (their load was read in 2).
    members = (
        await session.execute(
            select(Agent.id, Agent.handle, Agent.name, Agent.role, Agent.availability)
            .where(
                Agent.active.is_(True),
                Agent.id.in_(select(Membership.agent_id).where(Membership.department_id.in_(ids))),
            )
            .order_by(Agent.handle)
        )
    ).all()

    return Dashboard(
        now=now,
        day_start=day_start,
        departments=[
            DepartmentLoad(
                department=name,
                new=numbers[department_id]["new"],
                open=numbers[department_id]["open"],
                pending=numbers[department_id]["pending"],
                unassigned=numbers[department_id]["unassigned"],
                resolved_today=numbers[department_id]["resolved_today"],
                sla_at_risk=numbers[department_id]["sla_at_risk"],
                sla_breached=numbers[department_id]["sla_breached"],
                waiting_since=numbers[department_id].get("waiting_since"),
            )
            for department_id, name in departments
        ],
        agents=[
            AgentLoad(
                handle=row.handle,
                name=row.name,
                role=row.role,
                availability=row.availability,
                load=load.get(row.id, 0),
                resolved_today=resolved_by_agent.get(row.id, 0),
            )
            for row in members
        ],
        hours=[
            HourCounts(
                start=(start_utc + timedelta(hours=hour)).astimezone(day_start.tzinfo),
                created=hours[hour]["created"],
                incoming=hours[hour]["incoming"],
                resolved=hours[hour]["resolved"],
            )
            for hour in range(hour_count)
        ],
    )


def _aware(value: Any) -> datetime | None:
    """A MIN() over a CASE loses the column type on some dialects; read it back as an aware UTC time."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
