"""Reports from a cache of per-day partials, kept honest by triggers that mark every day a change touches.

A report over whole UTC days is the sum of its days. For each grouping, whole *past* days are computed once
from the base tables (the same SQL as `core.reports.metrics`, bucketed by day and grouped per department so
access can be applied when reading) and stored in `report_day_cells`: counts, sum/count pairs for the
averages, and the sorted first-answer minutes for the median. Migration 0009's triggers insert the UTC day of
every moment a changed ticket, message, tag or rating contributes to into `report_dirty_days`, in the same
transaction as the change, from every write path (core, storage.bulk, the rules, mail intake).

Reading never trusts a marked day: within one read snapshot, today, later days, marked days and days not
cached yet are computed live from the base tables (not stored); only unmarked cached past days come from the
cache. Before the read, `drop_marked` (a short write transaction) drops the cells of marked days,
`compute_missing` (a read transaction) computes the missing past days, and `store` (a short write
transaction) keeps those of them no change has marked meanwhile, so the next read finds them. Marks another
refresher dropped meanwhile count too: `drop_marked` logs the past days it drops (`report_dropped_days`),
and `store` leaves out every day logged after its computation began. SLA "overdue
and not met" cannot change for a past day without a write (every target of that day is already due), which
is why past days may be cached at all.

A range that does not start and end at UTC midnight is not served here (`covers` is False): the caller uses
the base SQL for the whole report.

`warm` fills the missing past days of every grouping over a window (`[reports] warm_days`), a week at a
time computed in a read transaction and stored one day per short write transaction, so the first report
of a grouping does not pay for a cold cache. `termdesk serve`'s scheduler runs it at start and after each UTC
midnight (core.scheduler), `termdesk check --warm` on demand.
"""

from __future__ import annotations

import asyncio
import json
from array import array
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession

from core.policy import Actor, ticket_visible, visible_department_ids
from core.reports import metrics
from core.reports.metrics import Report, ReportRequest, _Grouping, _Table
from storage.database import Database
from storage.models import Message, Ticket
from storage.report_cache import report_cached_days, report_day_cells, report_dirty_days, report_dropped_days
from storage.types import MessageKind, Status

# The averages' (sum, count) pairs: (metric, payload prefix).
_AVERAGES = (
    ("first_answer_avg_min", "first_answer"),
    ("resolution_avg_min", "resolution"),
    ("answer_avg_min", "answer"),
)
_MEDIAN = "first_answer_median_min"
_REFRESH_LOCK = 700710  # pg_advisory_xact_lock key: one refresher at a time on PostgreSQL
# Days the warm-up computes per read transaction (each then stored one day per write): on a 1M-ticket desk
# (8,000 tickets a day) a week is a few seconds of reading, which keeps SQLite's WAL from growing long.
WARM_CHUNK_DAYS = 7
_DROPPED_KEPT = 10_000  # rows of the dropped-days log kept; a computation older than all of them stores nothing


def covers(request: ReportRequest) -> bool:
    """Whether the range is whole UTC days (the cache holds days; partial days go to the base SQL)."""
    return all(
        moment.astimezone(UTC).timetz().replace(tzinfo=None) == time(0) for moment in (request.start, request.end)
    )


def _days(request: ReportRequest) -> list[date]:
    first, last = request.start.astimezone(UTC).date(), request.end.astimezone(UTC).date()
    return [first + timedelta(days=n) for n in range((last - first).days)]


def _today() -> date:
    return datetime.now(UTC).date()


def _runs(days: list[date]) -> list[tuple[date, date]]:
    """Sorted days as [start, end) runs of consecutive days."""
    runs: list[tuple[date, date]] = []
    for day in sorted(days):
        if runs and runs[-1][1] == day:
            runs[-1] = (runs[-1][0], day + timedelta(days=1))
        else:
            runs.append((day, day + timedelta(days=1)))
    return runs


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


# -- computing days from the base tables --------------------------------------


