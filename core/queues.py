"""Reading the desk: queue pages, department counts, and a ticket with its thread and history.

Every query here carries the actor's access clause from `core.policy`, so
lists, counts, search and side panels can only ever contain the actor's
departments.
"""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeAlias

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from core.errors import BadArgument, NotFound
from core.policy import Actor, ticket_visible, visible_department_ids
from core.refs import format_ref
from core.tickets import ACTIVE_STATUSES, department_by_name, normalise_tag, parse_status
from core.views import (
    AttachmentView,
    ContactView,
    DepartmentCounts,
    EventView,
    MessageView,
    QueueFilter,
    QueuePage,
    TicketDetail,
    TicketRow,
)
from storage.keyset import BadCursor, SortKey, after, decode_cursor, encode_cursor, order_by
from storage.models import (
    Agent,
    Attachment,
    Contact,
    Department,
    Event,
    Message,
    QueueCounter,
    Tag,
    Ticket,
    TicketTag,
)
from storage.search import TextSearch, tickets_matching
from storage.types import Priority

MAX_PAGE = 500
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


def sort_keys(sort: str) -> list[SortKey]:
    match sort:
        case "updated":
            return [SortKey(Ticket.updated_at, True), SortKey(Ticket.id, True)]
        case "newest":
            return [SortKey(Ticket.id, True)]
        case "oldest":
            return [SortKey(Ticket.id, False)]
        case "priority":
            return [SortKey(Ticket.priority, True), SortKey(Ticket.id, False)]
        case "due":
            due = func.coalesce(Ticket.resolution_due, literal(_FAR_FUTURE, Ticket.resolution_due.type))
            return [SortKey(due, False), SortKey(Ticket.id, False)]
    raise BadArgument(f"{sort!r} is not a queue order; use updated, newest, oldest, priority or due.")


# The Python types of a cursor's values per order; anything else was not made by us.
_CURSOR_TYPES: dict[str, tuple[type, ...]] = {
    "updated": (datetime, int),
    "newest": (int,),
    "oldest": (int,),
    "priority": (int, int),
    "due": (datetime, int),
}


def _checked_cursor(text: str, sort: str) -> list[Any]:
    """Decode a cursor and insist its values fit this order, so no value of a wrong type reaches SQL."""
    values = decode_cursor(text)
    types = _CURSOR_TYPES[sort]
    if len(values) != len(types) or not all(
        isinstance(value, kind)
        and not isinstance(value, bool)
        and (not isinstance(value, datetime) or value.tzinfo is not None)
        and (not isinstance(value, int) or -(2**63) <= value < 2**63)
        for value, kind in zip(values, types, strict=True)
    ):
        raise BadCursor("cursor values do not fit this order")
    return values


def _row_values(ticket: Ticket, sort: str) -> list[Any]:
    match sort:
        case "updated":
            return [ticket.updated_at, ticket.id]
        case "newest" | "oldest":
            return [ticket.id]
        case "priority":
            return [ticket.priority, ticket.id]
        case _:
            return [ticket.resolution_due or _FAR_FUTURE, ticket.id]


async def _agent_id(session: AsyncSession, handle: str) -> int:
    agent_id = (
        await session.execute(select(Agent.id).where(Agent.handle == handle.strip().lower()))
    ).scalar_one_or_none()
    if agent_id is None:
        raise NotFound(f"There is no agent {handle!r}; list them with `termdesk agent list`.")
    return agent_id


async def visible_department(session: AsyncSession, actor: Actor, name: str) -> Department:
    """A department the actor is a member of; others answer like missing ones."""
    department = await department_by_name(session, name)
    member = await session.execute(
        select(Department.id).where(
            Department.id == department.id, Department.id.in_(visible_department_ids(actor))
        )
    )
    if member.first() is None:
        raise NotFound(f"No department named {name!r} exists; list them with `termdesk department list`.")
    return department


def attachment_view(attachment: Attachment) -> AttachmentView:
    return AttachmentView(
        id=attachment.id,
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
    )


# Tickets with their department, contact email and name, and assignee handle (outer join: may be NULL).
RowQuery: TypeAlias = "Select[Ticket, str, str, str, str | None]"


def row_query() -> RowQuery:
    return (
        select(Ticket, Department.name, Contact.email, Contact.name, Agent.handle)
        .join(Department, Department.id == Ticket.department_id)
        .join(Contact, Contact.id == Ticket.contact_id)
        .outerjoin(Agent, Agent.id == Ticket.assignee_id)
    )


