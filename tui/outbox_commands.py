"""CLI commands for outgoing mail: `outbox list/retry/flush`, `template …`, `agent notify`, and `serve`."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from core.errors import BadArgument, ConfigError
from core.mail import outbox_admin
from core.mail.sender import FlushCounts, OutboxWorker
from tui.cli import (
    AsAdmin,
    Json,
    _typer,
    admin_actor,
    agent_app,
    app,
    handled,
    invocation,
    opened_desk,
    print_json,
    when,
    zone_of,
)
from tui.plain import table, visible, visible_block

outbox_app = _typer("Outbox: outgoing mail, queued until the SMTP server took it (admins).")
template_app = _typer("Mail templates per department: auto-ack, resolved, notification (admins).")
app.add_typer(outbox_app, name="outbox")
app.add_typer(template_app, name="template")


def _require_smtp(ctx: typer.Context) -> None:
    settings = invocation(ctx).settings()
    if not settings.smtp.configured:
        where = invocation(ctx).config or "named by --config or TERMDESK_CONFIG"
        raise ConfigError(
            f"No SMTP server is configured; add an [smtp] section with host to the config file {where} "
            "(see config.example.toml)."
        )


def _report(counts: FlushCounts) -> None:
    typer.echo(f"Sent {counts.sent}, deferred {counts.deferred}, failed {counts.failed}.")
    for line in counts.details:
        typer.echo(visible(line), err=True)


@outbox_app.command("list")
@handled
async def outbox_list(
    ctx: typer.Context,
    state: Annotated[str | None, typer.Option("--state", help="Only queued, sending, sent or failed mail.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 200,
    json: Json = False,
    as_: AsAdmin = None,
) -> None:
    """List outgoing mail, newest first, with its delivery state and last error."""
    async with opened_desk(ctx) as desk:
        found = await outbox_admin.entries(desk, admin_actor(as_), state=state, limit=limit)
    if json:
        print_json([entry.to_json() for entry in found])
        return
    zone = zone_of(ctx)
    typer.echo(table(
        ["ID", "KIND", "TICKET", "TO", "STATE", "TRIES", "NEXT TRY", "LAST ERROR"],
        [
            [
                str(entry.id), entry.kind, entry.ticket_ref or "", visible(entry.recipient), entry.state,
                str(entry.attempts), when(entry.next_attempt_at, zone), visible(entry.last_error)[:80],
            ]
            for entry in found
        ],
    ))


@outbox_app.command("retry")
@handled
async def outbox_retry(
    ctx: typer.Context,
    ids: Annotated[list[int] | None, typer.Argument(help="Outbox ids (from `termdesk outbox list`).")] = None,
    all_failed: Annotated[bool, typer.Option("--all-failed", help="Every failed mail.")] = False,
    as_: AsAdmin = None,
) -> None:
    """Queue failed (or deferred) mail again; it keeps its Message-ID and goes out at the next worker pass."""
    async with opened_desk(ctx) as desk:
        count = await outbox_admin.retry(desk, admin_actor(as_), list(ids or []), all_failed=all_failed)
    typer.echo(f"Queued {count} mail(s) again; `termdesk outbox flush` or `termdesk serve` sends them.")


@outbox_app.command("flush")
@handled
async def outbox_flush(
    ctx: typer.Context,
    once: Annotated[
        bool, typer.Option("--once", help="Only mail that is due (respect retry backoff); one attempt each.")
    ] = False,
    as_: AsAdmin = None,
) -> None:
    """Send what is queued now (also mail waiting for a retry, unless --once), then exit."""
    _require_smtp(ctx)
    settings = invocation(ctx).settings()
    async with opened_desk(ctx) as desk:
        from core.policy import require_admin

        require_admin(await desk.resolve(admin_actor(as_)), "flush the outbox")
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        try:
            counts = await OutboxWorker(desk.db, settings.smtp).flush(stop=stop, ignore_backoff=not once)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    _report(counts)
    if counts.failed:
        raise typer.Exit(1)


@app.command()
@handled
async def serve(ctx: typer.Context) -> None:
    """Run the IMAP sync, the outbox worker and the scheduler (rules, SLA, auto-close) until SIGTERM or Ctrl-C."""
    from core.mail.serve import serve as run_serve

    call = invocation(ctx)
    settings = call.settings()
    if not settings.mailbox and not settings.smtp.configured and not settings.automation.enabled:
        where = call.config or "named by --config or TERMDESK_CONFIG"
        raise ConfigError(
            f"Nothing to serve: configure [[mailbox]] and/or [smtp], or enable [automation], in the config file "
            f"{where} (see config.example.toml)."
        )
    if settings.smtp.configured:
        settings.smtp.password()  # a missing password variable is a config error now, not a log line later
    async with opened_desk(ctx) as desk:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stop_gracefully(signum: int) -> None:
            # The batch or message in flight is finished; a second signal interrupts at once.
            stop.set()
            loop.remove_signal_handler(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop_gracefully, signum)
        parts = [
            name for name, on in (("IMAP sync", settings.mailbox), ("outbox", settings.smtp.configured),
                                  ("scheduler", settings.automation.enabled)) if on
        ]
        typer.echo(f"Serving {' and '.join(parts)}; Ctrl-C or SIGTERM stops gracefully. Progress goes to the log.",
                   err=True)
        try:
            await run_serve(desk, settings, stop)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
    typer.echo("Stopped.", err=True)


# -- templates -----------------------------------------------------------------------


TemplateKind = Annotated[str, typer.Argument(help="auto-ack, resolved or notification.")]
DepartmentName = Annotated[str, typer.Argument(help="Department name.")]


def _print_template(view: outbox_admin.templates.TemplateView) -> None:
    state = "custom" if view.custom else "built-in"
    typer.echo(visible(f"{view.department} / {view.kind} ({state})"))
    typer.echo(visible_block(f"Subject: {view.subject}\n\n{view.body}"))


@template_app.command("show")
@handled
async def template_show(
    ctx: typer.Context, department: DepartmentName, kind: TemplateKind, as_: AsAdmin = None
) -> None:
    """Show a department's template (Jinja2 syntax, e.g. {{ ref }}, {{ contact_name }})."""
    async with opened_desk(ctx) as desk:
        view = await outbox_admin.show_template(desk, admin_actor(as_), department, kind)
    _print_template(view)


