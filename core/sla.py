"""SLA policies and the due times they put on tickets, in business time.

A department's policy lives in its settings under "sla":

    {"calendar": {...core.hours form...}, "first_response": 60, "next_response": 240,
     "resolution": 2880, "at_risk": 0.8, "priorities": {"urgent": {"first_response": 15}}}

Targets are business minutes. The clocks:

- first response: from creation until the first customer-facing agent reply
  (notes and automatic mail do not count: only `add_entry(REPLY)` sets
  `first_response_at`);
- next response: from the customer's latest message, once the first response
  was given, until an agent replies again;
- resolution: creation -> resolved, minus the business time spent pending.

While a ticket is pending (waiting on the customer) no clock runs and no due
time is set; when it leaves pending the business time it spent there is added
to `sla_state["paused"]` and shifts the first-response and resolution dues.
`sla_check_at` is the next instant the time-based scan must look at the
ticket (an at-risk or a breach moment not yet announced), indexed, so a scan
reads only the tickets whose moment has come.

A target's due time stays on the ticket once its clock stops (the first
response given, the ticket resolved): reports count it met or breached from
that due and the moment it was done. Which clocks still run is summed up in
three indexed columns the dashboard counts by range, never by reading every
active ticket:

- `sla_breach_at`: the earliest due time of a running clock (breached once past);
- `sla_risk_at`: the earliest at-risk moment of a running clock (never later
  than `sla_breach_at`, as each target's at-risk share is below 1);
- `waiting_since`: for a new or open ticket whose customer waits for an answer
  (no agent reply since their latest message), when that wait began.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadArgument
from core.hours import Calendar
from storage.models import Department, Ticket
from storage.types import Priority, Status

TARGETS = ("first_response", "next_response", "resolution")
DEFAULT_AT_RISK = 0.8
SLA_COLUMNS = (
    "first_response_due", "next_response_due", "resolution_due", "sla_check_at", "sla_state",
    "sla_risk_at", "sla_breach_at", "waiting_since",
)
ACTIVE = (Status.NEW, Status.OPEN)  # the agent's move: the clocks run (pending waits on the customer)


@dataclass(frozen=True)
class Targets:
    first_response: int | None = None
    next_response: int | None = None
    resolution: int | None = None

    def minutes(self, name: str) -> int | None:
        value: int | None = getattr(self, name)
        return value


@dataclass(frozen=True)
class Policy:
    calendar: Calendar
    default: Targets
    by_priority: dict[int, Targets] = field(default_factory=dict)
    at_risk: float = DEFAULT_AT_RISK

    def targets(self, priority: int) -> Targets:
        return self.by_priority.get(priority, self.default)


def _minutes(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BadArgument(f"The SLA target {name} is {value!r}; give a whole number of business minutes above 0.")
    return value


def _targets(data: dict[str, Any], base: Targets | None = None) -> Targets:
    unknown = set(data) - set(TARGETS)
    if unknown:
        raise BadArgument(f"Unknown SLA target {sorted(unknown)[0]!r}; use first_response, next_response, resolution.")
    base = base or Targets()
    return Targets(**{name: _minutes(name, data[name]) if name in data else base.minutes(name) for name in TARGETS})


def parse_policy(data: dict[str, Any]) -> Policy:
    """A policy from its settings form; one-sentence BadArgument on anything wrong."""
    unknown = set(data) - {"calendar", "at_risk", "priorities", *TARGETS}
    if unknown:
        raise BadArgument(
            f"Unknown SLA setting {sorted(unknown)[0]!r}; use calendar, at_risk, priorities, "
            "first_response, next_response, resolution."
        )
    calendar = Calendar.from_dict(data["calendar"]) if data.get("calendar") else Calendar.always()
    default = _targets({name: data[name] for name in TARGETS if name in data})
    by_priority: dict[int, Targets] = {}
    for label, targets in (data.get("priorities") or {}).items():
        try:
            priority = Priority.parse(str(label))
        except KeyError:
            raise BadArgument(f"{label!r} is not a priority; use low, normal, high or urgent.") from None
        by_priority[int(priority)] = _targets(dict(targets), default)
    at_risk = data.get("at_risk", DEFAULT_AT_RISK)
    if isinstance(at_risk, bool) or not isinstance(at_risk, int | float) or not 0 < at_risk < 1:
        raise BadArgument(f"at_risk is {at_risk!r}; give the share of a target after which it is at risk, like 0.8.")
    return Policy(calendar, default, by_priority, float(at_risk))


_CACHE: dict[str, Policy] = {}


def policy_of(department: Department) -> Policy | None:
    """The department's policy, or None when it has none (cached by its settings text)."""
    data = (department.settings or {}).get("sla")
    if not data:
        return None
    key = json.dumps(data, sort_keys=True, default=str)
    policy = _CACHE.get(key)
    if policy is None:
        if len(_CACHE) > 256:
            _CACHE.clear()
        policy = _CACHE[key] = parse_policy(data)
    return policy


