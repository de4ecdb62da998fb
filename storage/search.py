"""Text search over ticket subjects and message bodies that works for every script.

Thai, Chinese or Japanese put no spaces between words, and Vietnamese splits
syllables with them, so word tokenizers fail; both back ends index trigrams
instead and search by substring. SQLite: FTS5 tables with the trigram
tokenizer (see the first migration). PostgreSQL: pg_trgm GIN indexes used by
ILIKE. Terms shorter than three characters cannot use a trigram index and
fall back to a scan in queue order, which stops at the first page of matches.

A query with at least one indexable term is answered by walking the hits
newest first (`TextSearch.message_hits` / `subject_hits`, in chunks by id
descending) instead of materialising every match: `core.queues` joins each
chunk to the tickets with the access clause and the other filters and stops
when the page is full. The set plan (`TextSearch.keyed_hits`, every match
with its ticket) remains for the walk's fallback.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Integer, Select, and_, column, exists, false, func, or_, select, table, text
from sqlalchemy.orm import aliased

from storage.database import SQLITE_CASEFOLD
from storage.models import Message, Ticket

TRIGRAM = 3


def search_terms(query: str) -> list[str]:
    """Whitespace-separated terms; a quoted phrase stays one term.

    Terms are NFC-normalised like the stored text (core normalises what it
    stores), so "hóa" typed with a combining accent still matches.
    """
    terms: list[str] = []
    for index, chunk in enumerate(unicodedata.normalize("NFC", query).split('"')):
        if index % 2:  # inside quotes
            if chunk.strip():
                terms.append(chunk.strip())
        else:
            terms.extend(chunk.split())
    return terms


def _like_pattern(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def tickets_matching(dialect: str, query: str) -> ColumnElement[bool]:
    """WHERE clause on `tickets`: every term appears in the subject or in one message body."""
    terms = search_terms(query)
    if not terms:
        return and_(True)
    long_terms = [term for term in terms if len(term) >= TRIGRAM]
    short_terms = [term for term in terms if len(term) < TRIGRAM]
    clauses: list[ColumnElement[bool]] = []
    if long_terms:
        clauses.append(_indexed_match(dialect, long_terms))
    for term in short_terms:
        clauses.append(_scan_match(dialect, term))
    return and_(*clauses)


def _indexed_match(dialect: str, terms: list[str]) -> ColumnElement[bool]:
    if dialect == "sqlite":
        phrase = " AND ".join('"' + term.replace('"', '""') + '"' for term in terms)
        in_subject = Ticket.id.in_(
            select(text("rowid"))
            .select_from(text("tickets_fts"))
            .where(text("tickets_fts MATCH :q_subject").bindparams(q_subject=phrase))
        )
        in_body = Ticket.id.in_(
            select(Message.ticket_id).where(
                Message.id.in_(
                    select(text("rowid"))
                    .select_from(text("messages_fts"))
                    .where(text("messages_fts MATCH :q_body").bindparams(q_body=phrase))
                )
            )
        )
        return in_subject | in_body
    patterns = [_like_pattern(term) for term in terms]
    subject = and_(*(Ticket.subject.ilike(pattern, escape="\\") for pattern in patterns))
    body = Ticket.id.in_(
        select(Message.ticket_id).where(*(Message.body_text.ilike(pattern, escape="\\") for pattern in patterns))
    )
    return subject | body


def _scan_match(dialect: str, term: str) -> ColumnElement[bool]:
    if dialect == "sqlite" and not term.isascii() and term.lower() != term.upper():
        # SQLite's LIKE folds ASCII letters only: fold both sides with the function storage.database
        # registers on every connection (Cyrillic "ОШ" must find "ош").
        casefold = getattr(func, SQLITE_CASEFOLD)
        pattern = _like_pattern(term.casefold())
        return casefold(Ticket.subject).like(pattern, escape="\\") | exists(
            select(Message.id).where(
                Message.ticket_id == Ticket.id, casefold(Message.body_text).like(pattern, escape="\\")
            )
        )
    pattern = _like_pattern(term)
    operator = Ticket.subject.like if dialect == "sqlite" else Ticket.subject.ilike
    body_operator = Message.body_text.like if dialect == "sqlite" else Message.body_text.ilike
    return operator(pattern, escape="\\") | exists(
        select(Message.id).where(Message.ticket_id == Ticket.id, body_operator(pattern, escape="\\"))
    )


# The FTS5 tables of the first migration; rowid is the message id / the ticket id.
_MESSAGES_FTS = table("messages_fts", column("rowid", Integer), column("messages_fts"))
_TICKETS_FTS = table("tickets_fts", column("rowid", Integer), column("tickets_fts"))


@dataclass(frozen=True)
class TextSearch:
    """A parsed search text and the SQL pieces of the newest-first walk over its hits.

    A *hit* is a message whose body holds every indexable term (its position is
    the message id) or a ticket whose subject holds them all (its position is
    the ticket id; for ordering it counts at the ticket's first message).
    Terms shorter than three characters never drive the walk: they narrow the
    tickets like any other filter (`short_terms_clause`).
    """

    dialect: str
    terms: tuple[str, ...]

    @classmethod
    def parse(cls, dialect: str, query: str) -> TextSearch:
        return cls(dialect, tuple(search_terms(query)))

    @property
    def long_terms(self) -> list[str]:
        return [term for term in self.terms if len(term) >= TRIGRAM]

    @property
    def short_terms(self) -> list[str]:
        return [term for term in self.terms if len(term) < TRIGRAM]

    @property
    def walkable(self) -> bool:
        """True when an index can list the hits newest first (a term of three characters or more)."""
        return bool(self.long_terms)

    def _phrase(self) -> str:
        return " AND ".join('"' + term.replace('"', '""') + '"' for term in self.long_terms)

    def _patterns(self) -> list[str]:
        return [_like_pattern(term) for term in self.long_terms]

    def short_terms_clause(self) -> ColumnElement[bool]:
        """WHERE clause on `tickets` for the short terms (a scan per ticket); true when there are none."""
        return and_(True, *(_scan_match(self.dialect, term) for term in self.short_terms))

    def message_hits(self, *, below: int, top: int, limit: int) -> Select[int, int | None]:
        """(message id, ticket id) of the newest `limit` body hits with id < below and id <= top."""
        if self.dialect == "sqlite":
            chunk = (
                select(_MESSAGES_FTS.c.rowid.label("id"))
                .where(_MESSAGES_FTS.c.messages_fts.op("MATCH")(self._phrase()))
                .where(_MESSAGES_FTS.c.rowid < below, _MESSAGES_FTS.c.rowid <= top)
                .order_by(_MESSAGES_FTS.c.rowid.desc())
                .limit(limit)
                .subquery()
            )
            return select(chunk.c.id, Message.ticket_id).outerjoin(Message, Message.id == chunk.c.id)
        return (
            select(Message.id, Message.ticket_id)
            .where(*(Message.body_text.ilike(pattern, escape="\\") for pattern in self._patterns()))
            .where(Message.id < below, Message.id <= top)
            .order_by(Message.id.desc())
            .limit(limit)
        )

    def subject_hits(self, *, below: int, top: int, limit: int) -> Select[int, int | None]:
        """(ticket id, id of its first message) of the newest `limit` subject hits with id < below, <= top."""
        first_message = (
            select(func.min(Message.id)).where(Message.ticket_id == Ticket.id).scalar_subquery()
        )
        if self.dialect == "sqlite":
            chunk = (
                select(_TICKETS_FTS.c.rowid.label("id"))
                .where(_TICKETS_FTS.c.tickets_fts.op("MATCH")(self._phrase()))
                .where(_TICKETS_FTS.c.rowid < below, _TICKETS_FTS.c.rowid <= top)
                .order_by(_TICKETS_FTS.c.rowid.desc())
                .limit(limit)
                .subquery()
            )
            return select(chunk.c.id, first_message).outerjoin(Ticket, Ticket.id == chunk.c.id)
        return (
            select(Ticket.id, first_message)
            .where(*(Ticket.subject.ilike(pattern, escape="\\") for pattern in self._patterns()))
            .where(Ticket.id < below, Ticket.id <= top)
            .order_by(Ticket.id.desc())
            .limit(limit)
        )

    def hit_between(
        self, *, message_from: int, subject_from: int, message_top: int, subject_top: int
    ) -> ColumnElement[bool]:
        """WHERE clause on `tickets`: the ticket has a hit inside a walked region.

        The region is the body hits with message id in [message_from,
        message_top] and the subject hits with ticket id in [subject_from,
        subject_top]. SQLite lists the region's hits once (FTS5 reads only that
        rowid range) rather than probing the index per message; PostgreSQL
        tests the rows themselves.
        """
        clauses: list[ColumnElement[bool]] = []
        patterns = self._patterns()
        if message_from <= message_top:
            other = aliased(Message)
            if self.dialect == "sqlite":
                body_hit: ColumnElement[bool] = other.id.in_(
                    select(_MESSAGES_FTS.c.rowid).where(
                        _MESSAGES_FTS.c.messages_fts.op("MATCH")(self._phrase()),
                        _MESSAGES_FTS.c.rowid >= message_from,
                        _MESSAGES_FTS.c.rowid <= message_top,
                    )
                )
            else:
                body_hit = and_(*(other.body_text.ilike(pattern, escape="\\") for pattern in patterns))
            clauses.append(
                exists(
                    select(other.id).where(
                        other.ticket_id == Ticket.id, other.id >= message_from, other.id <= message_top, body_hit
                    )
                )
            )
        if subject_from <= subject_top:
            if self.dialect == "sqlite":
                subject_hit: ColumnElement[bool] = Ticket.id.in_(
                    select(_TICKETS_FTS.c.rowid).where(
                        _TICKETS_FTS.c.tickets_fts.op("MATCH")(self._phrase()),
                        _TICKETS_FTS.c.rowid >= subject_from,
                        _TICKETS_FTS.c.rowid <= subject_top,
                    )
                )
            else:
                subject_hit = and_(*(Ticket.subject.ilike(pattern, escape="\\") for pattern in patterns))
            clauses.append(and_(Ticket.id >= subject_from, Ticket.id <= subject_top, subject_hit))
        if not clauses:
            return false()
        return or_(*clauses)

    def keyed_hits(self, *, message_below: int, subject_below: int) -> Select[Any]:
        """The set plan: (ticket id, position of its newest hit) over every hit below the two bounds.

        A body hit sits at its message id, a subject hit at the ticket's first
        message; this is the order the walk produces, computed for all
        matches at once (every match is materialised, so it is slow for
        common terms and used only when the walk gives up).
        """
        first_message = (
            select(func.min(Message.id)).where(Message.ticket_id == Ticket.id).scalar_subquery()
        )
        if self.dialect == "sqlite":
            body_ids = select(_MESSAGES_FTS.c.rowid).where(
                _MESSAGES_FTS.c.messages_fts.op("MATCH")(self._phrase()), _MESSAGES_FTS.c.rowid < message_below
            )
            subject_ids = select(_TICKETS_FTS.c.rowid).where(
                _TICKETS_FTS.c.tickets_fts.op("MATCH")(self._phrase()), _TICKETS_FTS.c.rowid < subject_below
            )
            body = select(Message.ticket_id.label("ticket_id"), Message.id.label("position")).where(
                Message.id.in_(body_ids)
            )
            subject = select(Ticket.id.label("ticket_id"), func.coalesce(first_message, 0).label("position")).where(
                Ticket.id.in_(subject_ids)
            )
        else:
            patterns = self._patterns()
            body = select(Message.ticket_id.label("ticket_id"), Message.id.label("position")).where(
                Message.id < message_below, *(Message.body_text.ilike(p, escape="\\") for p in patterns)
            )
            subject = select(Ticket.id.label("ticket_id"), func.coalesce(first_message, 0).label("position")).where(
                Ticket.id < subject_below, *(Ticket.subject.ilike(p, escape="\\") for p in patterns)
            )
        hits = body.union_all(subject).subquery()
        return select(hits.c.ticket_id, func.max(hits.c.position).label("position")).group_by(hits.c.ticket_id)
