"""CLI for the automation: `rule …` (admins), `agent pause/resume/max-load`, `department sla/assignment/auto-close`,
and `automation run` (one scheduler pass now)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import BadArgument
from core.policy import Actor
from tui.cli import (
    AsAdmin,
    Json,
    _typer,
    admin_actor,
    agent_app,
    app,
    department_app,
    handled,
    opened_desk,
    print_json,
    when,
    zone_of,
)
from tui.plain import table, visible

rule_app = _typer("Rules: what happens to tickets automatically (admins). Export and import them as TOML.")
automation_app = _typer("The scheduler's time-based work and the rules, run once by hand.")
app.add_typer(rule_app, name="rule")
app.add_typer(automation_app, name="automation")

RuleName = Annotated[str, typer.Argument(help="The rule's name (quote it) or id.")]
Trigger = Annotated[
    str | None,
    typer.Option("--trigger", help="ticket_created, customer_replied, agent_replied, note_added, status_changed, "
                 "transferred, sla_at_risk, sla_breached, sla_due_in:MINUTES, or time:SINCE:HOURS[:business] with "
                 "SINCE one of created, customer_message, agent_reply."),
]
When = Annotated[
    list[str] | None,
    typer.Option("--when", help="A condition group, \"FIELD OP VALUE && FIELD OP VALUE\"; repeat for alternatives "
                 "(a ticket matches when any group matches). OP: contains, not_contains, starts, ends, equals, "
                 "not_equals, regex (text); lt, le, gt, ge (hours_since_*)."),
]
Do = Annotated[
    list[str] | None,
    typer.Option("--do", help="An action, in order: \"transfer DEPARTMENT\", \"assign HANDLE\", "
                 "\"assign round-robin\", \"assign least-loaded\", \"unassign\", \"add_tag T1,T2\", \"remove_tag T\", "
                 "\"set_priority P\", "
                 "\"set_status S\", \"send_template KIND\", \"notify [EVENT]\", \"mark_spam\", \"note TEXT\"."),
]


def parse_trigger_option(text: str) -> Any:
    if text.startswith("sla_due_in:"):
        try:
            return {"on": "sla_due_in", "minutes": float(text.split(":", 1)[1])}
        except ValueError:
            raise BadArgument(f"{text!r} is not an SLA trigger; write it like sla_due_in:30 (minutes).") from None
    if not text.startswith("time:"):
        return text.strip()
    parts = text.split(":")
    if len(parts) not in (3, 4) or (len(parts) == 4 and parts[3] != "business"):
        raise BadArgument(f"{text!r} is not a time trigger; write it like time:customer_message:24:business.")
    try:
        hours = float(parts[2])
    except ValueError:
        raise BadArgument(f"{parts[2]!r} is not a number of hours; write it like time:created:4.") from None
    return {"on": "time", "since": parts[1], "hours": hours, "business": len(parts) == 4}


def parse_group(text: str) -> list[dict[str, Any]]:
    group = []
    for part in text.split("&&"):
        words = part.strip().split(None, 2)
        if len(words) < 3:
            raise BadArgument(f"{part.strip()!r} is not a condition; write it like \"subject contains refund\".")
        field, op, value = words
        number: Any = value
        if field.startswith("hours_since_"):
            try:
                number = float(value)
            except ValueError:
                raise BadArgument(f"{value!r} is not a number of hours for {field}.") from None
        group.append({"field": field, "op": op, "value": number})
    return group


def parse_action_option(text: str) -> dict[str, Any]:
    words = text.strip().split(None, 1)
    if not words:
        raise BadArgument("An empty --do; write actions like \"transfer Returns\".")
    verb, rest = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    if verb == "assign":
        if rest in ("round-robin", "least-loaded"):
            return {"do": "assign", "how": rest}
        return {"do": "assign", "how": "agent", "agent": rest}
    if verb == "unassign":
        return {"do": "assign", "how": "unassign"}
    key = {"transfer": "department", "set_priority": "priority", "set_status": "status",
           "send_template": "template", "note": "body", "notify": "event"}.get(verb)
    if verb in ("add_tag", "remove_tag"):
        return {"do": verb, "tags": [tag.strip() for tag in rest.split(",") if tag.strip()]}
    if verb == "mark_spam":
        return {"do": "mark_spam"}
    if key is None:
        raise BadArgument(f"{verb!r} is not an action; see `termdesk rule add --help`.")
    if verb == "notify" and not rest:
        return {"do": "notify"}
    return {"do": verb, key: rest}


def _changes(trigger: str | None, when_: list[str] | None, do: list[str] | None, **plain: Any) -> dict[str, Any]:
    changes: dict[str, Any] = {key: value for key, value in plain.items() if value is not None}
    if trigger is not None:
        changes["trigger"] = parse_trigger_option(trigger)
    if when_:
        changes["when"] = [parse_group(group) for group in when_]
    if do:
        changes["actions"] = [parse_action_option(action) for action in do]
    return changes


def describe_trigger(trigger: dict[str, Any]) -> str:
    if trigger["on"] == "sla_due_in":
        return f"SLA due in {trigger['minutes']:g} min"
    if trigger["on"] != "time":
        return str(trigger["on"])
    unit = "business hours" if trigger.get("business") else "hours"
    return f"{trigger['hours']:g} {unit} since {trigger['since']}"


@rule_app.command("list")
@handled
async def rule_list(ctx: typer.Context, json: Json = False, as_: AsAdmin = None) -> None:
    """List the rules in the order they run."""
    async with opened_desk(ctx) as desk:
        rules = await desk.rules(admin_actor(as_))
    if json:
        print_json([rule.to_dict() for rule in rules])
        return
    rows = [
        [str(rule.order), rule.name, "on" if rule.active else "off", describe_trigger(rule.trigger),
         str(len(rule.groups)), str(len(rule.actions)), "stop" if rule.stop else ""]
        for rule in rules
    ]
    typer.echo(table(["ORDER", "NAME", "ACTIVE", "TRIGGER", "GROUPS", "ACTIONS", ""], rows) if rows else "No rules.")


@rule_app.command("show")
@handled
async def rule_show(ctx: typer.Context, name: RuleName, json: Json = False, as_: AsAdmin = None) -> None:
    """Show one rule, as the TOML `rule import` reads."""
    from core.rules.model import to_toml

    async with opened_desk(ctx) as desk:
        [rule] = await desk.rules(admin_actor(as_), name)
    if json:
        print_json(rule.to_dict())
    else:
        typer.echo(visible(to_toml([rule])))


@rule_app.command("add")
@handled
async def rule_add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="A unique name, e.g. \"Route returns\".")],
    trigger: Trigger = None,
    when_: When = None,
    do: Do = None,
    note: Annotated[str, typer.Option("--note")] = "",
    order: Annotated[int, typer.Option("--order", help="Rules run by order, then age.")] = 0,
    stop: Annotated[bool, typer.Option("--stop", help="No later rule runs on the same event.")] = False,
    inactive: Annotated[
        bool, typer.Option("--inactive", help="Add it switched off (try it with `rule test`).")
    ] = False,
    as_: AsAdmin = None,
) -> None:
    """Add a rule."""
    if trigger is None or not do:
        raise BadArgument("A rule needs --trigger and at least one --do; see `termdesk rule add --help`.")
    data = {"name": name, "note": note, "order": order, "stop": stop, "active": not inactive,
            **_changes(trigger, when_, do)}
    async with opened_desk(ctx) as desk:
        rule = await desk.add_rule(admin_actor(as_), data)
    typer.echo(visible(f"Added rule {rule.name!r} ({'on' if rule.active else 'off'})."))


@rule_app.command("edit")
@handled
async def rule_edit(
    ctx: typer.Context,
    name: RuleName,
    rename: Annotated[str | None, typer.Option("--name", help="A new name.")] = None,
    trigger: Trigger = None,
    when_: When = None,
    always: Annotated[bool, typer.Option("--always", help="Drop all conditions.")] = False,
    do: Do = None,
    note: Annotated[str | None, typer.Option("--note")] = None,
    order: Annotated[int | None, typer.Option("--order")] = None,
    stop: Annotated[bool | None, typer.Option("--stop/--no-stop", show_default=False)] = None,
    as_: AsAdmin = None,
) -> None:
    """Change parts of a rule; what is not given stays."""
    changes = _changes(trigger, when_, do, name=rename, note=note, order=order, stop=stop)
    if always:
        changes["when"] = []
    async with opened_desk(ctx) as desk:
        rule = await desk.edit_rule(admin_actor(as_), name, changes)
    typer.echo(visible(f"Changed rule {rule.name!r}."))


async def _switch(ctx: typer.Context, name: str, active: bool, as_: str | None) -> None:
    async with opened_desk(ctx) as desk:
        rule = await desk.edit_rule(admin_actor(as_), name, {"active": active})
    typer.echo(visible(f"Rule {rule.name!r} is {'on' if active else 'off'}."))


@rule_app.command("enable")
@handled
async def rule_enable(ctx: typer.Context, name: RuleName, as_: AsAdmin = None) -> None:
    """Switch a rule on."""
    await _switch(ctx, name, True, as_)


@rule_app.command("disable")
@handled
async def rule_disable(ctx: typer.Context, name: RuleName, as_: AsAdmin = None) -> None:
    """Switch a rule off (it stays, for `rule test` and later)."""
    await _switch(ctx, name, False, as_)


@rule_app.command("delete")
@handled
async def rule_delete(ctx: typer.Context, name: RuleName, as_: AsAdmin = None) -> None:
    """Delete a rule."""
    async with opened_desk(ctx) as desk:
        gone = await desk.delete_rule(admin_actor(as_), name)
    typer.echo(visible(f"Deleted rule {gone!r}."))


@rule_app.command("export")
@handled
async def rule_export(ctx: typer.Context, as_: AsAdmin = None) -> None:
    """Print every rule as TOML (for version control): `termdesk rule export > rules.toml`."""
    async with opened_desk(ctx) as desk:
        typer.echo(await desk.export_rules(admin_actor(as_)), nl=False)


@rule_app.command("import")
@handled
async def rule_import(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="A TOML file of [[rule]] tables; - for standard input.")],
    as_: AsAdmin = None,
) -> None:
    """Add the file's rules, replacing rules of the same name (others stay)."""
    import sys

    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadArgument(f"Cannot read {path} ({error}); give a readable UTF-8 TOML file.") from None
    async with opened_desk(ctx) as desk:
        added, replaced = await desk.import_rules(admin_actor(as_), text)
    typer.echo(f"Imported rules: {added} added, {replaced} replaced.")


