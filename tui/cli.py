"""The scriptable command line, `termdesk …`: parses arguments, calls `core.Desk`, prints plain tables or JSON.

It holds no domain logic and no SQL: every command is one or two Desk calls.
Output is for people (aligned tables, untrusted text made visible by
`tui.plain`) or, with `--json`, for scripts. Exit codes are part of the
contract scripts rely on:

    0    success
    1    unexpected failure (traceback in the log file), or `check` found wrong counters
    2    bad argument or usage
    3    unknown agent (--as)
    4    not found (including tickets of departments the agent is not in)
    5    forbidden (an admin operation by a non-admin)
    6    conflict (duplicate name, ticket changed meanwhile)
    7    configuration cannot be used
    8    database unreachable, locked or not initialised
    130  interrupted (Ctrl-C)
"""

from __future__ import annotations

import asyncio
import functools
import logging
import shlex
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, NoReturn, ParamSpec, cast
from zoneinfo import ZoneInfo

import typer

from core.config import LoggingSettings, Settings, choose_database_url, load_settings
from core.desk import ActorLike, Desk
from core.errors import BadArgument, ConfigError, DeskError
from core.policy import Actor
from core.views import (
    AgentView,
    DepartmentCounts,
    DepartmentView,
    Intake,
    QueueFilter,
    QueueSort,
    TicketDetail,
    TicketRow,
)
from storage.errors import StorageError
from tui.plain import json_text, table, visible, visible_block

STORAGE_EXIT_CODE = 8
INTERRUPTED_EXIT_CODE = 130
LOG_HANDLER_NAME = "termdesk.cli.file"

log = logging.getLogger("termdesk.cli")
P = ParamSpec("P")


def _typer(help_text: str) -> typer.Typer:
    # No Rich: help and errors stay plain text, and nothing we print is ever
    # parsed as markup. No pretty tracebacks: errors are handled below.
    return typer.Typer(
        help=help_text,
        add_completion=False,
        pretty_exceptions_enable=False,
        rich_markup_mode=None,
        no_args_is_help=True,
    )


app = _typer("termdesk: a multi-department help desk in the terminal.")
department_app = _typer("Departments: add, change and list them.")
agent_app = _typer("Agents: add, change and list them, and their department memberships.")
ticket_app = _typer("Tickets: create, list, read and work on them as an agent (--as HANDLE).")
app.add_typer(department_app, name="department")
app.add_typer(agent_app, name="agent")
app.add_typer(ticket_app, name="ticket")


# -- invocation: global options, settings, logging ------------------------


@dataclass
class Invocation:
    """The root options; settings are read on first use so `--help` never touches files."""

    db: str | None
    config: Path | None
    _settings: Settings | None = field(default=None, repr=False)

    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
            start_logging(self._settings.logging)
        return self._settings

    def database_url(self) -> str:
        return choose_database_url(self.db, self.settings())

    def logging_settings(self) -> LoggingSettings:
        return self._settings.logging if self._settings else LoggingSettings()


def invocation(ctx: typer.Context | None) -> Invocation:
    found = ctx.find_object(Invocation) if ctx else None
    # A command invoked without the root callback (an embedding caller) gets the defaults.
    return found or Invocation(db=None, config=None)


def log_file(settings: LoggingSettings) -> Path:
    if settings.path is not None:
        return settings.path.expanduser()
    from platformdirs import user_log_path

    return user_log_path("termdesk") / "termdesk.log"