@template_app.command("set")
@handled
async def template_set(
    ctx: typer.Context,
    department: DepartmentName,
    kind: TemplateKind,
    subject: Annotated[str | None, typer.Option("--subject", help="Subject template.")] = None,
    body: Annotated[str | None, typer.Option("--body", help="Body template.")] = None,
    body_file: Annotated[Path | None, typer.Option("--body-file", help="Read the body template from a file.")] = None,
    as_: AsAdmin = None,
) -> None:
    """Change a department's template; it is checked by rendering it with sample values first."""
    if body is not None and body_file is not None:
        raise BadArgument("Give the body with --body or --body-file, not both.")
    if body_file is not None:
        try:
            body = body_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise BadArgument(f"The body file {body_file} cannot be read as UTF-8 text ({error}); fix it.") from None
    if subject is None and body is None:
        raise BadArgument("Nothing to change; give --subject and/or --body (or use `termdesk template reset`).")
    async with opened_desk(ctx) as desk:
        view = await outbox_admin.set_template(desk, admin_actor(as_), department, kind, subject=subject, body=body)
    _print_template(view)


@template_app.command("reset")
@handled
async def template_reset(
    ctx: typer.Context, department: DepartmentName, kind: TemplateKind, as_: AsAdmin = None
) -> None:
    """Go back to the built-in template."""
    async with opened_desk(ctx) as desk:
        view = await outbox_admin.set_template(desk, admin_actor(as_), department, kind, subject=None, body=None)
    _print_template(view)


@agent_app.command("notify")
@handled
async def agent_notify(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument(help="The agent.")],
    state: Annotated[str, typer.Argument(help="on or off.")],
    as_: Annotated[str | None, typer.Option("--as", help="Acting agent (yourself, or an admin).")] = None,
) -> None:
    """Opt an agent in to (or out of) mail about new tickets and customer replies in their departments."""
    wanted = state.strip().lower()
    if wanted not in ("on", "off"):
        raise BadArgument(f"{state!r} is neither on nor off; use one of them.")
    async with opened_desk(ctx) as desk:
        await outbox_admin.set_notifications(desk, admin_actor(as_), handle, wanted == "on")
    typer.echo(visible(f"Notification mail for {handle.strip().lower()} is {wanted}."))