async def compute_days(
    session: AsyncSession, by: str, first: date, end: date, dialect: str
) -> dict[tuple[str, int, str], tuple[dict[str, float | int], list[float]]]:
    """Every (day, department, group key) cell of [first, end) over the whole desk: payload and sorted minutes."""
    request = ReportRequest(_midnight(first), _midnight(end), by=by, bucket="day")
    table = _Table()
    visible = true()
    tickets_group = metrics._ticket_group(by, per_department=True)
    messages_group = metrics._message_group(by, per_department=True)
    await metrics._counts(
        session, request, table, visible, tickets_group, messages_group, dialect, created_not_spam=True
    )
    await metrics._sla(session, request, table, visible, tickets_group, dialect)
    await metrics._ratings(session, request, table, visible, tickets_group, dialect)
    not_spam = Ticket.status != Status.SPAM.value
    spans: list[tuple[str, Any, Any, _Grouping, tuple[ColumnElement[bool], ...], bool]] = [
        ("first_answer", Ticket.first_response_at, Ticket.first_response_minutes, tickets_group, (), False),
        ("resolution", Ticket.resolved_at, Ticket.resolution_minutes, tickets_group, (not_spam,), False),
        (
            "answer",
            Message.created_at,
            Message.answer_minutes,
            messages_group,
            (Message.kind == MessageKind.REPLY.value,),
            True,
        ),
    ]
    for prefix, moment, minutes, grouping, where, messages in spans:
        bucket = metrics._bucket_sql(moment, "day", dialect)
        statement = select(bucket, grouping.column, func.sum(minutes), func.count(minutes))
        statement = (
            statement.select_from(Message).join(Ticket, Ticket.id == Message.ticket_id)
            if messages
            else (statement.select_from(Ticket))
        )
        statement = (
            metrics._with_tags(statement, grouping)
            .where(moment >= request.start, moment < request.end, minutes.is_not(None), *where)
            .group_by(bucket, grouping.column)
        )
        for day, group, total, number in await session.execute(statement):
            table.add(day, group, f"{prefix}_sum", float(total))
            table.add(day, group, f"{prefix}_n", int(number))
    lists: dict[tuple[str, Any], list[float]] = defaultdict(list)
    bucket = metrics._bucket_sql(Ticket.first_response_at, "day", dialect)
    statement = metrics._with_tags(
        select(bucket, tickets_group.column, Ticket.first_response_minutes).select_from(Ticket), tickets_group
    ).where(
        Ticket.first_response_at >= request.start,
        Ticket.first_response_at < request.end,
        Ticket.first_response_minutes.is_not(None),
    )
    for day, group, value in await session.execute(statement):
        lists[(day, group)].append(float(value))
    cells: dict[tuple[str, int, str], tuple[dict[str, float | int], list[float]]] = {}
    for (day, group), values in table.cells.items():
        department, _, key = str(group).partition(":")
        cells[(day, int(department), key)] = (
            {name: value for name, value in values.items() if value is not None},
            sorted(lists.get((day, group), [])),
        )
    return cells


# -- keeping the cache ---------------------------------------------------------


Cells = dict[tuple[str, int, str], tuple[dict[str, float | int], list[float]]]


async def drop_marked(session: AsyncSession, dialect: str) -> None:
    """Drop the cells of every marked day and the marks (a short write transaction).

    The past days among them are logged in `report_dropped_days`: a computation that began before this
    drop may have read a change whose mark is gone now, and `store` must still leave that day out."""
    await _lock(session, dialect)
    marked = (await session.execute(select(report_dirty_days.c.id, report_dirty_days.c.day))).all()
    if not marked:
        return
    days = sorted({day for _, day in marked})
    await _log_dropped(session, [day for day in days if day < _today().isoformat()])
    for chunk in _chunks(days):
        await session.execute(delete(report_day_cells).where(report_day_cells.c.day.in_(chunk)))
        await session.execute(delete(report_cached_days).where(report_cached_days.c.day.in_(chunk)))
    for chunk in _chunks([number for number, _ in marked]):
        await session.execute(delete(report_dirty_days).where(report_dirty_days.c.id.in_(chunk)))


async def watermark(session: AsyncSession) -> int:
    """The newest entry of the dropped-days log: read first in a computation's read transaction, and
    handed to `store` as `since`."""
    return int((await session.execute(select(func.coalesce(func.max(report_dropped_days.c.id), 0)))).scalar_one())


async def _log_dropped(session: AsyncSession, days: list[str]) -> None:
    if not days:
        return
    for chunk in _chunks(days):
        await session.execute(insert(report_dropped_days), [{"day": day} for day in chunk])
    newest = await watermark(session)
    await session.execute(delete(report_dropped_days).where(report_dropped_days.c.id <= newest - _DROPPED_KEPT))


