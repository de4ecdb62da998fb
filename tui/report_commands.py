"""`termdesk report` (the report metrics of core/reports as a table, CSV or JSON) and `termdesk dashboard`."""

from __future__ import annotations

import csv
import sys
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any

import typer

from core.errors import BadArgument
from core.policy import require_supervisor
from core.reports import BUCKETS, GROUPINGS, ReportRequest
from core.reports.export import TICKET_COLUMNS
from core.reports.metrics import iter_csv_rows
from tui.cli import AsAgent, Json, app, handled, opened_desk, print_json
from tui.csv_cells import guarded_rows, safe_label, safe_tags
from tui.plain import json_text, table


def _day(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise BadArgument(f"{option} {text!r} is not a date; give it as YYYY-MM-DD, e.g. 2026-01-31.") from None


_TEXT_COLUMNS = ("department", "subject", "assignee")  # typed by people: inert in a spreadsheet


def _ticket_cell(name: str, value: Any) -> str:
    if value is None:
        return ""
    if name == "tags":
        return safe_tags(value)
    return safe_label(str(value)) if name in _TEXT_COLUMNS else str(value)


async def stream_tickets(rows: AsyncIterator[dict[str, Any]], *, as_json: bool) -> None:
    """Write each ticket as it comes off the cursor (CSV with a header, or one JSON object per line)."""
    out = sys.stdout
    if as_json:
        async for row in rows:
            out.write(json_text(row, indent=None) + "\n")
        out.flush()
        return
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TICKET_COLUMNS)
    async for row in rows:
        writer.writerow([_ticket_cell(name, row[name]) for name in TICKET_COLUMNS])
    out.flush()


@app.command()
@handled
async def report(
    ctx: typer.Context,
    as_: AsAgent,
    from_: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC).", show_default=False)],
    to: Annotated[str, typer.Option("--to", help="Last day, included (YYYY-MM-DD, UTC).", show_default=False)],
    by: Annotated[str, typer.Option("--by", help=f"Group by: {', '.join(GROUPINGS)}.")] = "department",
    bucket: Annotated[str, typer.Option("--bucket", help=f"Bucket: {', '.join(BUCKETS)}.")] = "week",
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (every row; no limit).")] = False,
    json: Json = False,
    tickets: Annotated[
        bool,
        typer.Option(
            "--tickets",
            help="One row per ticket created in the period (CSV, or JSON lines with --json), "
            "streamed; --by and --bucket do not apply.",
        ),
    ] = False,
) -> None:
    """Tickets, answers, times, SLA and ratings per bucket and group, within your departments."""
    if as_csv and json:
        raise BadArgument("Give --csv or --json, not both.")
    first, last = _day(from_, "--from"), _day(to, "--to")
    start = datetime(first.year, first.month, first.day, tzinfo=UTC)
    end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
    if end <= start:
        raise BadArgument("The report's end is not after its start; give --to on or after --from.")
    if tickets:
        async with opened_desk(ctx) as desk:
            await stream_tickets(desk.export_tickets(as_, start, end), as_json=json)
        return
    request = ReportRequest(start=start, end=end, by=by.strip().lower(), bucket=bucket.strip().lower())
    async with opened_desk(ctx) as desk:
        found = await desk.report(as_, request)
    if json:
        print_json([row.as_dict() for row in found.rows])  # JSON strings are escaped by the encoder
    elif as_csv:
        csv.writer(sys.stdout, lineterminator="\n").writerows(guarded_rows(iter_csv_rows(found)))
    else:
        rows = list(iter_csv_rows(found))
        typer.echo(table(rows[0], rows[1:]))


@app.command()
@handled
async def dashboard(ctx: typer.Context, as_: AsAgent) -> None:
    """Open the console on the supervisor dashboard: today's load of your departments and agents, live."""
    from tui.console.dashboard import dashboard_app  # Textual is only imported by the commands that need it

    async with opened_desk(ctx) as desk:
        # An unknown agent or a plain agent fails in one sentence before the screen is taken over.
        require_supervisor(await desk.login(as_), "open the dashboard")
        await dashboard_app(desk, as_).run_async()