@rule_app.command("test")
@handled
async def rule_test(
    ctx: typer.Context,
    name: RuleName,
    since: Annotated[str, typer.Option("--since", help="The period to replay: 30m, 12h, 7d, 2w.")] = "7d",
    json: Json = False,
    as_: AsAdmin = None,
) -> None:
    """Dry run: the tickets the rule would have matched in the period and what it would have done. Changes nothing."""
    async with opened_desk(ctx) as desk:
        rule, hits, looked = await desk.test_rule(admin_actor(as_), name, since)
        refs = {hit.ticket_id: desk.ref(hit.ticket_id) for hit in hits}
    if json:
        print_json({"rule": rule.name, "looked_at": looked, "matches": [
            {"ticket": refs[hit.ticket_id], "at": hit.at.isoformat(), "would": list(hit.would)} for hit in hits]})
        return
    zone = zone_of(ctx)
    for hit in hits:
        typer.echo(visible(f"{when(hit.at, zone)}  {refs[hit.ticket_id]}: would {'; '.join(hit.would)}"))
    typer.echo(visible(f"Rule {rule.name!r} would have matched {len(hits)} of {looked} occurrences "
                       f"in the last {since}; nothing was changed."))


# -- agents and departments ----------------------------------------------------------


@agent_app.command("pause")
@handled
async def agent_pause(ctx: typer.Context, handle: Annotated[str, typer.Argument()],
                      as_: Annotated[str | None, typer.Option("--as", help="Act as this agent.")] = None) -> None:
    """Take a break: no tickets are assigned automatically until `agent resume`."""
    async with opened_desk(ctx) as desk:
        agent = await desk.set_availability(as_ or Actor.operator(), handle, "paused")
    typer.echo(visible(f"{agent.handle} is paused."))


