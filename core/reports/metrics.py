"""Report metrics: every definition written once, here, and computed in SQL within the viewer's departments.

A report covers [start, end) in UTC, cut into buckets (day, week from
Monday, month, year) and grouped by department, agent, channel or tag. Counts
and averages are GROUP BY queries, the median a window-function query: a
year of a big desk holds millions of rows, none of which come to Python.
Every query carries the same access clause as the queues
(`core.policy.ticket_visible`), so an agent's report never counts a ticket
of a department they are not in.

The README's "Reports" section lists every definition word for word (a test
holds them together). Durations are business minutes where the department
has hours (its SLA policy's calendar), calendar minutes otherwise, and never
count time the ticket was pending (waiting on the customer). Business time
cannot be computed in SQL over millions of rows, so the minutes are stored
when they happen (core/reports/durations.py) and averaged here: SUM and COUNT
in SQL, divided by `average`, the one division the day cache uses too.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, String, and_, case, cast, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.errors import BadArgument
from core.policy import Actor, ticket_visible, visible_department_ids
from storage.models import Agent, Department, Message, Rating, Tag, Ticket, TicketTag
from storage.types import MessageKind, Status

BUCKETS = ("day", "week", "month", "year")
GROUPINGS = ("department", "agent", "channel", "tag")
UNASSIGNED = "(unassigned)"
UNTAGGED = "(no tag)"


@dataclass(frozen=True)
class Metric:
    name: str  # the CSV column and JSON key
    title: str
    definition: str


METRICS: tuple[Metric, ...] = (
    Metric("created", "Created", "Tickets whose creation falls in the bucket."),
    Metric("resolved", "Resolved", "Tickets whose (latest) resolution falls in the bucket; spam is never counted."),
    Metric(
        "answers", "Answers", "Agent replies to customers written in the bucket (notes and automatic mail excluded)."
    ),
    Metric("notes", "Notes", "Internal notes written in the bucket."),
    Metric(
        "incoming", "Incoming", "Customer messages received in the bucket (the first one of each ticket included)."
    ),
    Metric(
        "first_answer_avg_min", "First answer, average (min)",
        "For tickets first answered in the bucket: minutes from creation to the first agent reply to the customer "
        "(notes and automatic mail are not answers).",
    ),
    Metric("first_answer_median_min", "First answer, median (min)", "The median of the same durations."),
    Metric(
        "answer_avg_min", "Answer time, average (min)",
        "For each agent reply written in the bucket that answers customer messages: minutes since the earliest "
        "customer message received after the previous agent reply (automatic mail such as out-of-office "
        "answers excluded); by agent, the reply's author.",
    ),
    Metric(
        "resolution_avg_min", "Resolution, average (min)",
        "For tickets resolved in the bucket: minutes from creation to the latest resolution (a reopened ticket "
        "counts once, when resolved again, from its creation; time spent resolved before reopening counts).",
    ),
    Metric(
        "sla_met", "SLA met",
        "Targets (first response, resolution) that fell due in the bucket and were met in time.",
    ),
    Metric(
        "sla_breached", "SLA breached",
        "Targets that fell due in the bucket and were met late, or are overdue and still not met.",
    ),
    Metric("sla_met_pct", "SLA met %", "sla_met / (sla_met + sla_breached), empty when nothing fell due."),
    Metric(
        "rated_positive", "Rated positive",
        "Tickets resolved in the bucket whose latest rating is positive (spam excluded).",
    ),
    Metric("rated_negative", "Rated negative", "Tickets resolved in the bucket whose latest rating is negative."),
    Metric("not_rated", "Not rated", "Tickets resolved in the bucket without any rating."),
    Metric(
        "rated_positive_pct", "Rated positive %",
        "rated_positive / (rated_positive + rated_negative + not_rated), empty when nothing was resolved.",
    ),
    Metric("rated_negative_pct", "Rated negative %", "rated_negative as a share of the same total."),
    Metric("not_rated_pct", "Not rated %", "not_rated as a share of the same total."),
    Metric(
        "backlog", "Backlog at end",
        "Tickets created before the end of the bucket and not resolved by then (spam excluded).",
    ),
)
METRIC_NAMES = tuple(metric.name for metric in METRICS)
_RATING_PARTS = ("rated_positive", "rated_negative", "not_rated")
_RATING_PCT = {f"{part}_pct": part for part in _RATING_PARTS}


@dataclass(frozen=True)
class ReportRequest:
    start: datetime  # inclusive, aware
    end: datetime  # exclusive, aware
    by: str = "department"
    bucket: str = "week"

    def __post_init__(self) -> None:
        if self.by not in GROUPINGS:
            raise BadArgument(f"Cannot group a report by {self.by!r}; use one of {', '.join(GROUPINGS)}.")
        if self.bucket not in BUCKETS:
            raise BadArgument(f"No bucket {self.bucket!r}; use one of {', '.join(BUCKETS)}.")
        if self.end <= self.start:
            raise BadArgument("The report's end is not after its start; give --to on or after --from.")


@dataclass
class ReportRow:
    bucket: str  # the bucket's first day, YYYY-MM-DD
    group: str
    values: dict[str, float | int | None] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"bucket": self.bucket, "group": self.group, **self.values}


@dataclass
class Report:
    request: ReportRequest
    rows: list[ReportRow]

    @property
    def columns(self) -> tuple[str, ...]:
        return ("bucket", "group", *METRIC_NAMES)


# -- buckets ----------------------------------------------------------------


def bucket_start(moment: date, bucket: str) -> date:
    if bucket == "day":
        return moment
    if bucket == "week":
        return moment - timedelta(days=moment.weekday())
    if bucket == "month":
        return moment.replace(day=1)
    return moment.replace(month=1, day=1)


def next_bucket(start: date, bucket: str) -> date:
    if bucket == "day":
        return start + timedelta(days=1)
    if bucket == "week":
        return start + timedelta(days=7)
    if bucket == "month":
        return (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    return start.replace(year=start.year + 1)


def buckets(request: ReportRequest) -> list[tuple[str, datetime]]:
    """Every bucket the range touches, as (key, end of the bucket clipped to the range's end)."""
    found: list[tuple[str, datetime]] = []
    current = bucket_start(request.start.astimezone(UTC).date(), request.bucket)
    while _midnight(current) < request.end:
        following = next_bucket(current, request.bucket)
        found.append((current.isoformat(), min(_midnight(following), request.end)))
        current = following
    return found


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _bucket_sql(column: Any, bucket: str, dialect: str) -> ColumnElement[str]:
    """The bucket's first day as 'YYYY-MM-DD', in SQL (timestamps are stored as naive UTC)."""
    if dialect == "sqlite":
        if bucket == "day":
            return func.date(column)
        if bucket == "week":  # to the coming Sunday (or stay), then back to its Monday
            return func.date(column, "weekday 0", "-6 days")
        return func.strftime("%Y-%m-01" if bucket == "month" else "%Y-01-01", column)
    return func.to_char(func.date_trunc(bucket, column), "YYYY-MM-DD")


# -- groups -----------------------------------------------------------------


@dataclass(frozen=True)
class _Grouping:
    """How one query groups: the column, and what its statement must join to reach it."""

    column: Any  # a mapped column (InstrumentedAttribute) or SQL expression
    join_tags: bool = False


def _ticket_group(by: str, per_department: bool = False) -> _Grouping:
    if by == "department":
        grouping = _Grouping(Ticket.department_id)
    elif by == "agent":
        grouping = _Grouping(Ticket.assignee_id)
    elif by == "channel":
        grouping = _Grouping(Ticket.channel)
    else:
        grouping = _Grouping(TicketTag.tag_id, join_tags=True)
    return _per_department(grouping) if per_department else grouping


def _message_group(by: str, per_department: bool = False) -> _Grouping:
    """Messages group by their author for `agent`, and by their ticket otherwise."""
    if by != "agent":
        return _ticket_group(by, per_department)
    grouping = _Grouping(Message.author_agent_id)
    return _per_department(grouping) if per_department else grouping


def _per_department(grouping: _Grouping) -> _Grouping:
    """The group key prefixed by the ticket's department, 'department_id:key' ('' for NULL), as one text column:
    the day cache (core/reports/daycache.py) keeps every group per department so access can filter it."""
    key = func.coalesce(cast(grouping.column, String), "")
    return _Grouping(cast(Ticket.department_id, String).concat(":").concat(key), join_tags=grouping.join_tags)


def _with_tags(statement: Select[Any], grouping: _Grouping) -> Select[Any]:
    if grouping.join_tags:
        return statement.outerjoin(TicketTag, TicketTag.ticket_id == Ticket.id)
    return statement


async def _labels(session: AsyncSession, actor: Actor, by: str) -> tuple[dict[Any, str], list[str]]:
    """Names for group keys, and the groups every report shows even when empty."""
    if by == "department":
        rows = await session.execute(
            select(Department.id, Department.name).where(Department.id.in_(visible_department_ids(actor)))
        )
        names = {department_id: name for department_id, name in rows}
        return names, sorted(names.values(), key=str.casefold)
    if by == "agent":
        rows = await session.execute(select(Agent.id, Agent.handle))
        return {agent_id: handle for agent_id, handle in rows} | {None: UNASSIGNED}, []
    if by == "tag":
        rows = await session.execute(select(Tag.id, Tag.name))
        return {tag_id: name for tag_id, name in rows} | {None: UNTAGGED}, []
    return {}, []


# -- the report -------------------------------------------------------------


class _Table:
    """Values by (bucket, group key), filled metric by metric."""

    def __init__(self) -> None:
        self.cells: dict[tuple[str, Any], dict[str, float | int | None]] = defaultdict(dict)

    def add(self, bucket: str, group: Any, name: str, value: float | int) -> None:
        cell = self.cells[(bucket, group)]
        cell[name] = (cell.get(name) or 0) + value

    def groups(self) -> set[Any]:
        return {group for _, group in self.cells}


async def build_report(session: AsyncSession, actor: Actor, request: ReportRequest, dialect: str) -> Report:
    """Every metric of `METRICS` for every (bucket, group) of the range, within the actor's departments."""
    return await assemble_report(session, actor, request, await base_table(session, actor, request, dialect))


async def base_table(session: AsyncSession, actor: Actor, request: ReportRequest, dialect: str) -> _Table:
    """The report's values straight from the base tables (tickets, messages, ratings, tags)."""
    table = _Table()
    visible = ticket_visible(actor)
    tickets_group = _ticket_group(request.by)
    messages_group = _message_group(request.by)

    await _counts(session, request, table, visible, tickets_group, messages_group, dialect)
    await _durations(session, request, table, visible, tickets_group, dialect)
    await _sla(session, request, table, visible, tickets_group, dialect)
    await _ratings(session, request, table, visible, tickets_group, dialect)
    await _backlog(session, request, table, visible, tickets_group, dialect)
    return table


async def assemble_report(session: AsyncSession, actor: Actor, request: ReportRequest, table: _Table) -> Report:
    """The report's rows: every bucket x every group label, values finished (defaults, percentages)."""
    names, always = await _labels(session, actor, request.by)
    keys_by_label: dict[str, list[Any]] = defaultdict(list)
    for key in table.groups():
        keys_by_label[_label(names, key, request.by)].append(key)
    labels = sorted(set(always) | set(keys_by_label), key=str.casefold)
    rows: list[ReportRow] = []
    for bucket_key, _ in buckets(request):
        for label in labels:
            # One key per label in practice (names and handles are unique); counts would add up if not.
            merged: dict[str, float | int | None] = {}
            for key in keys_by_label.get(label, []):
                for name, value in table.cells.get((bucket_key, key), {}).items():
                    if name in merged and value is not None and not name.endswith("_min"):
                        merged[name] = (merged[name] or 0) + value
                    else:
                        merged.setdefault(name, value)
            rows.append(ReportRow(bucket_key, label, _finish(merged)))
    return Report(request, rows)


async def _counts(
    session: AsyncSession,
    request: ReportRequest,
    table: _Table,
    visible: ColumnElement[bool],
    tickets_group: _Grouping,
    messages_group: _Grouping,
    dialect: str,
    *,
    created_not_spam: bool = False,
) -> None:
    """created, resolved, answers, notes, incoming (and, for the day cache, created_not_spam)."""
    start, end = request.start, request.end

    async def count(name: str, column: Any, grouping: _Grouping, *where: ColumnElement[bool], messages: bool) -> None:
        bucket = _bucket_sql(column, request.bucket, dialect)
        statement = select(bucket, grouping.column, func.count())
        statement = statement.select_from(Message).join(Ticket, Ticket.id == Message.ticket_id) if messages else (
            statement.select_from(Ticket)
        )
        statement = _with_tags(statement, grouping)
        statement = statement.where(visible, column >= start, column < end, *where).group_by(bucket, grouping.column)
        for bucket_key, group, number in await session.execute(statement):
            table.add(bucket_key, group, name, number)

    not_spam = Ticket.status != Status.SPAM.value
    await count("created", Ticket.created_at, tickets_group, messages=False)
    if created_not_spam:
        await count("created_not_spam", Ticket.created_at, tickets_group, not_spam, messages=False)
    await count("resolved", Ticket.resolved_at, tickets_group, not_spam, messages=False)
    await count("answers", Message.created_at, messages_group, Message.kind == MessageKind.REPLY.value, messages=True)
    await count("notes", Message.created_at, messages_group, Message.kind == MessageKind.NOTE.value, messages=True)
    # Customer messages have no agent author: by agent, they count for the ticket's assignee.
    customer = Message.kind == MessageKind.CUSTOMER.value
    await count("incoming", Message.created_at, tickets_group, customer, messages=True)


def _label(names: dict[Any, str], key: Any, by: str) -> str:
    if by == "channel":
        return str(key)
    return names.get(key, str(key))


def _finish(values: dict[str, float | int | None]) -> dict[str, float | int | None]:
    """All metrics in order: counts default to 0, averages to empty, percentages computed."""
    out: dict[str, float | int | None] = {}
    for name in METRIC_NAMES:
        value = values.get(name)
        if name.endswith("_min"):
            out[name] = None if value is None else round(float(value), 1)
        elif name == "sla_met_pct":
            met, breached = values.get("sla_met") or 0, values.get("sla_breached") or 0
            out[name] = round(100.0 * float(met) / float(met + breached), 1) if met + breached else None
        elif name in _RATING_PCT:
            rated = {part: values.get(part) or 0 for part in _RATING_PARTS}
            total = sum(rated.values())
            out[name] = round(100.0 * float(rated[_RATING_PCT[name]]) / float(total), 1) if total else None
        else:
            out[name] = int(value or 0)
    return out


def average(total: float | int, count: int) -> float:
    """An average as the report computes it everywhere: the sum divided by the count, in doubles.

    The base SQL and the day cache (core.reports.daycache) both divide here. Their sums are of stored
    minutes, all multiples of 1/64 (core.reports.durations.stored_minutes), so every order of summation
    gives the same double and the two paths agree to the last bit, ties of the one-decimal rounding included.
    """
    return float(total) / float(count)


async def _durations(
    session: AsyncSession,
    request: ReportRequest,
    table: _Table,
    visible: ColumnElement[bool],
    grouping: _Grouping,
    dialect: str,
) -> None:
    """Averages (and the first answer's median) of the stored minutes (core.reports.durations), in SQL."""
    start, end = request.start, request.end

    def values(moment: Any, minutes: Any, group: _Grouping, *where: ColumnElement[bool], messages: bool = False
               ) -> Select[Any]:
        """(g, ended, minutes) of the rows whose `moment` falls in the range and that have minutes."""
        statement = select(group.column.label("g"), moment.label("ended"), minutes.label("minutes"))
        statement = statement.select_from(Message).join(Ticket, Ticket.id == Message.ticket_id) if messages else (
            statement.select_from(Ticket)
        )
        return _with_tags(statement, group).where(
            visible, moment >= start, moment < end, minutes.is_not(None), *where
        )

    async def averages(name: str, spans: Select[Any]) -> None:
        inner = spans.subquery()
        bucket = _bucket_sql(inner.c.ended, request.bucket, dialect)
        statement = select(bucket, inner.c.g, func.sum(inner.c.minutes), func.count()).group_by(bucket, inner.c.g)
        for bucket_key, group, total, number in await session.execute(statement):
            table.cells[(bucket_key, group)][name] = average(total, number)

    first = values(Ticket.first_response_at, Ticket.first_response_minutes, grouping)
    await averages("first_answer_avg_min", first)
    await _median(session, request, table, first, dialect)
    not_spam = Ticket.status != Status.SPAM.value
    await averages("resolution_avg_min", values(Ticket.resolved_at, Ticket.resolution_minutes, grouping, not_spam))
    # Replies carry their own answer time; by agent, a reply counts for its author.
    await averages("answer_avg_min", values(
        Message.created_at, Message.answer_minutes, _message_group(request.by),
        Message.kind == MessageKind.REPLY.value, messages=True,
    ))


async def _median(
    session: AsyncSession, request: ReportRequest, table: _Table, spans: Select[Any], dialect: str
) -> None:
    """The median first answer per (bucket, group): the middle row(s) by window functions, in SQL."""
    inner = spans.subquery()
    bucket = _bucket_sql(inner.c.ended, request.bucket, dialect).label("bucket")
    ranked = (
        select(
            bucket,
            inner.c.g,
            inner.c.minutes,
            func.row_number().over(partition_by=[bucket, inner.c.g], order_by=inner.c.minutes).label("position"),
            func.count().over(partition_by=[bucket, inner.c.g]).label("size"),
        )
        .subquery()
    )
    # Rows (n+1)/2 and (n+2)/2 in integer division: the middle one, or the middle two to average.
    statement = (
        select(ranked.c.bucket, ranked.c.g, func.sum(ranked.c.minutes), func.count())
        .where(ranked.c.position.in_([(ranked.c.size + 1) // 2, (ranked.c.size + 2) // 2]))
        .group_by(ranked.c.bucket, ranked.c.g)
    )
    for bucket_key, group, total, number in await session.execute(statement):
        table.cells[(bucket_key, group)]["first_answer_median_min"] = average(total, number)


async def _ratings(
    session: AsyncSession,
    request: ReportRequest,
    table: _Table,
    visible: ColumnElement[bool],
    grouping: _Grouping,
    dialect: str,
) -> None:
    """Tickets resolved in the bucket by their latest rating: positive, negative or none."""
    latest = aliased(Rating)
    newest = select(func.max(latest.id)).where(latest.ticket_id == Ticket.id).correlate(Ticket).scalar_subquery()
    bucket = _bucket_sql(Ticket.resolved_at, request.bucket, dialect)
    statement = _with_tags(
        select(bucket, grouping.column, Rating.score, func.count())
        .select_from(Ticket)
        .outerjoin(Rating, Rating.id == newest),
        grouping,
    ).where(
        visible, Ticket.resolved_at >= request.start, Ticket.resolved_at < request.end,
        Ticket.status != Status.SPAM.value,
    ).group_by(bucket, grouping.column, Rating.score)
    for bucket_key, group, score, number in await session.execute(statement):
        name = "not_rated" if score is None else ("rated_positive" if score > 0 else "rated_negative")
        table.add(bucket_key, group, name, number)


async def _sla(
    session: AsyncSession,
    request: ReportRequest,
    table: _Table,
    visible: ColumnElement[bool],
    grouping: _Grouping,
    dialect: str,
) -> None:
    """Each due target counts once, in the bucket it fell due: met if done in time, else breached.

    Counted in SQL: a year of a big desk has a million due targets, which must not come to Python.
    """
    start, end = request.start, request.end
    now = datetime.now(UTC)
    for due, done in (
        (Ticket.first_response_due, Ticket.first_response_at),
        (Ticket.resolution_due, Ticket.resolved_at),
    ):
        bucket = _bucket_sql(due, request.bucket, dialect)
        met = func.sum(case((and_(done.is_not(None), done <= due), 1), else_=0))
        # Met late, or overdue and still not met; due later and not met yet is neither, so far.
        late = or_(and_(done.is_not(None), done > due), and_(done.is_(None), due <= now))
        breached = func.sum(case((late, 1), else_=0))
        statement = (
            _with_tags(select(bucket, grouping.column, met, breached).select_from(Ticket), grouping)
            .where(visible, due >= start, due < end, Ticket.status != Status.SPAM.value)
            .group_by(bucket, grouping.column)
        )
        for bucket_key, group, met_count, breached_count in await session.execute(statement):
            if met_count:
                table.add(bucket_key, group, "sla_met", int(met_count))
            if breached_count:
                table.add(bucket_key, group, "sla_breached", int(breached_count))


async def _backlog(
    session: AsyncSession,
    request: ReportRequest,
    table: _Table,
    visible: ColumnElement[bool],
    grouping: _Grouping,
    dialect: str,
) -> None:
    """backlog(T) = tickets created by T minus tickets resolved by T (spam excluded): a running sum."""
    start, end = request.start, request.end
    not_spam = Ticket.status != Status.SPAM.value

    async def before_start(column: Any) -> dict[Any, int]:
        statement = _with_tags(select(grouping.column, func.count()).select_from(Ticket), grouping)
        statement = statement.where(visible, not_spam, column < start).group_by(grouping.column)
        return {group: number for group, number in await session.execute(statement)}

    async def per_bucket(column: Any) -> dict[tuple[str, Any], int]:
        bucket = _bucket_sql(column, request.bucket, dialect)
        statement = _with_tags(select(bucket, grouping.column, func.count()).select_from(Ticket), grouping)
        statement = statement.where(visible, not_spam, column >= start, column < end).group_by(
            bucket, grouping.column
        )
        return {(bucket_key, group): number for bucket_key, group, number in await session.execute(statement)}

    created_before, resolved_before = await before_start(Ticket.created_at), await before_start(Ticket.resolved_at)
    created, resolved = await per_bucket(Ticket.created_at), await per_bucket(Ticket.resolved_at)
    groups = set(created_before) | set(resolved_before) | {group for _, group in created} | {
        group for _, group in resolved
    }
    for group in groups:
        running = created_before.get(group, 0) - resolved_before.get(group, 0)
        for bucket_key, _ in buckets(request):
            running += created.get((bucket_key, group), 0) - resolved.get((bucket_key, group), 0)
            table.cells[(bucket_key, group)]["backlog"] = running


def iter_csv_rows(report: Report) -> Iterator[list[str]]:
    """The report as CSV rows, header first; empty cells for values that do not exist (no data)."""
    yield list(report.columns)
    for row in report.rows:
        values = row.as_dict()
        yield ["" if values[column] is None else str(values[column]) for column in report.columns]
