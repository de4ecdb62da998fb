"""A rule's parts as validated data: trigger, condition groups, actions; and the TOML form of rules.

Stored as JSON in `rules` (storage.rules); everything that comes in — CLI
options, TOML files — goes through `parse_rule`, so the engine can trust what
it reads. Mistakes are one sentence naming the rule and the part.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from core.errors import BadArgument

# Event kinds of the change feed -> the trigger they are.
EVENT_TRIGGERS = {
    "ticket.created": "ticket_created",
    "ticket.customer_replied": "customer_replied",
    "ticket.replied": "agent_replied",
    "ticket.noted": "note_added",
    "ticket.status": "status_changed",
    "ticket.auto_closed": "status_changed",
    "ticket.transferred": "transferred",
    "sla.at_risk": "sla_at_risk",
    "sla.breached": "sla_breached",
}
EVENT_TRIGGER_NAMES = tuple(dict.fromkeys(EVENT_TRIGGERS.values()))
TIME_SINCE = ("created", "customer_message", "agent_reply")
TRIGGERS = (*EVENT_TRIGGER_NAMES, "time", "sla_due_in")
SCHEDULED_TRIGGERS = ("time", "sla_due_in")  # run by the scheduler's clock, not by an event

TEXT_OPERATORS = ("contains", "not_contains", "starts", "ends", "equals", "not_equals", "regex")
NUMBER_OPERATORS = ("lt", "le", "gt", "ge", "equals", "not_equals")
TEXT_FIELDS = (
    "channel", "mailbox", "from", "from_domain", "to", "to_domain", "subject", "body",
    "department", "tag", "priority", "status", "assignee",
)
NUMBER_FIELDS = ("hours_since_created", "hours_since_customer_message", "hours_since_agent_reply")
FLAG_FIELDS = ("business_hours",)  # value "open" or "closed"
ACTIONS = (
    "transfer", "assign", "add_tag", "remove_tag", "set_priority", "set_status",
    "send_template", "notify", "mark_spam", "note",
)
ASSIGN_HOW = ("agent", "least-loaded", "round-robin", "unassign")
MAX_CHAIN = 8  # rule-caused events deeper than this start no rule (a bounded chain)


def _fail(rule: str, text: str) -> BadArgument:
    return BadArgument(f"Rule {rule!r}: {text}")


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: Any

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class RuleSpec:
    name: str
    trigger: dict[str, Any]
    groups: tuple[tuple[Condition, ...], ...] = ()
    actions: tuple[dict[str, Any], ...] = ()
    note: str = ""
    active: bool = True
    order: int = 0
    stop: bool = False
    id: int | None = field(default=None, compare=False)
    start_event_id: int = field(default=0, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The TOML/export form (also what `rule show --json` prints)."""
        return {
            "name": self.name,
            "note": self.note,
            "active": self.active,
            "order": self.order,
            "stop": self.stop,
            "trigger": dict(self.trigger),
            "when": [[condition.to_dict() for condition in group] for group in self.groups],
            "actions": [dict(action) for action in self.actions],
        }


def parse_trigger(rule: str, data: Any) -> dict[str, Any]:
    if isinstance(data, str):
        data = {"on": data}
    if not isinstance(data, dict) or data.get("on") not in TRIGGERS:
        raise _fail(rule, f"the trigger must be one of {', '.join(TRIGGERS)} (as trigger = {{on = \"...\"}}).")
    on = data["on"]
    if on == "time":
        since, hours = data.get("since"), data.get("hours")
        if since not in TIME_SINCE:
            raise _fail(rule, f"a time trigger needs since = one of {', '.join(TIME_SINCE)}.")
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
            raise _fail(rule, "a time trigger needs hours = a number above 0.")
        return {"on": "time", "since": since, "hours": hours, "business": bool(data.get("business", False))}
    if on == "sla_due_in":
        minutes = data.get("minutes")
        if isinstance(minutes, bool) or not isinstance(minutes, int | float) or minutes <= 0:
            raise _fail(rule, "an sla_due_in trigger needs minutes = a number of minutes before the due time.")
        if set(data) - {"on", "minutes"}:
            raise _fail(rule, "the trigger sla_due_in takes only minutes.")
        return {"on": "sla_due_in", "minutes": minutes}
    if set(data) - {"on"}:
        raise _fail(rule, f"the trigger {on} takes no options.")
    return {"on": on}