@agent_app.command("resume")
@handled
async def agent_resume(ctx: typer.Context, handle: Annotated[str, typer.Argument()],
                       as_: Annotated[str | None, typer.Option("--as", help="Act as this agent.")] = None) -> None:
    """Back from a break: automatic assignment includes the agent again."""
    async with opened_desk(ctx) as desk:
        agent = await desk.set_availability(as_ or Actor.operator(), handle, "available")
    typer.echo(visible(f"{agent.handle} is available."))


@agent_app.command("max-load")
@handled
async def agent_max_load(
    ctx: typer.Context,
    handle: Annotated[str, typer.Argument()],
    limit: Annotated[int | None, typer.Argument(help="Most active tickets assigned automatically; omit for none.")]
    = None,
    as_: AsAdmin = None,
) -> None:
    """Set (or clear) the most active tickets automatic assignment gives the agent."""
    async with opened_desk(ctx) as desk:
        await desk.set_max_load(admin_actor(as_), handle, limit)
    typer.echo(visible(f"{handle}: maximum load {limit if limit is not None else 'none'}."))


@department_app.command("assignment")
@handled
async def department_assignment(
    ctx: typer.Context,
    department: Annotated[str, typer.Argument()],
    mode: Annotated[str, typer.Argument(help="manual, round-robin or least-loaded.")],
    as_: AsAdmin = None,
) -> None:
    """How new and transferred tickets of a department are assigned."""
    async with opened_desk(ctx) as desk:
        await desk.set_automation(admin_actor(as_), department, "assignment", mode)
    typer.echo(visible(f"{department}: assignment {mode}."))