def start_logging(settings: LoggingSettings) -> Path | None:
    """Send logs to the configured file (never the terminal); returns the file, or None if unwritable."""
    path = log_file(settings)
    root = logging.getLogger()
    # Replace our handler rather than stacking one per command (tests run many in one process).
    for handler in [h for h in root.handlers if h.get_name() == LOG_HANDLER_NAME]:
        root.removeHandler(handler)
        handler.close()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    # delay=True: a command that logs nothing creates no file.
    # backslashreplace: a log line quoting undecodable input must still be written.
    handler = logging.FileHandler(path, encoding="utf-8", errors="backslashreplace", delay=True)
    handler.set_name(LOG_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(settings.level)
    return path


# -- the one error-handling wrapper ----------------------------------------


def fail(message: str, code: int) -> NoReturn:
    typer.echo(visible(message), err=True)
    raise typer.Exit(code)


def handled(command: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an async command; turn every failure into one sentence on stderr and an exit code.

    Every command takes `ctx` (Typer passes it by keyword): the log file to
    name on an unexpected failure depends on the config it carries.
    """

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        try:
            asyncio.run(command(*args, **kwargs))
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # Typer's own exits and usage errors (exit 2) keep their meaning
        except DeskError as error:
            fail(error.message, error.exit_code)
        except StorageError as error:
            fail(error.message, STORAGE_EXIT_CODE)
        except KeyboardInterrupt:
            raise typer.Exit(INTERRUPTED_EXIT_CODE) from None
        except Exception as error:
            # Typer hands over its base click Context, not the typer.Context subclass.
            ctx = cast("typer.Context | None", kwargs.get("ctx"))
            path = start_logging(invocation(ctx).logging_settings())
            log.error("%s failed", ctx.command_path if ctx else "termdesk", exc_info=error)
            where = f"see the log file {path}" if path else "the log directory could not be created"
            fail(f"termdesk failed unexpectedly ({type(error).__name__}: {error}); {where}", 1)

    return run


# -- shared plumbing ---------------------------------------------------------


@asynccontextmanager
async def opened_desk(ctx: typer.Context) -> AsyncIterator[Desk]:
    """The desk named by --db / TERMDESK_DB / config; fails with SchemaMissing before `init`."""
    call = invocation(ctx)
    desk = await Desk.open(call.database_url(), call.settings())
    try:
        yield desk
    finally:
        await desk.close()


def admin_actor(handle: str | None) -> ActorLike:
    """Admin commands act as the local operator unless --as names an agent (then Desk checks the role)."""
    return handle if handle else Actor.operator()


def read_body(body: str | None) -> str:
    """--body, else piped standard input; a terminal is never read (it would just hang)."""
    if body is not None:
        return body
    stream = sys.stdin
    if stream is None or stream.isatty():
        raise BadArgument("No message text given; pass --body TEXT or pipe it on standard input.")
    try:
        text = stream.read()
    except UnicodeDecodeError:
        text = "\udc80"  # reported just below, like undecodable bytes smuggled in as surrogates
    if not is_text(text):
        raise BadArgument("Standard input is not valid UTF-8 text; convert it (e.g. with iconv) and try again.")
    # The newline that ends piped text is the pipe's, not the author's.
    return text.rstrip("\n")


def is_text(value: str) -> bool:
    """False for strings carrying undecodable bytes (Python's surrogate escapes), which no database takes."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def print_json(data: Any) -> None:
    typer.echo(json_text(data))


def zone_of(ctx: typer.Context) -> ZoneInfo:
    return ZoneInfo(invocation(ctx).settings().desk.timezone)


def when(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M") if moment else ""


def ticket_line(row: TicketRow) -> str:
    """One line saying where a ticket stands after a change."""
    tags = ", ".join(row.tags) if row.tags else "no tags"
    return visible(
        f"{row.ref}: {row.department} · {row.status} · {row.priority} · "
        f"{row.assignee or 'unassigned'} · {tags}"
    )


def ticket_table(rows: Sequence[TicketRow], zone: ZoneInfo) -> str:
    return table(
        ["REF", "STATUS", "PRIORITY", "DEPARTMENT", "ASSIGNEE", "CONTACT", "SUBJECT", "TAGS", "UPDATED"],
        [
            [
                row.ref, row.status, row.priority, row.department, row.assignee or "-",
                row.contact, row.subject, ",".join(row.tags), when(row.updated_at, zone),
            ]
            for row in rows
        ],
        max_widths={5: 32, 6: 60, 7: 30},
    )


def counts_table(counts: Sequence[DepartmentCounts]) -> str:
    return table(
        ["DEPARTMENT", "NEW", "OPEN", "PENDING", "RESOLVED", "CLOSED", "SPAM", "UNASSIGNED", "MINE"],
        [
            [c.department, *(str(n) for n in (c.new, c.open, c.pending, c.resolved, c.closed, c.spam,
                                                 c.unassigned, c.mine))]
            for c in counts
        ],
    )


def detail_text(detail: TicketDetail, zone: ZoneInfo) -> str:
    row, contact = detail.ticket, detail.contact
    who = f"{contact.name} <{contact.email}>" if contact.name else contact.email
    lines = [
        f"{row.ref}  {visible(row.subject)}",
        table(
            ["FIELD", "VALUE"],
            [
                ["department", row.department],
                ["status", row.status],
                ["priority", row.priority],
                ["assignee", row.assignee or "-"],
                ["contact", who],
                ["channel", row.channel],
                ["tags", ", ".join(row.tags) or "-"],
                ["created", when(row.created_at, zone)],
                ["updated", when(row.updated_at, zone)],
            ],
            show_headers=False,
        ),
        "",
    ]
    for message in detail.messages:
        delivery = f" · mail {message.delivery_status}" if message.delivery_status else ""
        lines.append(f"── {message.kind} · {visible(message.author)} · {when(message.created_at, zone)}{delivery} ──")
        lines.append(visible_block(message.body))
        for attachment in message.attachments:
            lines.append(f"[attachment {attachment.id}: {visible(attachment.filename)}, {attachment.size} bytes]")
        lines.append("")
    lines.append("History")
    history = [
        [when(event.at, zone), event.actor or "-", event.kind, json_text(event.data, indent=None)]
        for event in detail.events
    ]
    lines.append(table(["AT", "BY", "EVENT", "DETAILS"], history, max_widths={3: 100}))
    if detail.other_tickets:
        lines += ["", "Other tickets from this contact", ticket_table(detail.other_tickets, zone)]
    return "\n".join(lines)


def departments_table(departments: Sequence[DepartmentView]) -> str:
    return table(
        ["NAME", "SLUG", "EMAIL", "SENDER NAME", "MEMBERS"],
        [[d.name, d.slug, d.email, d.sender_name, ", ".join(d.members)] for d in departments],
        max_widths={4: 60},
    )


def agents_table(agents: Sequence[AgentView]) -> str:
    return table(
        ["HANDLE", "NAME", "EMAIL", "ROLE", "AVAILABILITY", "ACTIVE", "DEPARTMENTS"],
        [
            [a.handle, a.name, a.email, a.role, a.availability, "yes" if a.active else "no", ", ".join(a.departments)]
            for a in agents
        ],
    )


# Reused option types: Typer reads these annotations.
AsAgent = Annotated[str, typer.Option("--as", help="Handle of the agent doing this.", show_default=False)]
AsAdmin = Annotated[
    str | None, typer.Option("--as", help="Act as this agent (must be an admin) instead of the local operator.")
]
Json = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
Ref = Annotated[str, typer.Argument(help="Ticket reference, e.g. TD-1042.", show_default=False)]
Body = Annotated[str | None, typer.Option("--body", help="Message text; read from standard input when absent.")]


# -- root ----------------------------------------------------------------------


@app.callback()
def root(
    ctx: typer.Context,
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL or SQLite path (overrides TERMDESK_DB and config).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="Config file (default: TERMDESK_CONFIG).")
    ] = None,
) -> None:
    ctx.obj = Invocation(db=db, config=config)


@app.command()
@handled
async def init(ctx: typer.Context) -> None:
    """Create the database schema, or upgrade it; safe to run again."""
    call = invocation(ctx)
    settings = call.settings()
    desk = await Desk.open(call.database_url(), settings, check_schema=False)
    try:
        before, after = await desk.init()
    finally:
        await desk.close()
    where = desk.db.display_url
    if before == after:
        typer.echo(f"The database {where} is already at schema revision {after}.")
    else:
        typer.echo(f"The database {where} is now at schema revision {after} (was {before or 'empty'}).")


@app.command()
@handled
async def counts(ctx: typer.Context, as_: AsAgent, json: Json = False) -> None:
    """Tickets per status in each of your departments."""
    async with opened_desk(ctx) as desk:
        found = await desk.counts(as_)
    if json:
        print_json([item.to_json() for item in found])
    else:
        typer.echo(counts_table(found))


@app.command()
@handled
async def check(
    ctx: typer.Context,
    repair: Annotated[
        bool, typer.Option("--repair", help="Rebuild the counters from the tickets and empty the report day cache.")
    ] = False,
    warm: Annotated[
        bool,
        typer.Option(
            "--warm",
            help="Then fill the report day cache's missing past days ([reports] warm_days), as `termdesk serve` "
            "does at start and after each UTC midnight.",
        ),
    ] = False,
) -> None:
    """Compare the queue counters and the report day cache with the tickets (exit 1 when they disagree)."""
    settings = invocation(ctx).settings()
    if warm and not settings.reports.day_cache:
        raise ConfigError(
            "The report day cache is off ([reports] day_cache = false); turn it on in the config file to warm it."
        )
    async with opened_desk(ctx) as desk:
        wrong = await desk.check_counters(repair=repair)
        stale = await desk.check_report_cache(repair=repair)
        warmed = await desk.warm_report_cache() if warm else None
    if repair:
        typer.echo(f"Rebuilt the queue counters from the tickets; {wrong} counter rows were wrong.")
        typer.echo(f"Emptied the report day cache; {stale} cached days were wrong.")
    if warmed is not None:
        typer.echo(
            f"Filled {warmed} missing (grouping, day)s of the report day cache "
            f"(the last {settings.reports.warm_days} days)."
        )
    if repair:
        return
    if wrong or stale:
        fail(
            f"{wrong} queue counter rows and {stale} cached report days disagree with the tickets; "
            "run `termdesk check --repair`.",
            1,
        )
    else:
        typer.echo("The queue counters and the report day cache agree with the tickets.")


@app.command()
@handled
async def demo(
    ctx: typer.Context,
    tickets: Annotated[int, typer.Option("--tickets", min=0, help="How many tickets to make.")] = 2000,
    db: Annotated[
        str | None, typer.Option("--db", help="Where to build it (default: a new SQLite file in a temp dir).")
    ] = None,
    no_tui: Annotated[
        bool,
        typer.Option("--no-tui", help="Print the counts instead of opening the console (also when not on a terminal)."),
    ] = False,
) -> None:
    """Build a throwaway desk with realistic departments, agents and tickets, and open the console on it."""
    # Imported here: the demo builder is heavy and only this command needs it.
    from core.demo import build_demo

    call = invocation(ctx)
    # Deliberately not TERMDESK_DB or the config: a demo must never fill a real desk.
    url = db or call.db or str(Path(tempfile.mkdtemp(prefix="termdesk-demo-")) / "demo.sqlite3")
    settings = call.settings()
    typer.echo(f"Building a demo desk in {url}")
    desk = await Desk.open(url, settings, check_schema=False)
    try:
        await desk.init()
        summary = await build_demo(desk, tickets=tickets, progress=demo_progress)
        found = await desk.counts(summary.supervisor)
        if not no_tui and sys.stdin.isatty() and sys.stdout.isatty():
            await run_console(desk, summary.supervisor)
            return
    finally:
        await desk.close()
    typer.echo(
        f"Made {summary.departments} departments, {summary.agents} agents and {summary.tickets} tickets "
        f"in {summary.seconds:.1f} s."
    )
    typer.echo(f"\nDepartment counts as the supervisor {summary.supervisor}:")
    typer.echo(counts_table(found))
    typer.echo(f"\nExplore it: termdesk --db {shlex.quote(url)} ticket list --as {summary.supervisor}")


@app.command()
@handled
async def tui(ctx: typer.Context, as_: AsAgent) -> None:
    """Open the agent console: your queues, tickets and replies, kept live."""
    async with opened_desk(ctx) as desk:
        await run_console(desk, as_)


async def run_console(desk: Desk, handle: str) -> None:
    """Run the console for `handle` on an open desk; an unknown agent fails before the screen is taken over."""
    from tui.console import ConsoleApp  # Textual is only imported by the commands that need it

    await desk.login(handle)
    await ConsoleApp(desk, handle).run_async()


def demo_progress(done: int, total: int) -> None:
    # A live counter only on a terminal; logs and pipes get nothing but the result.
    if sys.stderr.isatty():
        typer.echo(f"\r  {done}/{total} tickets", err=True, nl=done >= total)


# -- departments ---------------------------------------------------------------


@department_app.command("add")
@handled
async def department_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Department name, e.g. Billing.")],
    email: Annotated[str, typer.Option("--email", help="The department's own address.")],
    sender_name: Annotated[str, typer.Option("--sender-name", help="Name on outgoing mail.")] = "",
    signature: Annotated[str, typer.Option("--signature", help="Added to replies.")] = "",
    as_: AsAdmin = None,
) -> None:
    """Add a department."""
    async with opened_desk(ctx) as desk:
        made = await desk.add_department(
            admin_actor(as_), name, email=email, sender_name=sender_name, signature=signature
        )
    typer.echo(visible(f"Added department {made.name} ({made.email})."))


@department_app.command("set")
@handled
async def department_set(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Department name.")],
    email: Annotated[str | None, typer.Option("--email")] = None,
    sender_name: Annotated[str | None, typer.Option("--sender-name")] = None,
    signature: Annotated[str | None, typer.Option("--signature")] = None,
    as_: AsAdmin = None,
) -> None:
    """Change a department's address, sender name or signature."""
    async with opened_desk(ctx) as desk:
        changed = await desk.update_department(
            admin_actor(as_), name, email=email, sender_name=sender_name, signature=signature
        )
    typer.echo(visible(f"{changed.name}: {changed.sender_name} <{changed.email}>"))


@department_app.command("list")
@handled
async def department_list(ctx: typer.Context, json: Json = False, as_: AsAdmin = None) -> None:
    """List the active departments."""
    async with opened_desk(ctx) as desk:
        found = await desk.departments(admin_actor(as_))
    if json:
        print_json([item.to_json() for item in found])
    else:
        typer.echo(departments_table(found))


# -- agents ----------------------------------------------------------------------


@agent_app.command("add")
@handled
async def agent_add(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument(help="Login handle, e.g. alice.")],
    name: Annotated[str, typer.Option("--name", help="Full name.")],
    email: Annotated[str, typer.Option("--email", help="The agent's address.")],
    role: Annotated[str, typer.Option("--role", help="agent, supervisor or admin.")] = "agent",
    department: Annotated[
        list[str] | None, typer.Option("--department", help="A department to join; repeat for several.")
    ] = None,
    as_: AsAdmin = None,
) -> None:
    """Add an agent, optionally to departments."""
    async with opened_desk(ctx) as desk:
        made = await desk.add_agent(
            admin_actor(as_), handle, name=name, email=email, role=role, departments=department or ()
        )
    where = ", ".join(made.departments) or "no department yet"
    typer.echo(visible(f"Added {made.role} {made.handle} ({where})."))


