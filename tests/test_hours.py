"""Business-hours calendars: business time between instants and N business minutes later, table-driven."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import BadArgument
from core.hours import Calendar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
OFFICE = {"timezone": "UTC", **{day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}}
SPLIT = {"timezone": "UTC", **{day: ["08:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}}
BERLIN = {"timezone": "Europe/Berlin", **{day: ["08:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}}
NIGHT = {"timezone": "Europe/Berlin", "sun": ["01:00-04:00"]}
GERMANY = {**BERLIN, "country": "DE", "subdivision": "BY", "holidays": ["2026-12-24"]}
US = {"timezone": "America/New_York", "country": "US", **{day: ["09:00-17:00"] for day in WEEKDAYS}}


def at(text: str, zone: str = "UTC") -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


# (calendar, start, end, zone of the instants, business minutes)
BETWEEN = [
    # The example: 16:00 Friday to 09:00 Monday is two business hours.
    (OFFICE, "2026-11-20 16:00", "2026-11-23 09:00", "UTC", 120),
    (OFFICE, "2026-11-23 09:00", "2026-11-23 09:00", "UTC", 0),
    (OFFICE, "2026-11-21 10:00", "2026-11-22 18:00", "UTC", 0),  # the whole weekend
    (OFFICE, "2026-11-23 06:00", "2026-11-23 20:00", "UTC", 540),
    (OFFICE, "2026-11-23 08:00", "2026-11-30 08:00", "UTC", 5 * 540),
    (OFFICE, "2026-11-23 16:59:30", "2026-11-24 08:00:30", "UTC", 1),
    # Several intervals a day: lunch does not count.
    (SPLIT, "2026-11-23 11:00", "2026-11-23 14:00", "UTC", 120),
    (SPLIT, "2026-11-23 12:15", "2026-11-23 12:45", "UTC", 0),
    (SPLIT, "2026-11-20 16:30", "2026-11-23 08:30", "UTC", 60),
    # Local time in another zone: 08:00-17:00 Berlin is 07:00-16:00 UTC in winter.
    (BERLIN, "2026-11-23 06:00", "2026-11-23 08:00", "UTC", 60),
    # DST forward (Berlin, 29 March 2026): 08:00 stays 08:00 local on Monday after.
    (BERLIN, "2026-03-27 16:00", "2026-03-30 09:00", "Europe/Berlin", 120),
    # DST: an interval across the change is as long as the real time it spans.
    (NIGHT, "2026-03-29 00:00", "2026-03-29 06:00", "Europe/Berlin", 120),  # 01:00-04:00 lost an hour
    (NIGHT, "2026-10-25 00:00", "2026-10-25 06:00", "Europe/Berlin", 240),  # and gains one in autumn
    # Holidays: public ones from the package by country/subdivision, plus custom dates.
    (GERMANY, "2026-01-05 16:00", "2026-01-07 09:00", "Europe/Berlin", 120),  # 6 Jan: Epiphany in Bavaria
    (BERLIN, "2026-01-05 16:00", "2026-01-07 09:00", "Europe/Berlin", 60 + 540 + 60),  # no holidays configured
    (GERMANY, "2026-12-23 16:00", "2026-12-28 09:00", "Europe/Berlin", 120),  # 24th custom, 25/26 public
    (US, "2026-11-25 16:00", "2026-11-27 10:00", "America/New_York", 120),  # Thanksgiving
    (US, "2026-07-02 16:00", "2026-07-06 10:00", "America/New_York", 60 + 60),  # 3 July observed
]


@pytest.mark.parametrize(("calendar", "start", "end", "zone", "minutes"), BETWEEN)
def test_business_minutes_between(calendar: dict, start: str, end: str, zone: str, minutes: int) -> None:
    cal = Calendar.from_dict(calendar)
    assert cal.minutes_between(at(start, zone), at(end, zone)) == minutes
    assert cal.minutes_between(at(end, zone), at(start, zone)) == -minutes


# (calendar, start, business minutes to add, expected, zone)
ADD = [
    (OFFICE, "2026-11-20 16:00", 120, "2026-11-23 09:00", "UTC"),
    (OFFICE, "2026-11-20 16:00", 60, "2026-11-20 17:00", "UTC"),  # ends exactly at closing
    (OFFICE, "2026-11-21 12:00", 1, "2026-11-23 08:01", "UTC"),  # from a closed moment
    (OFFICE, "2026-11-23 08:00", 540 * 5, "2026-11-27 17:00", "UTC"),
    (OFFICE, "2026-11-23 08:00", 540 * 5 + 1, "2026-11-30 08:01", "UTC"),
    (OFFICE, "2026-11-21 12:00", 0, "2026-11-21 12:00", "UTC"),
    (SPLIT, "2026-11-23 11:30", 60, "2026-11-23 13:30", "UTC"),
    (SPLIT, "2026-11-23 16:30", 270, "2026-11-24 12:00", "UTC"),  # ends as the morning ends
    (SPLIT, "2026-11-23 16:30", 271, "2026-11-24 13:01", "UTC"),
    (BERLIN, "2026-03-27 16:00", 120, "2026-03-30 09:00", "Europe/Berlin"),
    (BERLIN, "2026-10-23 16:00", 120, "2026-10-26 09:00", "Europe/Berlin"),
    (NIGHT, "2026-03-29 00:00", 120, "2026-03-29 04:00", "Europe/Berlin"),
    (GERMANY, "2026-12-23 16:30", 60, "2026-12-28 08:30", "Europe/Berlin"),
    (US, "2026-11-25 16:30", 60, "2026-11-27 09:30", "America/New_York"),
]


@pytest.mark.parametrize(("calendar", "start", "minutes", "expected", "zone"), ADD)
def test_add_business_minutes(calendar: dict, start: str, minutes: int, expected: str, zone: str) -> None:
    cal = Calendar.from_dict(calendar)
    assert cal.add(at(start, zone), minutes) == at(expected, zone)


def test_open_and_closed_moments() -> None:
    cal = Calendar.from_dict(SPLIT)
    assert cal.is_open(at("2026-11-23 08:00"))
    assert not cal.is_open(at("2026-11-23 12:00"))
    assert cal.is_open(at("2026-11-23 16:59"))
    assert not cal.is_open(at("2026-11-23 17:00"))
    assert not cal.is_open(at("2026-11-22 10:00"))
    assert cal.next_open(at("2026-11-21 10:00")) == at("2026-11-23 08:00")
    assert Calendar.from_dict(GERMANY).is_holiday(datetime(2026, 12, 24).date())


def test_interval_to_midnight_and_round_trip() -> None:
    cal = Calendar.from_dict({"timezone": "UTC", "fri": ["20:00-24:00"], "sat": "00:00-02:00"})
    assert cal.minutes_between(at("2026-11-20 19:00"), at("2026-11-21 03:00")) == 360
    assert Calendar.from_dict(cal.to_dict()) == cal
    assert Calendar.from_dict(Calendar.from_dict(GERMANY).to_dict()) == Calendar.from_dict(GERMANY)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ({"mon": ["17:00-08:00"]}, "end must be after"),
        ({"mon": ["8-17"]}, "write it like 08:00-17:00"),
        ({"mon": ["08:00-12:00", "11:00-13:00"]}, "overlap"),
        ({}, "at least one opening interval"),
        ({"timezone": "Mars/Olympus", "mon": ["08:00-17:00"]}, "not a time zone"),
        ({"country": "XX", "mon": ["08:00-17:00"]}, "knows no country"),
        ({"holidays": ["soon"], "mon": ["08:00-17:00"]}, "not a date"),
        ({"monday": ["08:00-17:00"]}, "Unknown calendar setting"),
    ],
)
def test_bad_calendars_are_one_sentence(data: dict, words: str) -> None:
    with pytest.raises(BadArgument, match=words):
        Calendar.from_dict(data)


def test_a_year_of_holidays_is_refused_not_looped_forever() -> None:
    cal = Calendar(week=((), (), (), (), (), (), ((0, 60),)), closed=frozenset(
        datetime(2026, 11, 22).date() + timedelta(days=7 * n) for n in range(400)))
    with pytest.raises(BadArgument, match="no opening hours"):
        cal.add(at("2026-11-20 00:00"), 10)


instants = st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)).map(
    lambda d: d.replace(microsecond=0, tzinfo=UTC)
)


@settings(max_examples=150, deadline=None)
@given(start=instants, minutes=st.integers(min_value=1, max_value=20_000), cal=st.sampled_from([SPLIT, GERMANY, US]))
def test_add_and_between_agree(start: datetime, minutes: int, cal: dict) -> None:
    calendar = Calendar.from_dict(cal)
    due = calendar.add(start, minutes)
    assert calendar.business_time(start, due) == timedelta(minutes=minutes)
    assert calendar.is_open(due - timedelta(seconds=1))
