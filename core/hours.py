"""Business-hours calendars and exact business-time arithmetic.

A calendar is a timezone, weekly opening intervals (several per day allowed),
public holidays from the `holidays` package for a country (and optionally a
subdivision) plus custom closed dates. Business time is *elapsed real time*
that falls inside an opening interval of a non-holiday local date: on the
night clocks go forward an interval 01:00-03:00 is one real hour long, on the
night they go back it is three. Instants in and out are timezone-aware UTC
(naive datetimes are taken as UTC, as the database stores them).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as holiday_tables

from core.errors import BadArgument

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_INTERVAL = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})\s*$")
# A calendar with opening hours is open at least once in any year; a longer search means
# every day is a holiday, which a calendar check refuses up front.
_SEARCH_DAYS = 366 * 4

Interval = tuple[int, int]  # minutes after local midnight, end exclusive, end may be 1440


def parse_interval(text: str) -> Interval:
    match = _INTERVAL.match(text)
    if not match:
        raise BadArgument(f"{text!r} is not an opening interval; write it like 08:00-17:00.")
    sh, sm, eh, em = (int(part) for part in match.groups())
    start, end = sh * 60 + sm, eh * 60 + em
    if sm > 59 or em > 59 or start >= 1440 or end > 1440 or end <= start:
        raise BadArgument(f"{text!r} is not an opening interval; the end must be after the start, at most 24:00.")
    return start, end


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@dataclass(frozen=True)
class Calendar:
    """When a desk is open. Build it with `Calendar.from_dict` (the TOML/settings form) or directly."""

    timezone: str = "UTC"
    week: tuple[tuple[Interval, ...], ...] = field(default_factory=lambda: ((),) * 7)
    country: str | None = None
    subdivision: str | None = None
    closed: frozenset[date] = frozenset()

    def __post_init__(self) -> None:
        if len(self.week) != 7:
            raise BadArgument("A calendar week needs seven days, Monday to Sunday.")
        for day in self.week:
            ordered = sorted(day)
            for (_, end), (start, _) in zip(ordered, ordered[1:], strict=False):
                if start < end:
                    raise BadArgument("Opening intervals of one day overlap; merge them into one.")
        if not any(self.week):
            raise BadArgument("A calendar needs at least one opening interval; give one like mon = [\"08:00-17:00\"].")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise BadArgument(f"{self.timezone!r} is not a time zone; use an IANA name like Europe/Berlin.") from None
        if self.country:
            try:
                holiday_tables.country_holidays(self.country, subdiv=self.subdivision, years=2026)
            except NotImplementedError:
                raise BadArgument(
                    f"The holidays package knows no country {self.country!r}"
                    + (f" with subdivision {self.subdivision!r}" if self.subdivision else "")
                    + "; use an ISO 3166 code like DE and a subdivision like BY."
                ) from None

    @classmethod
    def always(cls) -> Calendar:
        """Open around the clock, every day (a policy without a calendar counts wall-clock time)."""
        return cls(week=(((0, 1440),),) * 7)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calendar:
        """From the settings form: {timezone, mon: ["08:00-12:00", ...], ..., country, subdivision, holidays}."""
        unknown = set(data) - {"timezone", "country", "subdivision", "holidays", *DAYS}
        if unknown:
            raise BadArgument(f"Unknown calendar setting {sorted(unknown)[0]!r}; use timezone, mon..sun, country, "
                              "subdivision, holidays.")
        week = []
        for day in DAYS:
            value = data.get(day, [])
            if isinstance(value, str):
                value = [value]
            week.append(tuple(sorted(parse_interval(text) for text in value)))
        closed = set()
        for text in data.get("holidays", []):
            try:
                closed.add(text if isinstance(text, date) else date.fromisoformat(str(text)))
            except ValueError:
                raise BadArgument(f"{text!r} is not a date; write holidays like 2026-12-24.") from None
        return cls(
            timezone=str(data.get("timezone", "UTC")),
            week=tuple(week),
            country=data.get("country") or None,
            subdivision=data.get("subdivision") or None,
            closed=frozenset(closed),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"timezone": self.timezone}
        for name, intervals in zip(DAYS, self.week, strict=True):
            if intervals:
                out[name] = [f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in intervals]
        if self.country:
            out["country"] = self.country
        if self.subdivision:
            out["subdivision"] = self.subdivision
        if self.closed:
            out["holidays"] = sorted(day.isoformat() for day in self.closed)
        return out

    # -- the arithmetic ------------------------------------------------------

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _public(self) -> Any:
        if not self.country:
            return None
        return holiday_tables.country_holidays(self.country, subdiv=self.subdivision)

    def is_holiday(self, day: date) -> bool:
        return day in self.closed or (self._public is not None and day in self._public)

    def _day_spans(self, day: date) -> list[tuple[datetime, datetime]]:
        """The open spans of one local date, as UTC instants."""
        if self.is_holiday(day):
            return []
        spans = []
        midnight = datetime.combine(day, time(), tzinfo=self._zone)
        for start, end in self.week[day.weekday()]:
            # Wall-clock times of that date, so 08:00 stays 08:00 on either side of a DST change.
            begin = (midnight + timedelta(minutes=start)).astimezone(UTC)
            if end == 1440:
                finish = datetime.combine(day + timedelta(days=1), time(), tzinfo=self._zone).astimezone(UTC)
            else:
                finish = (midnight + timedelta(minutes=end)).astimezone(UTC)
            if finish > begin:
                spans.append((begin, finish))
        return spans

    def spans(self, start: datetime, *, days: int = _SEARCH_DAYS) -> Iterator[tuple[datetime, datetime]]:
        """Open spans from `start` onwards (the first one clipped to `start`), for at most `days` local days."""
        start = _utc(start)
        day = start.astimezone(self._zone).date() - timedelta(days=1)  # a span of yesterday may run past midnight
        for _ in range(days + 1):
            for begin, finish in self._day_spans(day):
                if finish > start:
                    yield max(begin, start), finish
            day += timedelta(days=1)

    def is_open(self, at: datetime) -> bool:
        at = _utc(at)
        return any(begin <= at < finish for begin, finish in self._spans_around(at))

    def _spans_around(self, at: datetime) -> list[tuple[datetime, datetime]]:
        day = at.astimezone(self._zone).date()
        return [span for offset in (-1, 0) for span in self._day_spans(day + timedelta(days=offset))]

    def business_time(self, start: datetime, end: datetime) -> timedelta:
        """Open time between two instants (negative when `end` is before `start`)."""
        start, end = _utc(start), _utc(end)
        if end < start:
            return -self.business_time(end, start)
        total = timedelta()
        days = (end - start).days + 2
        for begin, finish in self.spans(start, days=days):
            if begin >= end:
                break
            total += min(finish, end) - begin
        return total

    def minutes_between(self, start: datetime, end: datetime) -> int:
        """Whole business minutes between two instants (truncated toward zero)."""
        seconds = self.business_time(start, end).total_seconds()
        return int(seconds / 60)

    def add(self, start: datetime, amount: timedelta | float) -> datetime:
        """The instant `amount` of business time after `start` (minutes when a number).

        Adding zero at a closed moment stays at `start`; a positive amount lands
        inside (or at the end of) an open span.
        """
        left = amount if isinstance(amount, timedelta) else timedelta(minutes=amount)
        start = _utc(start)
        if left <= timedelta():
            return start
        for begin, finish in self.spans(start):
            length = finish - begin
            if left <= length:
                return begin + left
            left -= length
        raise BadArgument("The calendar has no opening hours in the next four years; check its holidays.")

    def next_open(self, at: datetime) -> datetime | None:
        for begin, _ in self.spans(at):
            return begin
        return None


__all__ = ["Calendar", "DAYS", "parse_interval"]