async def ticket_rows(session: AsyncSession, query: RowQuery, prefix: str) -> list[TicketRow]:
    result = (await session.execute(query)).all()
    tags: dict[int, list[str]] = defaultdict(list)
    ids = [ticket.id for ticket, *_ in result]
    if ids:
        tag_rows = await session.execute(
            select(TicketTag.ticket_id, Tag.name)
            .join(Tag, Tag.id == TicketTag.tag_id)
            .where(TicketTag.ticket_id.in_(ids))
            .order_by(Tag.name)
        )
        for ticket_id, name in tag_rows:
            tags[ticket_id].append(name)
    return [
        TicketRow(
            id=ticket.id,
            ref=format_ref(prefix, ticket.id),
            subject=ticket.subject,
            department=department,
            status=ticket.status,
            priority=Priority(ticket.priority).label,
            channel=ticket.channel,
            assignee=assignee,
            contact=email,
            contact_name=contact_name,
            tags=tuple(tags[ticket.id]),
            created_at=ticket.created_at,
            updated_at=ticket.updated_at,
            first_response_due=ticket.first_response_due,
            resolution_due=ticket.resolution_due,
            message_count=ticket.message_count,
            version=ticket.version,
        )
        for ticket, department, email, contact_name, assignee in result
    ]


async def queue_page(
    session: AsyncSession, actor: Actor, dialect: str, prefix: str, wanted: QueueFilter
) -> QueuePage:
    """One page of a queue, in `wanted.sort` order with a keyset cursor; text search reads differently.

    When `wanted.text` holds a term of three characters or more, the page is
    ordered newest matching entry first and `wanted.sort` is ignored: a
    ticket's place is its newest message whose body holds every such term,
    and a subject holding them counts as a match at the ticket's first
    message. Each ticket appears once, at that place, and the cursor goes on
    from where the walk over the matches stopped, with no repeats or gaps.
    Matches written after the first page was read are left out of that
    paging (they show when the search starts again). Shorter terms narrow
    the result further; a text of short terms only keeps `wanted.sort`.
    """
    if not 1 <= wanted.limit <= MAX_PAGE:
        raise BadArgument(f"A page holds 1 to {MAX_PAGE} tickets; {wanted.limit} is out of range.")
    keys = sort_keys(wanted.sort)
    clauses = await _filter_clauses(session, actor, wanted)
    search = TextSearch.parse(dialect, wanted.text or "")
    if search.walkable and wanted.backward:
        raise BadArgument("A text search is read newest match first and cannot be read from its end; page forward.")
    if search.walkable:
        return await _search_page(session, prefix, wanted, clauses, search)
    query = row_query().where(*clauses)
    if search.terms:
        query = query.where(tickets_matching(dialect, wanted.text or ""))
    if wanted.backward:
        return await _backward_page(session, prefix, wanted, keys, query)
    if wanted.cursor:
        try:
            query = query.where(after(keys, _checked_cursor(wanted.cursor, wanted.sort)))
        except BadCursor:
            raise _bad_cursor() from None
    query = order_by(query, keys).limit(wanted.limit + 1)
    rows = await ticket_rows(session, query, prefix)
    next_cursor = None
    if len(rows) > wanted.limit:
        rows = rows[: wanted.limit]
        last = await session.get(Ticket, rows[-1].id)
        assert last is not None
        next_cursor = encode_cursor(_row_values(last, wanted.sort))
    return QueuePage(rows=tuple(rows), next_cursor=next_cursor)


async def _backward_page(
    session: AsyncSession, prefix: str, wanted: QueueFilter, keys: list[SortKey], query: RowQuery
) -> QueuePage:
    """The page ending just before `wanted.cursor` (the queue's last page without one), by the reversed order.

    The same keyset, walked from the other end: one indexed read of a page
    whatever the queue's length, where reaching the end forwards would read
    every page before it (10,000 round trips at a million tickets).
    """
    reverse = [SortKey(key.column, not key.descending) for key in keys]
    if wanted.cursor:
        try:
            query = query.where(after(reverse, _checked_cursor(wanted.cursor, wanted.sort)))
        except BadCursor:
            raise _bad_cursor() from None
    rows = await ticket_rows(session, order_by(query, reverse).limit(wanted.limit + 1), prefix)
    previous_cursor = None
    if len(rows) > wanted.limit:
        rows = rows[: wanted.limit]
        first = await session.get(Ticket, rows[-1].id)
        assert first is not None
        previous_cursor = encode_cursor(_row_values(first, wanted.sort))
    rows.reverse()
    next_cursor = None
    if wanted.cursor and rows:
        last = await session.get(Ticket, rows[-1].id)
        assert last is not None
        next_cursor = encode_cursor(_row_values(last, wanted.sort))
    return QueuePage(rows=tuple(rows), next_cursor=next_cursor, previous_cursor=previous_cursor)