async def compute_missing(
    session: AsyncSession, request: ReportRequest, dialect: str
) -> tuple[list[date], Cells, int]:
    """The whole past days of the range not cached for its grouping, their cells, and the `watermark` read
    before them (a read transaction: filling a year of a big desk takes a minute, which must not hold
    SQLite's write lock)."""
    since = await watermark(session)
    today = _today()
    wanted = [day for day in _days(request) if day < today]
    if not wanted:
        return [], {}, since
    cached = await _cached(session, request.by, wanted[0], wanted[-1])
    missing = [day for day in wanted if day.isoformat() not in cached]
    cells: Cells = {}
    for first, end in _runs(missing):
        cells.update(await compute_days(session, request.by, first, end, dialect))
    return missing, cells, since


async def store(session: AsyncSession, by: str, days: list[date], cells: Cells, dialect: str, *, since: int) -> int:
    """Store computed days, except those changed since the computation began (a write transaction after
    `compute_missing`; `since` is the `watermark` it read first).

    A change the computation did not see committed after it began, and its mark with it: such a day is
    marked now, or its mark was dropped since by another refresher, which logged the day after `since`.
    Either way it is left out (and read live) rather than stored stale. When the log no longer reaches back
    to `since` (pruned), nothing is stored. Returns days stored."""
    await _lock(session, dialect)
    if not days:
        return 0
    oldest = (await session.execute(select(func.min(report_dropped_days.c.id)))).scalar()
    if oldest is not None and oldest > since + 1:
        return 0
    marked = set((await session.execute(select(report_dirty_days.c.day))).scalars())
    marked |= set(
        (await session.execute(select(report_dropped_days.c.day).where(report_dropped_days.c.id > since))).scalars()
    )
    keep = [day.isoformat() for day in days if day.isoformat() not in marked]
    kept = set(keep)
    for chunk in _chunks(keep):  # a refresher that raced us may have stored the same days: replace them
        await session.execute(
            delete(report_day_cells).where(report_day_cells.c.grouping == by, report_day_cells.c.day.in_(chunk))
        )
        await session.execute(
            delete(report_cached_days).where(report_cached_days.c.grouping == by, report_cached_days.c.day.in_(chunk))
        )
    rows = [
        {
            "grouping": by,
            "day": day,
            "department_id": department,
            "group_key": key,
            "payload": json.dumps(payload, separators=(",", ":")),
            "minutes": array("d", minutes).tobytes() if minutes else None,
        }
        for (day, department, key), (payload, minutes) in cells.items()
        if day in kept
    ]
    for start in range(0, len(rows), 500):
        await session.execute(insert(report_day_cells), rows[start : start + 500])
    for chunk in _chunks(keep):
        await session.execute(insert(report_cached_days), [{"grouping": by, "day": day} for day in chunk])
    return len(keep)


async def warm(
    db: Database,
    *,
    days: int,
    today: date | None = None,
    stop: asyncio.Event | None = None,
    chunk: int = WARM_CHUNK_DAYS,
) -> int:
    """Fill the missing past days of the `days` days before `today` for every grouping; returns the
    (grouping, day)s stored. Days before the desk's first ticket are left out (nothing to cache yet).

    Marked days are dropped first (a short write), then each grouping's missing days are computed newest
    first, `chunk` consecutive days at a time in one read transaction, and stored one day per short write
    transaction. A day a change marks meanwhile is not stored (`store`). Returns early when `stop` is set."""
    today = min(today or _today(), _today())  # a clock ahead of the real one must not store the real today
    async with db.reading() as session:
        oldest = (await session.execute(select(func.min(Ticket.created_at)))).scalar()
    if oldest is None or days <= 0:
        return 0
    first = max(today - timedelta(days=days), oldest.date())
    if first >= today:
        return 0
    async with db.writing() as session:
        await drop_marked(session, db.dialect)
    wanted = [first + timedelta(days=n) for n in range((today - first).days)]
    stored = 0
    for by in metrics.GROUPINGS:
        async with db.reading() as session:
            cached = await _cached(session, by, wanted[0], wanted[-1])
        missing = [day for day in wanted if day.isoformat() not in cached]
        pieces = [
            (start + timedelta(days=offset), min(start + timedelta(days=offset + chunk), end))
            for start, end in _runs(missing)
            for offset in range(0, (end - start).days, chunk)
        ]
        for piece_first, piece_end in reversed(pieces):  # recent weeks are the reports most asked for
            if stop is not None and stop.is_set():
                return stored
            async with db.reading() as session:
                since = await watermark(session)
                cells = await compute_days(session, by, piece_first, piece_end, db.dialect)
            for n in range((piece_end - piece_first).days):
                day = piece_first + timedelta(days=n)
                key = day.isoformat()
                async with db.writing() as session:  # one day per write: a writer waits for one day's rows at most
                    stored += await store(
                        session,
                        by,
                        [day],
                        {cell: value for cell, value in cells.items() if cell[0] == key},
                        db.dialect,
                        since=since,
                    )
    return stored