@agent_app.command("set")
@handled
async def agent_set(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument(help="The agent's handle.")],
    role: Annotated[str | None, typer.Option("--role", help="agent, supervisor or admin.")] = None,
    name: Annotated[str | None, typer.Option("--name")] = None,
    email: Annotated[str | None, typer.Option("--email")] = None,
    active: Annotated[
        bool | None, typer.Option("--active/--inactive", help="Deactivated agents cannot act.", show_default=False)
    ] = None,
    as_: AsAdmin = None,
) -> None:
    """Change an agent's role, name, address or whether they are active."""
    async with opened_desk(ctx) as desk:
        changed = await desk.set_agent(admin_actor(as_), handle, role=role, name=name, email=email, active=active)
    state = "active" if changed.active else "inactive"
    typer.echo(visible(f"{changed.handle}: {changed.role}, {changed.name} <{changed.email}>, {state}"))


@agent_app.command("join")
@handled
async def agent_join(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument()],
    department: Annotated[str, typer.Argument()],
    as_: AsAdmin = None,
) -> None:
    """Make an agent a member of a department."""
    async with opened_desk(ctx) as desk:
        added = await desk.join(admin_actor(as_), handle, department)
    typer.echo(visible(f"{handle} {'joined' if added else 'was already in'} {department}."))