def _bad_cursor() -> BadArgument:
    return BadArgument("The page cursor is not valid for this queue; start again without a cursor.")


async def _filter_clauses(session: AsyncSession, actor: Actor, wanted: QueueFilter) -> list[ColumnElement[bool]]:
    """WHERE clauses on `tickets` for everything but the text: access first, then each filter."""
    clauses: list[ColumnElement[bool]] = [ticket_visible(actor)]
    if wanted.department:
        department = await visible_department(session, actor, wanted.department)
        clauses.append(Ticket.department_id == department.id)
    if wanted.statuses:
        clauses.append(Ticket.status.in_([parse_status(status).value for status in wanted.statuses]))
    if wanted.unassigned:
        clauses.append(Ticket.assignee_id.is_(None))
    elif wanted.assignee:
        clauses.append(Ticket.assignee_id == await _agent_id(session, wanted.assignee))
    if wanted.tag:
        tag = normalise_tag(wanted.tag)
        clauses.append(
            Ticket.id.in_(select(TicketTag.ticket_id).join(Tag, Tag.id == TicketTag.tag_id).where(Tag.name == tag))
        )
    return clauses


# Text search: walk the hits newest first (see queue_page and storage.search).
#
# The walk merges two streams, each read in chunks by id descending: body hits
# (messages, position = message id) and subject hits (tickets, position =
# ticket id, compared with body hits at the ticket's first message). Each
# ticket is shown once, at its first hit in that merged order, i.e. at its
# newest matching entry. A cursor records the walked region, everything the
# earlier pages consumed: body hits with id in [message_from, message_top] and
# subject hits with ticket id in [subject_from, subject_top]. The tops are the
# newest ids when the first page was read, so entries written while the user
# pages neither appear nor hide a ticket. A later page skips every ticket with
# a hit in the walked region: it was shown there already, or it fails the
# filters; so no ticket appears twice and none is skipped. (Tickets are made
# with their first message in one transaction, so first-message ids grow with
# ticket ids and the merge is exactly newest first; should two PostgreSQL
# transactions interleave their ids, only the order shifts by those few.)
#
# When a page needs more than WALK_BUDGET hits (filters that exclude almost
# every hit), the page and all later ones are answered by the set plan
# instead: every hit outside the walked region, grouped by ticket, ordered by
# the same position, paged by (position, ticket id).
WALK_FIRST_CHUNK = 500
WALK_MAX_CHUNK = 8_000
WALK_BUDGET = 40_000  # hits read by one page before it falls back to the set plan
_WALK = "w"
_REST = "r"
_MAX_ID = 2**63 - 1


@dataclass
class _Walked:
    """Where a text search stands: the region walked by earlier pages (see the comment above)."""

    message_top: int
    subject_top: int
    message_from: int
    subject_from: int

    @property
    def values(self) -> list[int]:
        return [self.message_top, self.subject_top, self.message_from, self.subject_from]


@dataclass
class _Stream:
    """One stream of hits (body or subject), fetched lazily in growing chunks, newest first."""

    fetch_below: int
    top: int
    size: int
    done: bool = False
    buffer: deque[tuple[int, int, int | None]] = field(default_factory=deque)  # (order key, position, ticket id)

    def head_key(self) -> int | None:
        return self.buffer[0][0] if self.buffer else None


def _decode_search_cursor(text: str | None) -> tuple[str, _Walked | None, tuple[int, int] | None]:
    """(kind, walked region, set-plan keyset) from a text-search cursor; BadArgument when it is not one."""
    if not text:
        return _WALK, None, None
    try:
        values = decode_cursor(text)
    except BadCursor:
        raise _bad_cursor() from None
    if not values or values[0] not in (_WALK, _REST):
        raise _bad_cursor()
    kind, numbers = values[0], values[1:]
    if len(numbers) != (4 if kind == _WALK else 6) or not all(
        isinstance(value, int) and not isinstance(value, bool) and 0 <= value < _MAX_ID for value in numbers
    ):
        raise _bad_cursor()
    walked = _Walked(*numbers[:4])
    if walked.message_from > walked.message_top + 1 or walked.subject_from > walked.subject_top + 1:
        raise _bad_cursor()
    keyset = (numbers[4], numbers[5]) if kind == _REST else None
    return kind, walked, keyset


