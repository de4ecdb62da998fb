"""The supervisor dashboard's numbers: today's load per department and per agent, and today's hours, in SQL.

One call reads everything the dashboard shows in a handful of queries, each
bounded by an index: the queue counters (new / open / pending / unassigned,
kept per change, so no GROUP BY over the desk), the new and open tickets by
`ix_tickets_queue` (SLA, oldest waiting, load), today's resolutions by
`ix_tickets_resolved`, today's tickets by `ix_tickets_created`, today's
customer messages by `ix_messages_created`; the agents' load is counted in
the same pass as the SLA numbers. Every query is limited to the actor's
departments (`core.policy.visible_department_ids`), so an agent never sees a
department they are not in.

Definitions (the README's "Dashboard and reports screen" section repeats them):

- *today* is the current calendar day in the desk's time zone
  (`[desk] timezone`, UTC by default), from its midnight to now;
- *new / open / pending* count tickets in that status; *unassigned* the
  new, open and pending ones with no assignee (as the queues screen counts);
- *resolved today*: tickets resolved or closed now whose resolution fell today;
- *SLA breached*: new or open tickets with a due time (first response, next
  response, resolution) already past;
- *SLA at risk*: new or open tickets not breached whose at-risk moment
  (the policy's `at_risk` share of a target, in business time) has come:
  either the SLA scan has not announced it yet (`sla_check_at` passed) or it
  has and is now waiting for the due time (`sla_check_at` is that due time);
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

from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.policy import Actor, require_supervisor
from core.queues import counter_totals, visible_departments
from storage.models import Agent, Membership, Message, Ticket
from storage.types import MessageKind, Status

WAITING_STATUSES = (Status.NEW.value, Status.OPEN.value)  # the agent's move; pending waits on the customer
LOAD_STATUSES = (Status.NEW.value, Status.OPEN.value, Status.PENDING.value)
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


def _epoch_seconds(column: Any, dialect: str) -> ColumnElement[int]:
    """Whole seconds since 1970 of a stored (naive UTC) timestamp."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), BigInteger)
    # extract(epoch) of a timestamp without time zone is its nominal UTC seconds; floor so
    # 09:59:59.6 stays in hour 9 (a cast alone would round it).
    return cast(func.floor(func.extract("epoch", column)), BigInteger)


def _hour_of(column: Any, start: datetime, dialect: str) -> ColumnElement[int]:
    """The whole hours from `start` to the column's time (the column is at or after `start`)."""
    origin = int(start.astimezone(UTC).timestamp())
    # Floor division (`//` renders integer division on both dialects); the difference is never negative.
    return (_epoch_seconds(column, dialect) - literal(origin, BigInteger)) // literal(3600, BigInteger)


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

    # 2. One pass over the active tickets (ix_tickets_queue: department, status), grouped by department and
    # assignee: SLA and the oldest wait per department (new and open only), and every agent's load.
    dues = (Ticket.first_response_due, Ticket.next_response_due, Ticket.resolution_due)
    # `IS NOT NULL` on each term keeps the OR from being NULL, so `NOT breached` is true for a clean ticket.
    breached = or_(*[and_(due.is_not(None), due < now) for due in dues])
    warned = or_(Ticket.sla_check_at <= now, *[Ticket.sla_check_at == due for due in dues])
    on_agent = Ticket.status.in_(WAITING_STATUSES)
    waiting = and_(
        on_agent,
        or_(
            Ticket.last_agent_reply_at.is_(None),
            Ticket.last_customer_message_at.is_(None),
            Ticket.last_customer_message_at > Ticket.last_agent_reply_at,
        ),
    )
    waiting_since = func.coalesce(Ticket.last_customer_message_at, Ticket.created_at)
    load: dict[int, int] = defaultdict(int)
    active = await session.execute(
        select(
            Ticket.department_id,
            Ticket.assignee_id,
            func.count(),
            func.sum(case((and_(on_agent, breached), 1), else_=0)),
            func.sum(case((and_(on_agent, ~breached, warned), 1), else_=0)),
            func.min(case((waiting, waiting_since), else_=None)),
        )
        .where(Ticket.department_id.in_(ids), Ticket.status.in_(LOAD_STATUSES))
        .group_by(Ticket.department_id, Ticket.assignee_id)
    )
    for department_id, assignee_id, count, breached_count, at_risk_count, since in active:
        row = numbers[department_id]
        row["sla_breached"] += int(breached_count or 0)
        row["sla_at_risk"] += int(at_risk_count or 0)
        since = _aware(since)
        if since is not None and (row.get("waiting_since") is None or since < row["waiting_since"]):
            row["waiting_since"] = since
        if assignee_id is not None:
            load[assignee_id] += count

    # 3. Today's resolutions, per department, assignee and hour (ix_tickets_resolved).
    hours: dict[int, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    resolved_by_agent: dict[int, int] = defaultdict(int)
    resolved_hour = _hour_of(Ticket.resolved_at, start_utc, dialect).label("hour")
    resolved = await session.execute(
        select(Ticket.department_id, Ticket.assignee_id, resolved_hour, func.count())
        .where(
            Ticket.resolved_at >= start_utc,
            Ticket.resolved_at <= now,
            Ticket.department_id.in_(ids),
            Ticket.status.in_(RESOLVED_STATUSES),
        )
        .group_by(Ticket.department_id, Ticket.assignee_id, resolved_hour)
    )
    for department_id, assignee_id, hour, count in resolved:
        numbers[department_id]["resolved_today"] += count
        if assignee_id is not None:
            resolved_by_agent[assignee_id] += count
        hours[int(hour)]["resolved"] += count

    # 4. Today's new tickets and customer messages per hour (ix_tickets_created, ix_messages_created).
    created_hour = _hour_of(Ticket.created_at, start_utc, dialect).label("hour")
    created = await session.execute(
        select(created_hour, func.count())
        .where(Ticket.created_at >= start_utc, Ticket.created_at <= now, Ticket.department_id.in_(ids))
        .group_by(created_hour)
    )
    for hour, count in created:
        hours[int(hour)]["created"] += count
    message_hour = _hour_of(Message.created_at, start_utc, dialect).label("hour")
    incoming = await session.execute(
        select(message_hour, func.count())
        .select_from(Message)
        .join(Ticket, Ticket.id == Message.ticket_id)
        .where(
            Message.created_at >= start_utc,
            Message.created_at <= now,
            Message.kind == MessageKind.CUSTOMER.value,
            Ticket.department_id.in_(ids),
        )
        .group_by(message_hour)
    )
    for hour, count in incoming:
        hours[int(hour)]["incoming"] += count

    # 5. The members of these departments (their load was counted in 2).
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