@agent_app.command("leave")
@handled
async def agent_leave(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument()],
    department: Annotated[str, typer.Argument()],
    as_: AsAdmin = None,
) -> None:
    """Remove an agent from a department."""
    async with opened_desk(ctx) as desk:
        removed = await desk.leave(admin_actor(as_), handle, department)
    typer.echo(visible(f"{handle} {'left' if removed else 'was not in'} {department}."))


@agent_app.command("list")
@handled
async def agent_list(ctx: typer.Context, json: Json = False, as_: AsAdmin = None) -> None:
    """List all agents and their departments."""
    async with opened_desk(ctx) as desk:
        found = await desk.agents(admin_actor(as_))
    if json:
        print_json([item.to_json() for item in found])
    else:
        typer.echo(agents_table(found))


# -- tickets -----------------------------------------------------------------------


@ticket_app.command("create")
@handled
async def ticket_create(
    ctx: typer.Context,
    department: Annotated[str, typer.Option("--department", help="Department that gets the ticket.")],
    sender: Annotated[str, typer.Option("--from", help="The customer's email address.")],
    subject: Annotated[str, typer.Option("--subject")],
    name: Annotated[str, typer.Option("--name", help="The customer's name.")] = "",
    channel: Annotated[str, typer.Option("--channel", help="email, web, phone, chat or api.")] = "email",
    priority: Annotated[str, typer.Option("--priority", help="low, normal, high or urgent.")] = "normal",
    body: Body = None,
) -> None:
    """Open a ticket as an intake would (mail, form, API); prints its reference."""
    intake = Intake(
        department=department, contact_email=sender, contact_name=name, subject=subject,
        body=read_body(body), channel=channel, priority=priority,
    )
    async with opened_desk(ctx) as desk:
        row = await desk.create_ticket(Actor.system(), intake)
    typer.echo(row.ref)