async def _search_page(
    session: AsyncSession,
    prefix: str,
    wanted: QueueFilter,
    clauses: list[ColumnElement[bool]],
    search: TextSearch,
) -> QueuePage:
    kind, walked, keyset = _decode_search_cursor(wanted.cursor)
    filters = [*clauses, search.short_terms_clause()]
    if walked is None:
        message_top = (await session.execute(select(func.coalesce(func.max(Message.id), 0)))).scalar_one()
        subject_top = (await session.execute(select(func.coalesce(func.max(Ticket.id), 0)))).scalar_one()
        walked = _Walked(message_top, subject_top, message_top + 1, subject_top + 1)
    if kind == _WALK:
        found = await _walk(session, wanted.limit, filters, search, walked, excluding=wanted.cursor is not None)
        if found is not None:
            ids, cut = found
            next_cursor = encode_cursor([_WALK, *cut.values]) if cut is not None else None
            return QueuePage(rows=tuple(await _rows_in_order(session, prefix, ids)), next_cursor=next_cursor)
        keyset = (_MAX_ID, 0)  # the walk gave up: the set plan from where the earlier pages stopped
    assert keyset is not None
    return await _set_plan_page(session, prefix, wanted.limit, filters, search, walked, keyset)


async def _walk(
    session: AsyncSession,
    limit: int,
    filters: list[ColumnElement[bool]],
    search: TextSearch,
    walked: _Walked,
    *,
    excluding: bool,
) -> tuple[list[int], _Walked | None] | None:
    """Ticket ids of the page in order and the region walked up to its last row; None when over budget."""
    first = max(WALK_FIRST_CHUNK, 4 * (limit + 1))
    messages = _Stream(walked.message_from, walked.message_top, first)
    subjects = _Stream(walked.subject_from, walked.subject_top, first)
    passes: dict[int, bool] = {}  # ticket id -> passes the access clause and the filters
    decided: set[int] = set()  # tickets shown on this page or skipped
    shown_before: dict[int, bool] = {}  # ticket id -> has a hit in the region earlier pages walked
    ids: list[int] = []
    cuts: list[_Walked] = []
    position = _Walked(*walked.values)
    read = 0
    while len(ids) <= limit:
        for stream, is_body in ((messages, True), (subjects, False)):
            if stream.buffer or stream.done:
                continue
            if read >= WALK_BUDGET:
                return None
            read += await _fetch(session, stream, search, is_body, filters, passes)
        if not messages.buffer and not subjects.buffer:
            break
        body_key, subject_key = messages.head_key(), subjects.head_key()
        if subject_key is None or (body_key is not None and body_key >= subject_key):
            _, hit_position, ticket_id = messages.buffer.popleft()
            position.message_from = hit_position
        else:
            _, hit_position, ticket_id = subjects.buffer.popleft()
            position.subject_from = hit_position
        if ticket_id is None or ticket_id in decided:
            continue
        decided.add(ticket_id)
        if not passes.get(ticket_id, False):
            continue
        if excluding:
            if ticket_id not in shown_before:
                # Ask for this ticket and the next candidates in the buffers at once.
                want = 2 * (limit + 1 - len(ids))
                batch = [ticket_id, *_upcoming(messages, subjects, passes, decided, shown_before, want)]
                found = await session.execute(
                    select(Ticket.id).where(Ticket.id.in_(batch), _walked_hit(search, walked))
                )
                hits = set(found.scalars())
                shown_before.update((candidate, candidate in hits) for candidate in batch)
            if shown_before[ticket_id]:
                continue
        ids.append(ticket_id)
        cuts.append(_Walked(*position.values))
    if len(ids) > limit:
        return ids[:limit], cuts[limit - 1]
    return ids, None


