"""Report metrics against a hand-computed desk, on SQLite and PostgreSQL; access; the CLI's CSV and JSON.

The desk (times UTC; weeks start on Monday 2026-03-02 and 2026-03-09):

    T1 Billing   created Mon 03-02 09:00, customer 09:00, reply 10:00 (sam), customer 03-03 09:00,
                 reply 03-03 09:30, resolved 03-03 12:00; email; assigned sam; tag refund
    T2 Billing   created Wed 03-04 08:00, customer 08:00, note 08:10, reply 12:00; web; tag refund, vip
    T3 Technical created Tue 03-10 10:00, customer 10:00; first response due 03-10 12:00 and resolution
                 due 03-11 10:00, neither met (both breached)
    T4 Technical created 02-20 09:00 (before the range), resolved 03-09 09:00, resolution due 03-10 (met)
    T5 Secret    created 03-02 (no reader of the report is in Secret)
    T6 Billing   created 03-05, spam
    T7 Billing   created Sun 03-08 23:30 (last minute of week one)
    T8 Billing   created Mon 03-09 00:00 (first minute of week two)
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core import Desk
from core.errors import BadArgument
from core.policy import Actor
from core.reports import METRICS, ReportRequest, durations
from storage.database import Database
from storage.models import Agent, Contact, Department, Message, Tag, Ticket, TicketTag
from tui.cli import app


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


MARCH = (at("2026-03-02 00:00"), at("2026-03-16 00:00"))  # two whole weeks


async def build(desk: Desk) -> None:
    operator = Actor.operator()
    for name in ("Billing", "Technical", "Secret"):
        await desk.add_department(operator, name, email=f"{name.lower()}@example.com")
    await desk.add_agent(operator, "sam", name="Sam", email="sam@example.com", role="supervisor",
                         departments=["Billing", "Technical"])
    await desk.add_agent(operator, "tess", name="Tess", email="tess@example.com", departments=["Technical"])
    async with desk.db.writing() as session:
        departments = {d.name: d.id for d in (await session.execute(select(Department))).scalars()}
        sam = (await session.execute(select(Agent.id).where(Agent.handle == "sam"))).scalar_one()
        contact = Contact(email="carla@example.org", name="Carla")
        session.add(contact)
        refund, vip = Tag(name="refund"), Tag(name="=vip")  # a name a spreadsheet would run as a formula
        session.add_all([refund, vip])
        await session.flush()

        def ticket(number: int, department: str, created: str, **fields: Any) -> Ticket:
            row = Ticket(
                id=number, subject=f"T{number}", department_id=departments[department], contact_id=contact.id,
                status=fields.pop("status", "open"), channel=fields.pop("channel", "email"),
                created_at=at(created), updated_at=at(created), **fields,
            )
            session.add(row)
            return row

        def message(number: int, kind: str, when: str, agent: int | None = None) -> None:
            row = Message(ticket_id=number, kind=kind, body_text=kind, created_at=at(when), author_agent_id=agent)
            session.add(row)

        ticket(1, "Billing", "2026-03-02 09:00", assignee_id=sam, first_response_at=at("2026-03-02 10:00"),
               resolved_at=at("2026-03-03 12:00"), status="resolved")
        ticket(2, "Billing", "2026-03-04 08:00", channel="web", first_response_at=at("2026-03-04 12:00"))
        ticket(3, "Technical", "2026-03-10 10:00", first_response_due=at("2026-03-10 12:00"),
               resolution_due=at("2026-03-11 10:00"))
        ticket(4, "Technical", "2026-02-20 09:00", first_response_at=at("2026-02-20 09:30"),
               resolved_at=at("2026-03-09 09:00"), resolution_due=at("2026-03-10 00:00"), status="resolved")
        ticket(5, "Secret", "2026-03-02 09:00")
        ticket(6, "Billing", "2026-03-05 10:00", status="spam")
        ticket(7, "Billing", "2026-03-08 23:30")
        ticket(8, "Billing", "2026-03-09 00:00")
        await session.flush()
        message(1, "customer", "2026-03-02 09:00")
        message(1, "reply", "2026-03-02 10:00", sam)
        message(1, "customer", "2026-03-03 09:00")
        message(1, "reply", "2026-03-03 09:30", sam)
        message(2, "customer", "2026-03-04 08:00")
        message(2, "note", "2026-03-04 08:10", sam)
        message(2, "reply", "2026-03-04 12:00", sam)
        message(3, "customer", "2026-03-10 10:00")
        message(5, "customer", "2026-03-02 09:00")
        message(5, "reply", "2026-03-02 09:05", sam)
        session.add_all([TicketTag(ticket_id=1, tag_id=refund.id), TicketTag(ticket_id=2, tag_id=refund.id),
                         TicketTag(ticket_id=2, tag_id=vip.id)])
        await session.flush()
        # Rows written directly, as a desk from before migration 0007: its durations come from the backfill.
        await durations.backfill(session, batch=3)


ZERO = {m.name: 0 for m in METRICS} | {
    "first_answer_avg_min": None, "first_answer_median_min": None, "answer_avg_min": None,
    "resolution_avg_min": None, "sla_met_pct": None,
    "rated_positive_pct": None, "rated_negative_pct": None, "not_rated_pct": None,
}
EXPECTED_BY_DEPARTMENT = {
    ("2026-03-02", "Billing"): ZERO | {
        "created": 4, "resolved": 1, "answers": 3, "notes": 1, "incoming": 3,
        "first_answer_avg_min": 150.0, "first_answer_median_min": 150.0,
        "answer_avg_min": 110.0,  # (60 + 30 + 240) / 3
        "resolution_avg_min": 1620.0,  # 27 hours
        "not_rated": 1, "not_rated_pct": 100.0, "rated_positive_pct": 0.0, "rated_negative_pct": 0.0,  # T1
        "backlog": 2,  # T2, T7 (T1 resolved, T6 spam)
    },
    ("2026-03-02", "Technical"): ZERO | {"backlog": 1},  # T4, from before the range
    ("2026-03-09", "Billing"): ZERO | {"created": 1, "backlog": 3},
    ("2026-03-09", "Technical"): ZERO | {
        "created": 1, "resolved": 1, "incoming": 1,
        "resolution_avg_min": 24480.0,  # 17 days
        "sla_met": 1, "sla_breached": 2, "sla_met_pct": 33.3,
        "not_rated": 1, "not_rated_pct": 100.0, "rated_positive_pct": 0.0, "rated_negative_pct": 0.0,  # T4
        "backlog": 1,  # T4 out, T3 in
    },
}


@pytest.fixture
async def report_desk(desk: Desk) -> Desk:
    await build(desk)
    return desk


async def test_every_metric_by_department_and_week_matches_the_hand_computed_desk(report_desk: Desk) -> None:
    report = await report_desk.report("sam", ReportRequest(*MARCH, by="department", bucket="week"))
    found = {(row.bucket, row.group): row.values for row in report.rows}
    assert found == EXPECTED_BY_DEPARTMENT


async def test_an_agent_sees_only_their_departments(report_desk: Desk) -> None:
    for by in ("department", "agent", "channel", "tag"):
        report = await report_desk.report("tess", ReportRequest(*MARCH, by=by, bucket="month"))
        totals = {name: sum((row.values[name] or 0) for row in report.rows) for name in ("created", "answers")}
        # Technical only: T3 created in range; nobody answered there. Secret's T5 (answered) and all of
        # Billing are invisible whichever way the report is cut.
        assert totals == {"created": 1, "answers": 0}, by
        if by == "department":
            assert {row.group for row in report.rows} == {"Technical"}


async def test_grouping_by_agent_channel_and_tag(report_desk: Desk) -> None:
    request = ReportRequest(*MARCH, by="agent", bucket="month")
    by_agent = {row.group: row.values for row in (await report_desk.report("sam", request)).rows}
    assert by_agent["sam"]["answers"] == 3 and by_agent["sam"]["notes"] == 1
    assert by_agent["sam"]["created"] == 1  # T1 is assigned to sam
    assert by_agent["(unassigned)"]["created"] == 5  # T2, T3, T6, T7, T8

    by_channel = {row.group: row.values for row in (await report_desk.report("sam", ReportRequest(
        *MARCH, by="channel", bucket="month"))).rows}
    assert by_channel["web"]["created"] == 1 and by_channel["email"]["created"] == 5

    by_tag = {row.group: row.values for row in (await report_desk.report("sam", ReportRequest(
        *MARCH, by="tag", bucket="month"))).rows}
    assert by_tag["refund"]["created"] == 2 and by_tag["=vip"]["created"] == 1
    assert by_tag["refund"]["first_answer_avg_min"] == 150.0
    assert by_tag["(no tag)"]["created"] == 4  # T3, T6, T7, T8


async def test_buckets_cover_the_range_even_when_empty(report_desk: Desk) -> None:
    request = ReportRequest(at("2026-01-01 00:00"), at("2027-01-01 00:00"), by="department", bucket="month")
    report = await report_desk.report("sam", request)
    assert [row.bucket for row in report.rows if row.group == "Billing"] == [
        f"2026-{month:02d}-01" for month in range(1, 13)
    ]
    march = {row.group: row.values for row in report.rows if row.bucket == "2026-03-01"}
    assert march["Billing"]["created"] == 5 and march["Technical"]["created"] == 1
    # The backlog carries on after the last change.
    assert [row.values["backlog"] for row in report.rows if row.group == "Billing"][-1] == 3


def test_bad_requests_name_the_fix() -> None:
    with pytest.raises(BadArgument, match="group a report by"):
        ReportRequest(*MARCH, by="mood")
    with pytest.raises(BadArgument, match="bucket"):
        ReportRequest(*MARCH, bucket="fortnight")
    with pytest.raises(BadArgument, match="--to"):
        ReportRequest(MARCH[1], MARCH[0])


def invoke(db_url: str, *args: str) -> Any:
    return CliRunner().invoke(app, ["--db", db_url, *args])


@pytest.fixture
def built_url(db_url: str) -> str:
    """The hand-computed desk, built before the (synchronous) CLI runs against it."""

    async def prepare() -> None:
        desk = Desk(Database(db_url))
        await desk.init()
        await build(desk)
        await desk.close()

    asyncio.run(prepare())
    return db_url


def test_cli_csv_and_json_carry_the_same_rows(built_url: str) -> None:
    db_url = built_url
    args = ("report", "--as", "sam", "--from", "2026-03-02", "--to", "2026-03-15", "--by", "tag", "--bucket", "week")
    as_json = invoke(db_url, *args, "--json")
    as_csv = invoke(db_url, *args, "--csv")
    assert as_json.exit_code == 0 and as_csv.exit_code == 0, as_json.output + as_csv.output
    rows = json.loads(as_json.stdout)
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert list(table[0]) == ["bucket", "group", *(m.name for m in METRICS)]
    assert len(table) == len(rows) > 0
    for from_json, from_csv in zip(rows, table, strict=True):
        group = from_json["group"]
        assert from_csv["group"] == ("'" + group if group.startswith("=") else group)  # no formula in a sheet
        for name, value in from_json.items():
            if name != "group":
                assert from_csv[name] == ("" if value is None else str(value)), name


def test_cli_refuses_bad_dates_in_one_sentence(built_url: str) -> None:
    result = invoke(built_url, "report", "--as", "sam", "--from", "March", "--to", "2026-03-15")
    assert result.exit_code != 0
    assert "is not a date; give it as YYYY-MM-DD" in result.output
    assert "Traceback" not in result.output


def test_report_against_a_fresh_database_file(tmp_path: Path) -> None:
    """The command on a desk with no tickets prints a table of zeros, not an error."""
    url = f"sqlite:///{tmp_path / 'empty.sqlite3'}"

    async def prepare() -> None:
        desk = Desk(Database(url))
        await desk.init()
        await desk.add_department(Actor.operator(), "Billing", email="billing@example.com")
        await desk.add_agent(Actor.operator(), "sam", name="Sam", email="sam@example.com", departments=["Billing"])
        await desk.close()

    asyncio.run(prepare())
    result = invoke(url, "report", "--as", "sam", "--from", "2026-03-02", "--to", "2026-03-08")
    assert result.exit_code == 0, result.output
    assert "Billing" in result.output and "2026-03-02" in result.output


def test_the_readme_lists_every_metric_definition() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    for metric in METRICS:
        assert f"- `{metric.name}`: {metric.definition}" in readme, metric.name
