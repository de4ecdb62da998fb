"""CLI for canned responses: `termdesk canned list/show/add/edit/delete --department D`.

Admins and the department's supervisors change them (as the local operator
when --as is not given); every member of the department lists them. The
text is a template: {{ contact_name }}, {{ ticket_ref }}, {{ agent_name }}, …
are filled in when an agent inserts it in the console's composer.
"""

from __future__ import annotations

from typing import Annotated

import typer

from core.canned import VARIABLES
from core.errors import BadArgument, NotFound
from tui.cli import AsAdmin, Body, Json, _typer, admin_actor, app, handled, opened_desk, print_json, read_body, zone_of
from tui.cli import when as shown_time
from tui.plain import table, visible, visible_block

canned_app = _typer(
    "Canned responses per department: ready-made reply texts agents insert in the composer "
    f"(variables: {', '.join('{{ ' + name + ' }}' for name in VARIABLES)})."
)
app.add_typer(canned_app, name="canned")

DepartmentOption = Annotated[
    str, typer.Option("--department", "-d", help="The department they belong to.", show_default=False)
]
Name = Annotated[str, typer.Argument(help="The canned response's name (quote it).", show_default=False)]


@canned_app.command("list")
@handled
async def canned_list(
    ctx: typer.Context, department: DepartmentOption, as_: AsAdmin = None, json: Json = False
) -> None:
    """The department's canned responses with the start of their text."""
    async with opened_desk(ctx) as desk:
        found = await desk.canned_responses(admin_actor(as_), department)
    if json:
        print_json([item.as_dict() for item in found])
        return
    if not found:
        typer.echo("No canned responses; add one with `termdesk canned add NAME --department D --body TEXT`.")
        return
    zone = zone_of(ctx)
    rows = [(item.name, shown_time(item.updated_at, zone), " ".join(item.body.split())) for item in found]
    typer.echo(table(("NAME", "UPDATED", "TEXT"), rows, max_widths={0: 40, 2: 60}))


@canned_app.command("show")
@handled
async def canned_show(
    ctx: typer.Context, name: Name, department: DepartmentOption, as_: AsAdmin = None, json: Json = False
) -> None:
    """One canned response's whole text (the template, not filled in)."""
    async with opened_desk(ctx) as desk:
        found = await desk.canned_responses(admin_actor(as_), department)
    wanted = " ".join(name.split()).lower()
    match = next((item for item in found if item.name.lower() == wanted), None)
    if match is None:
        raise NotFound(f"There is no canned response {name!r} there; list them with `termdesk canned list`.")
    if json:
        print_json(match.as_dict())
    else:
        typer.echo(visible_block(match.body))


@canned_app.command("add")
@handled
async def canned_add(
    ctx: typer.Context, name: Name, department: DepartmentOption, body: Body = None, as_: AsAdmin = None
) -> None:
    """Add one (admins, and supervisors of the department); the text is --body or standard input."""
    text = read_body(body)
    async with opened_desk(ctx) as desk:
        added = await desk.add_canned(admin_actor(as_), department, name, text)
    typer.echo(visible(f"Added canned response {added.name!r} to {added.department}."))


@canned_app.command("edit")
@handled
async def canned_edit(
    ctx: typer.Context,
    name: Name,
    department: DepartmentOption,
    rename: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    body: Annotated[
        str | None, typer.Option("--body", help="New text; `--body -` reads it from standard input.")
    ] = None,
    as_: AsAdmin = None,
) -> None:
    """Rename it or replace its text; what is not given stays."""
    text = read_body(None) if body == "-" else body
    if rename is None and text is None:
        raise BadArgument("Nothing to change; give --name NEW or --body TEXT (or --body - to read standard input).")
    async with opened_desk(ctx) as desk:
        changed = await desk.edit_canned(admin_actor(as_), department, name, new_name=rename, body=text)
    typer.echo(visible(f"Changed canned response {changed.name!r} of {changed.department}."))


@canned_app.command("delete")
@handled
async def canned_delete(ctx: typer.Context, name: Name, department: DepartmentOption, as_: AsAdmin = None) -> None:
    """Delete one (admins, and supervisors of the department)."""
    async with opened_desk(ctx) as desk:
        gone = await desk.delete_canned(admin_actor(as_), department, name)
    typer.echo(visible(f"Deleted canned response {gone!r} from {department}."))