@ticket_app.command("list")
@handled
async def ticket_list(
    ctx: typer.Context,
    as_: AsAgent,
    department: Annotated[str | None, typer.Option("--department")] = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="Repeat for several.")] = None,
    assignee: Annotated[str | None, typer.Option("--assignee", help="Tickets assigned to this handle.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Tickets assigned to you.")] = False,
    unassigned: Annotated[bool, typer.Option("--unassigned")] = False,
    tag: Annotated[str | None, typer.Option("--tag")] = None,
    search: Annotated[str | None, typer.Option("--search", help="Text in subjects and bodies.")] = None,
    sort: Annotated[str, typer.Option("--sort", help="updated, newest, oldest, priority or due.")] = "updated",
    limit: Annotated[int, typer.Option("--limit")] = 50,
    cursor: Annotated[str | None, typer.Option("--cursor", help="Continue after a previous page.")] = None,
    json: Json = False,
) -> None:
    """List tickets of your departments, newest activity first. The next page's cursor goes to stderr."""
    if sum((assignee is not None, mine, unassigned)) > 1:
        raise BadArgument("Give only one of --assignee, --mine and --unassigned.")
    wanted = QueueFilter(
        department=department,
        statuses=tuple(status or ()),
        assignee=as_ if mine else assignee,
        unassigned=unassigned,
        tag=tag,
        text=search,
        sort=cast(QueueSort, sort),  # core rejects unknown orders with a sentence
        limit=limit,
        cursor=cursor,
    )
    async with opened_desk(ctx) as desk:
        page = await desk.queue(as_, wanted)
    if json:
        print_json([row.to_json() for row in page.rows])
    elif page.rows:
        typer.echo(ticket_table(page.rows, zone_of(ctx)))
    else:
        typer.echo("No tickets match.", err=True)
    if page.next_cursor:
        typer.echo(f"next cursor: {page.next_cursor}", err=True)