def parse_condition(rule: str, data: Any) -> Condition:
    if not isinstance(data, dict) or set(data) - {"field", "op", "value"}:
        raise _fail(rule, "a condition is {field = \"...\", op = \"...\", value = ...}.")
    name, op, value = str(data.get("field", "")), str(data.get("op", "equals")), data.get("value")
    if name.startswith("contact.") and len(name) > len("contact."):
        kind = "text"
    elif name in TEXT_FIELDS:
        kind = "text"
    elif name in NUMBER_FIELDS:
        kind = "number"
    elif name in FLAG_FIELDS:
        kind = "flag"
    else:
        fields = ", ".join((*TEXT_FIELDS, *NUMBER_FIELDS, *FLAG_FIELDS, "contact.<attribute>"))
        raise _fail(rule, f"{name!r} is not a condition field; use one of {fields}.")
    if kind == "text":
        if op not in TEXT_OPERATORS:
            raise _fail(rule, f"{op!r} does not apply to {name}; use one of {', '.join(TEXT_OPERATORS)}.")
        values: list[Any] = value if isinstance(value, list) else [value]
        if not values or not all(isinstance(item, str) for item in values):
            raise _fail(rule, f"the value for {name} must be text or a list of texts.")
        if op == "regex":
            for item in values:
                try:
                    re.compile(item)
                except re.error as error:
                    raise _fail(rule, f"the regex {item!r} does not compile ({error}).") from None
    elif kind == "number":
        if op not in NUMBER_OPERATORS:
            raise _fail(rule, f"{op!r} does not apply to {name}; use one of {', '.join(NUMBER_OPERATORS)}.")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _fail(rule, f"the value for {name} must be a number of hours.")
    else:
        if op not in ("equals", "not_equals") or value not in ("open", "closed"):
            raise _fail(rule, f"{name} takes op = equals and value = \"open\" or \"closed\".")
    return Condition(name, op, value)


def parse_action(rule: str, data: Any) -> dict[str, Any]:
    if not isinstance(data, dict) or data.get("do") not in ACTIONS:
        raise _fail(rule, f"an action is {{do = \"...\", ...}} with do one of {', '.join(ACTIONS)}.")
    do = data["do"]
    allowed = {
        "transfer": {"department"},
        "assign": {"how", "agent"},
        "add_tag": {"tags"},
        "remove_tag": {"tags"},
        "set_priority": {"priority"},
        "set_status": {"status"},
        "send_template": {"template"},
        "notify": {"event"},
        "mark_spam": set(),
        "note": {"body"},
    }[do]
    extra = set(data) - allowed - {"do"}
    if extra:
        takes = ", ".join(sorted(allowed)) or "no options"
        raise _fail(rule, f"the action {do} takes {takes}, not {sorted(extra)[0]}.")
    action = dict(data)
    for key in allowed - {"agent", "event", "how"}:
        if key not in action:
            raise _fail(rule, f"the action {do} needs {key}.")
    if do == "assign":
        how = action.setdefault("how", "agent" if "agent" in action else "")
        if how not in ASSIGN_HOW:
            raise _fail(rule, f"assign needs how = one of {', '.join(ASSIGN_HOW)}.")
        if (how == "agent") != isinstance(action.get("agent"), str):
            raise _fail(rule, "assign with how = \"agent\" needs agent = a handle (and only then).")
    if do in ("add_tag", "remove_tag"):
        tags = action["tags"]
        action["tags"] = [tags] if isinstance(tags, str) else tags
        if not action["tags"] or not all(isinstance(tag, str) for tag in action["tags"]):
            raise _fail(rule, f"{do} needs tags = a list of tag names.")
    for key in ("department", "priority", "status", "template", "body", "event"):
        if key in action and not (isinstance(action[key], str) and action[key].strip()):
            raise _fail(rule, f"the action {do} needs {key} as text.")
    return action