async def _lock(session: AsyncSession, dialect: str) -> None:
    """One cache writer at a time on PostgreSQL (SQLite's write transactions are serial already)."""
    if dialect == "postgresql":
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _REFRESH_LOCK})


async def forget(session: AsyncSession) -> int:
    """Empty the cache (`termdesk check --repair`): every day is computed again when next read."""
    removed = (await session.execute(select(func.count()).select_from(report_cached_days))).scalar_one()
    marked = sorted(set((await session.execute(select(report_dirty_days.c.day))).scalars()))
    await _log_dropped(session, [day for day in marked if day < _today().isoformat()])  # as drop_marked
    await session.execute(delete(report_day_cells))
    await session.execute(delete(report_cached_days))
    await session.execute(delete(report_dirty_days))
    return int(removed)


async def verify(session: AsyncSession, dialect: str) -> int:
    """How many cached (grouping, day)s differ from the base tables now (`termdesk check`); marked days are
    skipped, since reads already ignore them. Sums are compared exactly: stored minutes are multiples of 1/64
    (core.reports.durations.stored_minutes), so the order of summation cannot change them."""
    marked = set((await session.execute(select(report_dirty_days.c.day))).scalars())
    cached: dict[str, list[date]] = defaultdict(list)
    for grouping, day in await session.execute(select(report_cached_days.c.grouping, report_cached_days.c.day)):
        if day not in marked:
            cached[grouping].append(date.fromisoformat(day))
    wrong: set[tuple[str, str]] = set()
    for grouping, days in cached.items():
        stored: dict[tuple[str, int, str], tuple[dict[str, Any], list[float]]] = {}
        statement = select(
            report_day_cells.c.day,
            report_day_cells.c.department_id,
            report_day_cells.c.group_key,
            report_day_cells.c.payload,
            report_day_cells.c.minutes,
        ).where(report_day_cells.c.grouping == grouping)
        for day, department, key, payload, blob in await session.execute(statement):
            stored[(day, department, key)] = (json.loads(payload), _unpack(blob))
        wanted = {day.isoformat() for day in days}
        truth: dict[tuple[str, int, str], tuple[dict[str, Any], list[float]]] = {}
        for first, end in _runs(days):
            truth.update(await compute_days(session, grouping, first, end, dialect))
        for cell in set(stored) | set(truth):
            if cell[0] in wanted and not _same(stored.get(cell), truth.get(cell)):
                wrong.add((grouping, cell[0]))
    return len(wrong)


def _same(left: tuple[dict[str, Any], list[float]] | None, right: tuple[dict[str, Any], list[float]] | None) -> bool:
    if left is None or right is None:
        return left is right
    return left == right