@ticket_app.command("show")
@handled
async def ticket_show(ctx: typer.Context, ref: Ref, as_: AsAgent, json: Json = False) -> None:
    """A ticket with its thread and history."""
    async with opened_desk(ctx) as desk:
        detail = await desk.ticket(as_, ref)
    if json:
        print_json(detail.to_json())
    else:
        typer.echo(detail_text(detail, zone_of(ctx)))


@ticket_app.command("reply")
@handled
async def ticket_reply(
    ctx: typer.Context,
    ref: Ref,
    as_: AsAgent,
    body: Body = None,
    status: Annotated[str | None, typer.Option("--status", help="Status to set with the reply.")] = None,
) -> None:
    """Reply to the customer."""
    text = read_body(body)
    async with opened_desk(ctx) as desk:
        row = await desk.reply(as_, ref, text, status=status)
    typer.echo(ticket_line(row))


@ticket_app.command("note")
@handled
async def ticket_note(ctx: typer.Context, ref: Ref, as_: AsAgent, body: Body = None) -> None:
    """Add an internal note (never sent to the customer)."""
    text = read_body(body)
    async with opened_desk(ctx) as desk:
        row = await desk.note(as_, ref, text)
    typer.echo(ticket_line(row))


@ticket_app.command("transfer")
@handled
async def ticket_transfer(
    ctx: typer.Context,
    ref: Ref,
    as_: AsAgent,
    to: Annotated[str, typer.Option("--to", help="Department to move the ticket to.")],
    note: Annotated[str | None, typer.Option("--note", help="Internal note explaining why.")] = None,
) -> None:
    """Move a ticket to another department; thread, notes and contact go with it."""
    async with opened_desk(ctx) as desk:
        row = await desk.transfer(as_, ref, to, note)
    typer.echo(ticket_line(row))