def parse_rule(data: dict[str, Any]) -> RuleSpec:
    """A rule from its TOML/JSON form, checked throughout."""
    if not isinstance(data, dict):
        raise BadArgument("A rule is a table with name, trigger, when and actions.")
    name = data.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise BadArgument("Every rule needs a name of 1 to 200 characters.")
    name = " ".join(name.split())
    unknown = set(data) - {"name", "note", "active", "order", "stop", "trigger", "when", "actions", "id"}
    if unknown:
        raise _fail(name, f"unknown key {sorted(unknown)[0]!r}; use note, active, order, stop, trigger, when, actions.")
    when = data.get("when", [])
    if isinstance(when, list) and when and all(isinstance(item, dict) for item in when):
        when = [when]  # a single group written as a flat list of conditions
    if not isinstance(when, list) or not all(isinstance(group, list) for group in when):
        raise _fail(name, "when is a list of condition groups (lists); a ticket matches when any group matches.")
    groups = tuple(tuple(parse_condition(name, item) for item in group) for group in when)
    actions = data.get("actions", [])
    if not isinstance(actions, list) or not actions:
        raise _fail(name, "it needs at least one action.")
    order = data.get("order", 0)
    if isinstance(order, bool) or not isinstance(order, int):
        raise _fail(name, "order must be a whole number.")
    note = data.get("note", "")
    if not isinstance(note, str):
        raise _fail(name, "note must be text.")
    return RuleSpec(
        name=name,
        trigger=parse_trigger(name, data.get("trigger")),
        groups=groups,
        actions=tuple(parse_action(name, item) for item in actions),
        note=note,
        active=bool(data.get("active", True)),
        order=order,
        stop=bool(data.get("stop", False)),
    )


# -- TOML ------------------------------------------------------------------------


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        escapes = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r"}
        escaped = "".join(
            escapes[ch] if ch in escapes else f"\\u{ord(ch):04x}" if ord(ch) < 0x20 or ord(ch) == 0x7F else ch
            for ch in value
        )
        return f'"{escaped}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_toml_key(key)} = {_toml_value(item)}" for key, item in value.items()) + "}"
    raise TypeError(f"cannot write {type(value).__name__} as TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_value(key)


def to_toml(rules: list[RuleSpec]) -> str:
    """Rules as a TOML document that `from_toml` reads back to the same rules."""
    out = ["# termdesk rules: `termdesk rule import FILE` replaces rules of the same name.", ""]
    for rule in rules:
        data = rule.to_dict()
        out.append("[[rule]]")
        for key in ("name", "note", "active", "order", "stop", "trigger"):
            out.append(f"{key} = {_toml_value(data[key])}")
        out.append("when = [")
        for group in data["when"]:
            out.append("  [")
            out.extend(f"    {_toml_value(condition)}," for condition in group)
            out.append("  ],")
        out.append("]")
        out.append("actions = [")
        out.extend(f"  {_toml_value(action)}," for action in data["actions"])
        out.append("]")
        out.append("")
    return "\n".join(out)


def from_toml(text: str) -> list[RuleSpec]:
    import tomllib

    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise BadArgument(f"The rules file is not valid TOML ({error}); fix it and import again.") from None
    items = document.get("rule", [])
    if set(document) - {"rule"} or not isinstance(items, list):
        raise BadArgument("A rules file holds [[rule]] tables only; see `termdesk rule export` for the form.")
    rules = [parse_rule(item) for item in items]
    names = [rule.name for rule in rules]
    if len(set(names)) != len(names):
        raise BadArgument("The rules file names a rule twice; rule names must be unique.")
    return rules