def _at(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class Clocks:
    """The SLA fields a ticket should have now."""

    first_response_due: datetime | None = None
    next_response_due: datetime | None = None
    resolution_due: datetime | None = None
    sla_check_at: datetime | None = None
    sla_state: dict[str, Any] | None = None
    sla_risk_at: datetime | None = None
    sla_breach_at: datetime | None = None
    waiting_since: datetime | None = None

    def as_changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in SLA_COLUMNS}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()


def waiting_since(ticket: Any) -> datetime | None:
    """When the customer's current wait for an answer began, for a new or open ticket; else None."""
    if ticket.status not in ACTIVE:
        return None
    customer, agent = ticket.last_customer_message_at, ticket.last_agent_reply_at
    if agent is not None and customer is not None and customer <= agent:
        return None
    return _at(customer if customer is not None else ticket.created_at)


def compute(policy: Policy | None, ticket: Any, now: datetime) -> Clocks:
    """The due times and the next check of `ticket` (anything with Ticket's fields) at `now`."""
    state: dict[str, Any] = dict(ticket.sla_state or {})
    waiting = waiting_since(ticket)
    if policy is None:
        return Clocks(sla_state=state or None, waiting_since=waiting)
    calendar = policy.calendar
    paused = float(state.get("paused", 0))
    if ticket.status == Status.PENDING:
        state.setdefault("pending_since", _iso(now))
        # No clock runs; a due that stops now (a first reply that set pending) counts the pause so far.
        spell = calendar.business_time(datetime.fromisoformat(state["pending_since"]), now).total_seconds()
        return _stopped(Clocks(sla_state=state), policy, ticket, paused + max(spell, 0.0))
    if "pending_since" in state:
        since = datetime.fromisoformat(state.pop("pending_since"))
        paused += max(calendar.business_time(since, now).total_seconds(), 0.0)
        state["paused"] = paused
    if ticket.status not in ACTIVE:
        return _stopped(Clocks(sla_state=state or None), policy, ticket, paused)
    clocks = _stopped(Clocks(waiting_since=waiting), policy, ticket, paused)
    checks: list[datetime] = []
    warned, breached = state.get("warned", {}), state.get("breached", {})
    running = moments(policy, ticket, paused)
    for name, warn, due in running:
        setattr(clocks, f"{name}_due", due)
        if warned.get(name) != _iso(due):
            checks.append(warn)
        elif breached.get(name) != _iso(due):
            checks.append(due)
    clocks.sla_check_at = min(checks) if checks else None
    clocks.sla_risk_at = min((warn for _, warn, _ in running), default=None)
    clocks.sla_breach_at = min((due for _, _, due in running), default=None)
    clocks.sla_state = state or None
    return clocks


def _stopped(clocks: Clocks, policy: Policy, ticket: Any, paused: float) -> Clocks:
    """`clocks` with the dues of the first-response and resolution targets whose clocks have stopped, kept
    for reports.

    The due a clock had when it stopped is kept as it was (later pauses must not move it). A clock that
    stopped while no due was set (during a pending spell) gets the due it has as of now: creation plus
    the target plus the business time paused so far.
    """
    targets = policy.targets(int(ticket.priority))
    created = _at(ticket.created_at)
    stopped = {
        "first_response": ticket.first_response_at is not None,
        "resolution": ticket.status not in (*ACTIVE, Status.PENDING),
    }
    for name, done in stopped.items():
        minutes = targets.minutes(name)
        if not done or not minutes or created is None:
            continue
        kept = _at(getattr(ticket, f"{name}_due"))
        setattr(clocks, f"{name}_due", kept or policy.calendar.add(created, timedelta(seconds=minutes * 60 + paused)))
    return clocks


def moments(policy: Policy, ticket: Any, paused: float | None = None) -> list[tuple[str, datetime, datetime]]:
    """(target, at-risk moment, due) of each running clock of an active (new/open) ticket."""
    if paused is None:
        paused = float((ticket.sla_state or {}).get("paused", 0))
    calendar = policy.calendar
    targets = policy.targets(int(ticket.priority))
    created = _at(ticket.created_at)
    customer = _at(ticket.last_customer_message_at)
    agent = _at(ticket.last_agent_reply_at)
    # (target, when its clock started, business seconds to add for pauses)
    starts: list[tuple[str, datetime, float]] = []
    if ticket.first_response_at is None and targets.first_response and created is not None:
        starts.append(("first_response", created, paused))
    elif ticket.first_response_at is not None and targets.next_response and customer is not None and (
        agent is None or customer > agent
    ):
        starts.append(("next_response", customer, 0.0))
    if targets.resolution and created is not None:
        starts.append(("resolution", created, paused))
    out = []
    for name, start, offset in starts:
        minutes = targets.minutes(name)
        assert minutes is not None
        due = calendar.add(start, timedelta(seconds=minutes * 60 + offset))
        warn = calendar.add(start, timedelta(seconds=minutes * 60 * policy.at_risk + offset))
        out.append((name, warn, due))
    return out