@ticket_app.command("assign")
@handled
async def ticket_assign(
    ctx: typer.Context,
    ref: Ref,
    as_: AsAgent,
    to: Annotated[str | None, typer.Option("--to", help="Handle of an agent of the ticket's department.")] = None,
    none: Annotated[bool, typer.Option("--none", help="Unassign.")] = False,
) -> None:
    """Assign a ticket to an agent, or unassign it with --none."""
    if (to is None) == (not none):
        raise BadArgument("Give exactly one of --to HANDLE and --none.")
    async with opened_desk(ctx) as desk:
        row = await desk.assign(as_, ref, to)
    typer.echo(ticket_line(row))


@ticket_app.command("status")
@handled
async def ticket_status(
    ctx: typer.Context,
    ref: Ref,
    status: Annotated[str, typer.Argument(help="new, open, pending, resolved, closed or spam.")],
    as_: AsAgent,
) -> None:
    """Set a ticket's status."""
    async with opened_desk(ctx) as desk:
        row = await desk.set_status(as_, ref, status)
    typer.echo(ticket_line(row))


@ticket_app.command("priority")
@handled
async def ticket_priority(
    ctx: typer.Context,
    ref: Ref,
    priority: Annotated[str, typer.Argument(help="low, normal, high or urgent.")],
    as_: AsAgent,
) -> None:
    """Set a ticket's priority."""
    async with opened_desk(ctx) as desk:
        row = await desk.set_priority(as_, ref, priority)
    typer.echo(ticket_line(row))


