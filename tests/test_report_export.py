"""The per-ticket export (`termdesk report --tickets`): its rows, its access, and that it streams.

Uses the hand-computed desk of tests/test_reports.py.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import tracemalloc
from datetime import timedelta

from sqlalchemy import insert, select, update

from core import Desk
from core.reports.export import TICKET_COLUMNS
from storage.database import Database
from storage.models import Contact, Department, Tag, Ticket, TicketTag
from tests.test_reports import at, build, built_url, invoke, report_desk  # noqa: F401

ARGS = ("report", "--as", "sam", "--tickets", "--from", "2026-02-01", "--to", "2026-03-31")


def test_tickets_csv_has_one_row_per_visible_ticket_with_its_durations_sla_and_rating(built_url: str) -> None:  # noqa: F811
    result = invoke(built_url, *ARGS, "--csv")
    assert result.exit_code == 0, result.output
    table = list(csv.DictReader(io.StringIO(result.stdout)))
    assert tuple(table[0]) == TICKET_COLUMNS
    by_ref = {row["ref"].rsplit("-", 1)[1]: row for row in table}
    assert sorted(by_ref, key=int) == ["1", "2", "3", "4", "6", "7", "8"]  # T5 is in Secret
    assert {
        key: by_ref["1"][key]
        for key in ("department", "status", "assignee", "first_response_minutes", "resolution_minutes", "rating")
    } == {
        "department": "Billing",
        "status": "resolved",
        "assignee": "sam",
        "first_response_minutes": "60.0",
        "resolution_minutes": "1620.0",
        "rating": "",
    }
    assert (by_ref["3"]["sla_first_response"], by_ref["3"]["sla_resolution"]) == ("breached", "breached")
    assert (by_ref["4"]["sla_resolution"], by_ref["4"]["created"]) == ("met", "2026-02-20T09:00:00Z")

    as_json = invoke(built_url, *ARGS, "--json")
    assert as_json.exit_code == 0, as_json.output
    lines = [json.loads(line) for line in as_json.stdout.splitlines()]
    assert [line["ref"] for line in lines] == [row["ref"] for row in table]
    for line, row in zip(lines, table, strict=True):
        assert {key: "" if value is None else str(value) for key, value in line.items() if key != "tags"} == {
            key: value for key, value in row.items() if key != "tags"
        }
        # The fixture's names hold no comma or control: the cell is the list, a formula start guarded.
        assert row["tags"] == ",".join("'" + name if name.startswith("=") else name for name in line["tags"])
    assert [line["tags"] for line in lines] == [["refund"], ["=vip", "refund"], [], [], [], [], []]  # sorted


def test_tickets_export_carries_any_tag_name_inert_and_unambiguous(built_url: str) -> None:  # noqa: F811
    """Names written around the desk (which refuses commas and whitespace in a tag) still come out one
    entry per tag: JSON as they are, CSV guarded like every cell typed by people."""
    names = ["say \"hi\"", "a,b", "line\nbreak", "=SUM(A1)", "@cmd", "two words"]

    async def tag() -> None:
        desk = Desk(Database(built_url))
        async with desk.db.writing() as session:
            for number, name in enumerate(names, start=100):
                await session.execute(insert(Tag).values(id=number, name=name))
                await session.execute(insert(TicketTag).values(ticket_id=4, tag_id=number))
        await desk.close()

    asyncio.run(tag())
    as_csv = invoke(built_url, *ARGS, "--csv")
    as_json = invoke(built_url, *ARGS, "--json")
    assert as_csv.exit_code == 0 and as_json.exit_code == 0, as_csv.output + as_json.output
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(as_csv.stdout.splitlines()) == 1 + len(table)  # the newline is made visible: one line a ticket
    [line] = [json.loads(text) for text in as_json.stdout.splitlines() if json.loads(text)["ref"].endswith("-4")]
    [row] = [row for row in table if row["ref"] == line["ref"]]
    assert line["tags"] == ["=SUM(A1)", "@cmd", "a,b", "line\nbreak", "say \"hi\"", "two words"]
    assert row["tags"] == "'=SUM(A1),'@cmd,a<U+002C>b,line^Jbreak,say \"hi\",two words"
    assert len(row["tags"].split(",")) == len(line["tags"])


def test_tickets_export_keeps_to_the_readers_departments(built_url: str) -> None:  # noqa: F811
    result = invoke(built_url, "report", "--as", "tess", "--tickets", "--from", "2026-02-01", "--to", "2026-03-31")
    assert result.exit_code == 0, result.output
    refs = [row["ref"] for row in csv.DictReader(io.StringIO(result.stdout))]
    assert [ref.rsplit("-", 1)[1] for ref in refs] == ["3", "4"]  # Technical only


async def test_tickets_export_streams_with_flat_memory(report_desk: Desk) -> None:  # noqa: F811
    """3,000 tickets of 10 kB each (30 MB of subjects) go through while traced memory stays under a third
    of that: rows come off a server-side cursor a batch at a time. A buffered query (`.all()`, or a
    list built before writing) holds all 30 MB at once and fails this."""
    count, size = 3000, 10_000
    async with report_desk.db.writing() as session:
        billing = (await session.execute(select(Department.id).where(Department.name == "Billing"))).scalar_one()
        contact = (await session.execute(select(Contact.id))).scalars().first()
        start = at("2026-06-01 00:00")
        for first in range(0, count, 500):
            await session.execute(
                insert(Ticket),
                [
                    {
                        "id": 1000 + number,
                        "subject": f"{number:05d}" + "x" * size,
                        "department_id": billing,
                        "contact_id": contact,
                        "status": "open",
                        "created_at": start + timedelta(seconds=number),
                        "updated_at": start,
                    }
                    for number in range(first, min(first + 500, count))
                ],
            )

    seen = 0
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        async for row in report_desk.export_tickets("sam", start, start + timedelta(days=1), batch=100):
            assert row["subject"].startswith(f"{seen:05d}")  # in order, nothing skipped
            seen += 1
            await asyncio.sleep(0)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert seen == count
    assert peak < count * size / 3, f"peak {peak / 1e6:.1f} MB while exporting {count * size / 1e6:.0f} MB"


def test_tickets_csv_keeps_text_typed_by_people_inert_in_a_spreadsheet(built_url: str) -> None:  # noqa: F811
    async def rename() -> None:
        desk = Desk(Database(built_url))
        async with desk.db.writing() as session:
            await session.execute(update(Ticket).where(Ticket.id == 2).values(subject='=HYPERLINK("x")\x1b[31m'))
        await desk.close()

    asyncio.run(rename())
    table = list(csv.DictReader(io.StringIO(invoke(built_url, *ARGS, "--csv").stdout)))
    [row] = [row for row in table if row["ref"].endswith("-2")]
    assert row["subject"].startswith("'=HYPERLINK") and "\x1b" not in row["subject"]
    lines = [json.loads(line) for line in invoke(built_url, *ARGS, "--json").stdout.splitlines()]
    assert [line["subject"] for line in lines if line["ref"].endswith("-2")] == ['=HYPERLINK("x")\x1b[31m']