async def refresh(session: AsyncSession, ticket: Ticket, now: datetime) -> None:
    """Set the ticket's due times from its department's policy (called by every ticket change)."""
    with session.no_autoflush:  # a flush here would write the change apart from its due times: two versions
        department = await session.get(Department, ticket.department_id)
    policy = policy_of(department) if department is not None else None
    for name, value in compute(policy, ticket, now).as_changes().items():
        if _differs(getattr(ticket, name), value):
            setattr(ticket, name, value)


async def refresh_ids(session: AsyncSession, ticket_ids: list[int], now: datetime) -> None:
    """`refresh` for tickets written set-wise (the batch mail import): same values, no version bump,
    exactly as the per-mail path sets them in the same UPDATE as its change."""
    policies: dict[int, Policy | None] = {}
    columns = (
        Ticket.id, Ticket.department_id, Ticket.status, Ticket.priority, Ticket.created_at,
        Ticket.first_response_at, Ticket.last_customer_message_at, Ticket.last_agent_reply_at,
        Ticket.first_response_due, Ticket.next_response_due, Ticket.resolution_due,
        Ticket.sla_check_at, Ticket.sla_state, Ticket.sla_risk_at, Ticket.sla_breach_at, Ticket.waiting_since,
    )
    for start in range(0, len(ticket_ids), 500):
        rows = (await session.execute(select(*columns).where(Ticket.id.in_(ticket_ids[start : start + 500])))).all()
        for row in rows:
            if row.department_id not in policies:
                department = await session.get(Department, row.department_id)
                policies[row.department_id] = policy_of(department) if department is not None else None
            values = compute(policies[row.department_id], row, now).as_changes()
            if any(_differs(getattr(row, name), value) for name, value in values.items()):
                await session.execute(
                    update(Ticket).where(Ticket.id == row.id).values(**values)
                    .execution_options(synchronize_session=False)
                )


async def backfill_moments(session: AsyncSession, *, batch: int = 2000) -> int:
    """Set `sla_risk_at` and `sla_breach_at` of the new and open tickets that exist (after migration 0010,
    which set `waiting_since` in SQL); returns how many it set. Batches by id, so memory stays flat.

    With a policy the moments come from its running clocks, as `compute` sets them; a ticket with due
    times but no policy (imported data) is breached at its earliest due and never counted at risk first.
    """
    policies: dict[int, Policy | None] = {}
    columns = (
        Ticket.id, Ticket.department_id, Ticket.status, Ticket.priority, Ticket.created_at,
        Ticket.first_response_at, Ticket.last_customer_message_at, Ticket.last_agent_reply_at,
        Ticket.first_response_due, Ticket.next_response_due, Ticket.resolution_due, Ticket.sla_state,
    )
    tickets = cast(Table, Ticket.__table__)
    last_id, done = 0, 0
    while True:
        rows = (
            await session.execute(
                select(*columns)
                .where(Ticket.id > last_id, Ticket.status.in_([status.value for status in ACTIVE]))
                .order_by(Ticket.id)
                .limit(batch)
            )
        ).all()
        if not rows:
            return done
        last_id = rows[-1].id
        values: list[dict[str, Any]] = []
        for row in rows:
            if row.department_id not in policies:
                department = await session.get(Department, row.department_id)
                policies[row.department_id] = policy_of(department) if department is not None else None
            policy = policies[row.department_id]
            if policy is not None:
                running = moments(policy, row)
                risk = min((warn for _, warn, _ in running), default=None)
                breach = min((due for _, _, due in running), default=None)
            else:
                breach = min((moment for moment in map(_at, _dues(row)) if moment is not None), default=None)
                risk = breach
            if breach is not None:
                values.append({"b_id": row.id, "b_risk": risk, "b_breach": breach})
        if values:
            # Core UPDATEs by primary key (executemany): no ORM identity map to fill over a big desk.
            await session.execute(
                update(tickets)
                .where(tickets.c.id == bindparam("b_id"))
                .values(sla_risk_at=bindparam("b_risk"), sla_breach_at=bindparam("b_breach")),
                values,
            )
            done += len(values)


def _dues(row: Any) -> tuple[datetime | None, ...]:
    return (row.first_response_due, row.next_response_due, row.resolution_due)


def _differs(stored: Any, value: Any) -> bool:
    """Whether a stored value (naive UTC from the database) differs from a computed one (aware UTC)."""
    if isinstance(stored, datetime) and isinstance(value, datetime):
        return _at(stored) != _at(value)
    return bool(stored != value)


__all__ = [
    "Clocks", "Policy", "Targets", "backfill_moments", "compute", "moments", "parse_policy", "policy_of",
    "refresh", "waiting_since",
]