@ticket_app.command("tag")
@handled
async def ticket_tag(
    ctx: typer.Context,
    ref: Ref,
    as_: AsAgent,
    add: Annotated[list[str] | None, typer.Option("--add", help="Tag to add; repeat for several.")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="Tag to remove; repeat for several.")] = None,
) -> None:
    """Add and remove tags."""
    if not add and not remove:
        raise BadArgument("Nothing to change; give --add TAG and/or --remove TAG.")
    async with opened_desk(ctx) as desk:
        row = await desk.tag(as_, ref, add or (), remove or ())
    typer.echo(ticket_line(row))


# -- mail sync ---------------------------------------------------------------------


@app.command()
@handled
async def sync(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass over the mailboxes, then exit.")] = False,
    mailbox: Annotated[
        str | None, typer.Option("--mailbox", help="Only this [[mailbox]] (by name); default: all of them.")
    ] = None,
) -> None:
    """Fetch new mail from the configured IMAP mailboxes into tickets; runs until Ctrl-C unless --once."""
    # Imported here: only this command talks IMAP.
    import signal

    from core.mail.imap import sync_all, sync_once
    from core.mail.intake import Intake as MailIntake

    call = invocation(ctx)
    settings = call.settings()
    if not settings.mailbox:
        where = call.config or "named by --config or TERMDESK_CONFIG"
        raise ConfigError(
            f"No mailbox is configured; add a [[mailbox]] section to the config file {where} "
            "(see config.example.toml)."
        )
    chosen = list(settings.mailbox)
    if mailbox is not None:
        chosen = [item for item in settings.mailbox if item.name == mailbox]
        if not chosen:
            names = ", ".join(item.name for item in settings.mailbox)
            raise BadArgument(f"No mailbox is named {mailbox!r}; the configured ones are: {names}.")
    limit = settings.mail.max_message_bytes
    async with opened_desk(ctx) as desk:
        intake = MailIntake(desk, settings)
        if once:
            outcomes = await sync_once(chosen, intake, max_message_bytes=limit)
            done = [outcome.counts for outcome in outcomes if outcome.counts is not None]
            if done:
                typer.echo(table(
                    ["MAILBOX", "FETCHED", "NEW TICKETS", "REPLIES", "DUPLICATES", "QUARANTINED", "DROPPED"],
                    [
                        [c.mailbox, *(str(n) for n in (c.fetched, c.tickets, c.replies, c.duplicates,
                                                          c.quarantined, c.dropped))]
                        for c in done
                    ],
                ))
            failed = [outcome for outcome in outcomes if outcome.error is not None]
            for outcome in failed:
                typer.echo(visible(outcome.error or ""), err=True)
            if failed:
                raise typer.Exit(1)
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()

        def stop_gracefully(signum: int) -> None:
            # The batch in flight is finished and committed; a second Ctrl-C interrupts at once.
            stop.set()
            loop.remove_signal_handler(signum)

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop_gracefully, signum)
        names = ", ".join(item.name for item in chosen)
        typer.echo(f"Syncing {names}; Ctrl-C stops after the batch in flight. Progress goes to the log file.",
                   err=True)
        try:
            await sync_all(chosen, intake, stop, max_message_bytes=limit)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
        typer.echo("Stopped.", err=True)


# Command groups kept in their own modules register themselves on `app`.
from tui import automation_commands, canned_commands, mail_commands, outbox_commands, report_commands  # noqa: E402, F401, I001


def main() -> None:
    """Console-script entry point."""
    # Bytes that are not UTF-8 reach us as surrogate escapes; refuse them here,
    # naming the argument, instead of failing deep inside a database driver.
    for argument in sys.argv[1:]:
        if not is_text(argument):
            shown = argument.encode("utf-8", "backslashreplace").decode("ascii", "replace")
            typer.echo(f"The argument {visible(shown)} is not valid UTF-8 text; fix its encoding and try again.",
                       err=True)
            sys.exit(2)
    app(prog_name="termdesk")


if __name__ == "__main__":
    # Run the importable `tui.cli`, on whose `app` the other command modules registered.
    from tui.cli import main as importable_main

    importable_main()