async def _fetch(
    session: AsyncSession,
    stream: _Stream,
    search: TextSearch,
    is_body: bool,
    filters: list[ColumnElement[bool]],
    passes: dict[int, bool],
) -> int:
    """Read the next chunk of a stream and which of its tickets pass the filters; returns the hits read."""
    rows: list[tuple[int, int, int | None]]  # as _Stream.buffer holds them
    if is_body:
        query = search.message_hits(below=stream.fetch_below, top=stream.top, limit=stream.size)
        rows = [(message_id, message_id, ticket_id) for message_id, ticket_id in await session.execute(query)]
    else:
        subjects = search.subject_hits(below=stream.fetch_below, top=stream.top, limit=stream.size)
        rows = [(first or 0, ticket_id, ticket_id) for ticket_id, first in await session.execute(subjects)]
    rows.sort(key=lambda row: row[1], reverse=True)
    if len(rows) < stream.size:
        stream.done = True
    if rows:
        stream.fetch_below = rows[-1][1]
    stream.buffer.extend(rows)
    stream.size = min(stream.size * 2, WALK_MAX_CHUNK)
    unknown = sorted({ticket_id for _, _, ticket_id in rows if ticket_id is not None and ticket_id not in passes})
    if unknown:
        passing = set((await session.execute(select(Ticket.id).where(Ticket.id.in_(unknown), *filters))).scalars())
        passes.update((ticket_id, ticket_id in passing) for ticket_id in unknown)
    return len(rows)


def _upcoming(
    messages: _Stream, subjects: _Stream, passes: dict[int, bool], decided: set[int], known: dict[int, bool], want: int
) -> list[int]:
    """Up to `want` tickets from the head of each buffer that may be shown and are not checked yet."""
    found: list[int] = []
    for stream in (messages, subjects):
        taken = 0
        for _, _, ticket_id in stream.buffer:
            if taken >= want:
                break
            if ticket_id is None or ticket_id in decided or ticket_id in known or not passes.get(ticket_id, False):
                continue
            if ticket_id not in found:
                found.append(ticket_id)
                taken += 1
    return found


def _walked_hit(search: TextSearch, walked: _Walked) -> ColumnElement[bool]:
    """The ticket has a hit in the region earlier pages walked (so it was shown there, or filtered out)."""
    return search.hit_between(
        message_from=walked.message_from,
        subject_from=walked.subject_from,
        message_top=walked.message_top,
        subject_top=walked.subject_top,
    )


async def _set_plan_page(
    session: AsyncSession,
    prefix: str,
    limit: int,
    filters: list[ColumnElement[bool]],
    search: TextSearch,
    walked: _Walked,
    keyset: tuple[int, int],
) -> QueuePage:
    """The walk's fallback: every hit outside the walked region at once, grouped by ticket, newest first."""
    keyed = search.keyed_hits(message_below=walked.message_from, subject_below=walked.subject_from).subquery()
    position, before_id = keyset
    query = (
        select(Ticket.id, keyed.c.position)
        .join(keyed, keyed.c.ticket_id == Ticket.id)
        .where(
            *filters,
            ~_walked_hit(search, walked),
            or_(keyed.c.position < position, and_(keyed.c.position == position, Ticket.id < before_id)),
        )
        .order_by(keyed.c.position.desc(), Ticket.id.desc())
        .limit(limit + 1)
    )
    found = (await session.execute(query)).all()
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        last_id, last_position = found[-1]
        next_cursor = encode_cursor([_REST, *walked.values, last_position, last_id])
    rows = await _rows_in_order(session, prefix, [ticket_id for ticket_id, _ in found])
    return QueuePage(rows=tuple(rows), next_cursor=next_cursor)


async def _rows_in_order(session: AsyncSession, prefix: str, ids: Sequence[int]) -> list[TicketRow]:
    if not ids:
        return []
    rows = {row.id: row for row in await ticket_rows(session, row_query().where(Ticket.id.in_(ids)), prefix)}
    return [rows[ticket_id] for ticket_id in ids if ticket_id in rows]


async def visible_departments(session: AsyncSession, actor: Actor) -> list[tuple[int, str, str]]:
    """The actor's active departments as (id, name, slug), by name."""
    rows = await session.execute(
        select(Department.id, Department.name, Department.slug)
        .where(Department.id.in_(visible_department_ids(actor)), Department.active.is_(True))
        .order_by(Department.name)
    )
    return [(department_id, name, slug) for department_id, name, slug in rows]