def _chunks(values: list[Any], size: int = 500) -> list[list[Any]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


async def _cached(session: AsyncSession, by: str, first: date, last: date) -> set[str]:
    statement = select(report_cached_days.c.day).where(
        report_cached_days.c.grouping == by,
        report_cached_days.c.day >= first.isoformat(),
        report_cached_days.c.day <= last.isoformat(),
    )
    return set((await session.execute(statement)).scalars())


# -- reading a report ----------------------------------------------------------


async def cached_report(session: AsyncSession, actor: Actor, request: ReportRequest, dialect: str) -> Report:
    """The report from cached days plus live ones; the same numbers as `metrics.build_report`."""
    return await metrics.assemble_report(session, actor, request, await cached_table(session, actor, request, dialect))


async def cached_table(session: AsyncSession, actor: Actor, request: ReportRequest, dialect: str) -> _Table:
    """The report's values from cached days plus live ones; those of `metrics.base_table`, to the last bit."""
    days = _days(request)
    today = _today()
    first, last = days[0].isoformat(), days[-1].isoformat()
    marked = set(
        (
            await session.execute(
                select(report_dirty_days.c.day).where(report_dirty_days.c.day >= first, report_dirty_days.c.day <= last)
            )
        ).scalars()
    )
    cached = await _cached(session, request.by, days[0], days[-1]) - marked
    live = [day for day in days if day >= today or day.isoformat() not in cached]
    allowed = set((await session.execute(visible_department_ids(actor))).scalars()) if actor.is_agent else set()

    cells: list[tuple[str, str, dict[str, float | int], list[float]]] = []
    statement = select(
        report_day_cells.c.day,
        report_day_cells.c.department_id,
        report_day_cells.c.group_key,
        report_day_cells.c.payload,
        report_day_cells.c.minutes,
    ).where(report_day_cells.c.grouping == request.by, report_day_cells.c.day >= first, report_day_cells.c.day <= last)
    for day, department, key, payload, blob in await session.execute(statement):
        if day in cached and department in allowed:
            cells.append((day, key, json.loads(payload), _unpack(blob)))
    for run_first, run_end in _runs(live):
        for (day, department, key), (values, minutes) in (
            await compute_days(session, request.by, run_first, run_end, dialect)
        ).items():
            if department in allowed:
                cells.append((day, key, values, minutes))
    # By department the key is the department itself (the part before ':' equals the part after).
    table = _fold(cells, request)
    await _backlog(session, actor, request, table, dialect)
    return table


def _unpack(blob: bytes | None) -> list[float]:
    minutes = array("d")
    if blob:
        minutes.frombytes(blob)
    return minutes.tolist()


def _group(by: str, key: str) -> Any:
    if by == "channel":
        return key
    return int(key) if key else None


def _fold(cells: list[tuple[str, str, dict[str, float | int], list[float]]], request: ReportRequest) -> _Table:
    """Day cells summed into the request's buckets, averages and medians finished."""
    summed: dict[tuple[str, Any], dict[str, float | int]] = defaultdict(lambda: defaultdict(int))
    lists: dict[tuple[str, Any], list[float]] = defaultdict(list)
    for day, key, payload, minutes in cells:
        bucket = metrics.bucket_start(date.fromisoformat(day), request.bucket).isoformat()
        cell_key = (bucket, _group(request.by, key))
        target = summed[cell_key]
        for name, value in payload.items():
            target[name] += value
        if minutes:
            lists[cell_key].extend(minutes)
    table = _Table()
    for cell_key, values in summed.items():
        cell = table.cells[cell_key]
        for metric in metrics.METRIC_NAMES:
            if metric in values and not metric.endswith("_min"):
                cell[metric] = values[metric]
        for metric, prefix in _AVERAGES:
            if values.get(f"{prefix}_n"):
                cell[metric] = metrics.average(values[f"{prefix}_sum"], int(values[f"{prefix}_n"]))
        if lists.get(cell_key):
            ordered = sorted(lists[cell_key])
            size = len(ordered)
            middle = {(size + 1) // 2, (size + 2) // 2}  # 1-based, as metrics._median
            cell[_MEDIAN] = metrics.average(sum(ordered[position - 1] for position in middle), len(middle))
        cell["_created_not_spam"] = values.get("created_not_spam", 0)
    return table


async def _backlog(session: AsyncSession, actor: Actor, request: ReportRequest, table: _Table, dialect: str) -> None:
    """As metrics._backlog: the running sum, its start from the base tables, its steps from the folded days."""
    grouping = metrics._ticket_group(request.by)
    visible = ticket_visible(actor)
    not_spam = Ticket.status != Status.SPAM.value

    # Grouped by coalesce(key, NULL), the key itself: grouping by the bare column lets SQLite walk a whole
    # index in the column's order (3.8 s at a million tickets) instead of the range before the start.
    group = func.coalesce(grouping.column, None)

    async def before_start(column: Any) -> dict[Any, int]:
        statement = metrics._with_tags(select(group, func.count()).select_from(Ticket), grouping)
        statement = statement.where(visible, not_spam, column < request.start).group_by(group)
        return {group: number for group, number in await session.execute(statement)}

    created_before, resolved_before = await before_start(Ticket.created_at), await before_start(Ticket.resolved_at)
    created = {key: cell.pop("_created_not_spam", 0) for key, cell in table.cells.items()}
    resolved = {key: cell.get("resolved", 0) for key, cell in list(table.cells.items())}
    groups = (
        set(created_before)
        | set(resolved_before)
        | {group for (_, group), number in created.items() if number}
        | {group for (_, group), number in resolved.items() if number}
    )
    for group in groups:
        running = created_before.get(group, 0) - resolved_before.get(group, 0)
        for bucket_key, _ in metrics.buckets(request):
            running += int(created.get((bucket_key, group), 0) or 0) - int(resolved.get((bucket_key, group), 0) or 0)
            table.cells[(bucket_key, group)]["backlog"] = running