@department_app.command("auto-close")
@handled
async def department_auto_close(
    ctx: typer.Context,
    department: Annotated[str, typer.Argument()],
    days: Annotated[int, typer.Argument(help="Days a pending ticket waits for the customer; 0 never closes.")],
    as_: AsAdmin = None,
) -> None:
    """Resolve pending tickets the customer has not answered for DAYS days (default 3), with the closing mail."""
    async with opened_desk(ctx) as desk:
        await desk.set_automation(admin_actor(as_), department, "auto_close_days", days)
    typer.echo(visible(f"{department}: auto-close after {days} days." if days else f"{department}: no auto-close."))


@department_app.command("sla")
@handled
async def department_sla(
    ctx: typer.Context,
    department: Annotated[str, typer.Argument()],
    path: Annotated[Path | None, typer.Argument(help="A TOML file with the policy; omit with --clear.")] = None,
    clear: Annotated[bool, typer.Option("--clear", help="Remove the department's SLA policy.")] = False,
    as_: AsAdmin = None,
) -> None:
    """Set a department's SLA policy from TOML (first_response, next_response, resolution in business minutes,
    at_risk, [calendar], [priorities.urgent]); see config.example.toml."""
    policy: dict[str, Any] | None = None
    if not clear:
        if path is None:
            raise BadArgument("Give the policy's TOML file, or --clear to remove the policy.")
        try:
            policy = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            raise BadArgument(f"Cannot read {path} ({error}); give a readable UTF-8 TOML file.") from None
        except tomllib.TOMLDecodeError as error:
            raise BadArgument(f"{path} is not valid TOML ({error}); fix it and try again.") from None
    async with opened_desk(ctx) as desk:
        await desk.set_automation(admin_actor(as_), department, "sla", policy)
    typer.echo(visible(f"{department}: SLA policy {'removed' if clear else 'set'}."))


@automation_app.command("run")
@handled
async def automation_run(ctx: typer.Context) -> None:
    """One scheduler pass now: rules on new events, SLA at-risk/breach, time rules, auto-close, waiting tickets."""
    from core.scheduler import Scheduler

    async with opened_desk(ctx) as desk:
        report = await Scheduler(desk.db, desk.outbox).run_once()
    typer.echo(
        f"Rules fired {report.rule_firings}, SLA events {report.sla_events}, time rules {report.time_firings}, "
        f"auto-closed {report.auto_closed}, assigned {report.assigned}."
    )
