"""CLI commands for mail that is not fetched over IMAP: `ingest` from disk, and the admin's `quarantine`."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from core.errors import BadArgument
from core.mail.intake import BatchResult, Intake, RawMail, Source
from core.mail.quarantine import Quarantine
from core.mail.sources import count_messages, read_stored_mail
from tui.cli import AsAdmin, Json, _typer, admin_actor, app, handled, opened_desk, print_json
from tui.plain import table, visible, visible_block

quarantine_app = _typer("Quarantine: mail kept raw because it could not be imported (admins).")
app.add_typer(quarantine_app, name="quarantine")

BATCH = 100
RESULT_COLUMNS = ["NEW TICKETS", "REPLIES", "DUPLICATES", "QUARANTINED", "DROPPED"]


def _result_row(result: BatchResult) -> list[str]:
    return [str(n) for n in (result.tickets, result.replies, result.duplicates, result.quarantined, result.dropped)]


def _result_json(result: BatchResult) -> dict[str, object]:
    return {
        "tickets": result.tickets,
        "replies": result.replies,
        "duplicates": result.duplicates,
        "quarantined": result.quarantined,
        "dropped": result.dropped,
        "refs": result.refs,
    }


class _Progress:
    """A one-line progress report on stderr (only on a terminal: logs and pipes stay clean)."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.done = 0
        self.shown = sys.stderr.isatty()

    def advance(self, count: int, result: BatchResult) -> None:
        self.done += count
        if not self.shown:
            return
        of = f"/{self.total:,}" if self.total else ""
        percent = f" {100 * self.done // self.total:3d}%" if self.total else ""
        sys.stderr.write(
            f"\r{self.done:,}{of}{percent}  tickets {result.tickets:,}  replies {result.replies:,}  "
            f"duplicates {result.duplicates:,}  quarantined {result.quarantined:,}"
        )
        sys.stderr.flush()

    def finish(self) -> None:
        if self.shown and self.done:
            sys.stderr.write("\n")


@app.command()
@handled
async def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help=".eml files, folders of them, mbox files or Maildir folders.")],
    department: Annotated[
        str | None, typer.Option("--department", help="Department for new tickets (default: the first mailbox's).")
    ] = None,
    json: Json = False,
) -> None:
    """Import stored mail through the same pipeline as the IMAP sync; safe to run again on the same files."""
    async with opened_desk(ctx) as desk:
        settings = desk.settings
        target = department or (settings.mailbox[0].department if settings.mailbox else None)
        if target is None:
            raise BadArgument("No department for new tickets; pass --department NAME.")
        known = {view.name.lower(): view.name for view in await desk.departments(admin_actor(None))}
        known.update({view.slug: view.name for view in await desk.departments(admin_actor(None))})
        if target.strip().lower() not in known:
            raise BadArgument(f"No department named {target!r} exists; list them with `termdesk department list`.")
        intake = Intake(desk, settings)
        source = Source(name="import", department=known[target.strip().lower()])
        total = BatchResult()
        progress = _Progress(count_messages(paths))
        async for count, result in intake.ingest_stream(source, _batches(paths)):
            total.add(result)
            progress.advance(count, total)
        progress.finish()
    if json:
        print_json(_result_json(total))
    else:
        typer.echo(table(RESULT_COLUMNS, [_result_row(total)]))


def _batches(paths: list[Path]) -> Iterator[list[RawMail]]:
    batch: list[RawMail] = []
    for stored in read_stored_mail(paths):
        batch.append(RawMail(stored.data))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


@quarantine_app.command("list")
@handled
async def quarantine_list(ctx: typer.Context, json: Json = False, as_: AsAdmin = None) -> None:
    """Mail kept raw, newest first, with the reason it was not imported."""
    async with opened_desk(ctx) as desk:
        entries = await Quarantine(Intake(desk)).entries(admin_actor(as_))
    if json:
        print_json([entry.to_json() for entry in entries])
        return
    rows = [
        [str(e.id), e.source, e.received_at.strftime("%Y-%m-%d %H:%M"), f"{e.size:,}", e.sender, e.subject, e.reason]
        for e in entries
    ]
    typer.echo(table(["ID", "SOURCE", "RECEIVED", "BYTES", "FROM", "SUBJECT", "REASON"], rows))


@quarantine_app.command("show")
@handled
async def quarantine_show(
    ctx: typer.Context,
    raw_id: Annotated[int, typer.Argument(metavar="ID")],
    raw: Annotated[bool, typer.Option("--raw", help="Write the mail's exact bytes to standard output.")] = False,
    as_: AsAdmin = None,
) -> None:
    """One quarantined mail: why, its headers and the start of its text (control characters made visible)."""
    if raw and sys.stdout.isatty():
        raise BadArgument("--raw writes the mail's bytes, which may hold terminal escapes; redirect it to a file.")
    async with opened_desk(ctx) as desk:
        entry, headers, data = await Quarantine(Intake(desk)).show(admin_actor(as_), raw_id)
    if raw:
        sys.stdout.buffer.write(data)
        return
    typer.echo(f"Quarantined mail {entry.id} from {visible(entry.source)}, {entry.size:,} bytes")
    typer.echo(f"Reason: {visible(entry.reason)}")
    for name, value in headers.items():
        typer.echo(f"{name}: {visible(value)}")
    preview = data[:4000].decode("utf-8", "replace")
    typer.echo("")
    typer.echo(visible_block(preview))


@quarantine_app.command("retry")
@handled
async def quarantine_retry(
    ctx: typer.Context, raw_id: Annotated[int, typer.Argument(metavar="ID")], as_: AsAdmin = None
) -> None:
    """Run a quarantined mail through the intake again (after raising a limit, say)."""
    async with opened_desk(ctx) as desk:
        outcome = await Quarantine(Intake(desk)).retry(admin_actor(as_), raw_id)
    if isinstance(outcome, str):
        raise BadArgument(f"Mail {raw_id} still cannot be imported ({outcome}); release it to import it anyway.")
    typer.echo(f"Imported: {', '.join(outcome.refs) or 'kept in quarantine'}")


@quarantine_app.command("release")
@handled
async def quarantine_release(
    ctx: typer.Context, raw_id: Annotated[int, typer.Argument(metavar="ID")], as_: AsAdmin = None
) -> None:
    """Import a quarantined mail anyway, from the best text that can be read out of it."""
    async with opened_desk(ctx) as desk:
        outcome = await Quarantine(Intake(desk)).release(admin_actor(as_), raw_id)
    typer.echo(f"Released into {', '.join(outcome.refs)}")