async def counter_totals(session: AsyncSession, ids: Sequence[int]) -> dict[int, dict[str, int]]:
    """Per department id: tickets by status and the unassigned active ones, from the queue counters
    (kept by every change, so no GROUP BY over the tickets)."""
    counts: dict[int, dict[str, int]] = {department_id: defaultdict(int) for department_id in ids}
    counter_rows = await session.execute(
        select(QueueCounter.department_id, QueueCounter.status, QueueCounter.assigned, QueueCounter.count).where(
            QueueCounter.department_id.in_(ids)
        )
    )
    active = {status.value for status in ACTIVE_STATUSES}
    for department_id, status, assigned, count in counter_rows:
        counts[department_id][status] += count
        if not assigned and status in active:
            counts[department_id]["unassigned"] += count
    return counts


async def department_counts(session: AsyncSession, actor: Actor) -> list[DepartmentCounts]:
    """Per department of the actor: tickets by status, unassigned and mine — from the counters."""
    departments = await visible_departments(session, actor)
    ids = [department_id for department_id, _, _ in departments]
    counts = await counter_totals(session, ids)
    active = {status.value for status in ACTIVE_STATUSES}
    if actor.id is not None and ids:
        mine = await session.execute(
            select(Ticket.department_id, func.count())
            .where(Ticket.assignee_id == actor.id, Ticket.status.in_(active), Ticket.department_id.in_(ids))
            .group_by(Ticket.department_id)
        )
        for department_id, count in mine:
            counts[department_id]["mine"] = count
    return [
        DepartmentCounts(
            department=name,
            slug=slug,
            new=counts[department_id]["new"],
            open=counts[department_id]["open"],
            pending=counts[department_id]["pending"],
            resolved=counts[department_id]["resolved"],
            closed=counts[department_id]["closed"],
            spam=counts[department_id]["spam"],
            unassigned=counts[department_id]["unassigned"],
            mine=counts[department_id]["mine"],
        )
        for department_id, name, slug in departments
    ]


async def ticket_detail(
    session: AsyncSession, actor: Actor, prefix: str, ticket: Ticket, *, other_limit: int = 20
) -> TicketDetail:
    """The thread, the history and the contact panel of a ticket the actor may see."""
    [row] = await ticket_rows(session, row_query().where(Ticket.id == ticket.id), prefix)
    contact = await session.get(Contact, ticket.contact_id)
    assert contact is not None
    author_agent = aliased(Agent)
    author_contact = aliased(Contact)
    message_rows = (
        await session.execute(
            select(Message, author_agent.handle, author_contact.email)
            .outerjoin(author_agent, author_agent.id == Message.author_agent_id)
            .outerjoin(author_contact, author_contact.id == Message.author_contact_id)
            .where(Message.ticket_id == ticket.id)
            .order_by(Message.id)
        )
    ).all()
    attachments: dict[int, list[AttachmentView]] = defaultdict(list)
    attachment_rows = await session.execute(
        select(Attachment)
        .join(Message, Message.id == Attachment.message_id)
        .where(Message.ticket_id == ticket.id)
        .order_by(Attachment.id)
    )
    for attachment in attachment_rows.scalars():
        attachments[attachment.message_id].append(attachment_view(attachment))
    messages = tuple(
        MessageView(
            id=message.id,
            kind=message.kind,
            author=agent_handle or contact_email or "system",
            body=message.body_text,
            body_html=message.body_html,
            created_at=message.created_at,
            message_id=message.message_id,
            delivery_status=message.delivery_status,
            attachments=tuple(attachments[message.id]),
        )
        for message, agent_handle, contact_email in message_rows
    )
    event_rows = await session.execute(
        select(Event, Agent.handle)
        .outerjoin(Agent, Agent.id == Event.actor_id)
        .where(Event.ticket_id == ticket.id)
        .order_by(Event.id)
    )
    history = tuple(
        EventView(
            id=event.id,
            kind=event.kind,
            actor=handle or event.data.get("by"),
            at=event.at,
            ticket_ref=row.ref,
            data=event.data,
        )
        for event, handle in event_rows
    )
    others = await ticket_rows(
        session,
        row_query()
        .where(Ticket.contact_id == contact.id, Ticket.id != ticket.id, ticket_visible(actor))
        .order_by(Ticket.id.desc())
        .limit(other_limit),
        prefix,
    )
    return TicketDetail(
        ticket=row,
        contact=ContactView(
            id=contact.id,
            email=contact.email,
            name=contact.name,
            attributes=dict(contact.attributes or {}),
            notes=contact.notes,
        ),
        messages=messages,
        events=history,
        other_tickets=tuple(others),
    )
