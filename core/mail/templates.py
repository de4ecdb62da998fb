"""Per-department mail templates (auto-acknowledgement, resolved notice, agent notification).

Admins edit them, so they are untrusted code: they run in Jinja2's
SandboxedEnvironment (no attribute access to Python internals, no imports)
with plain strings as the only variables, never through `str.format`. A
template that fails to render at send time falls back to the built-in one, so
a typo never stops mail. Templates live in the department's `settings` JSON
under "templates"; any language works (they are just Unicode text).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment, SecurityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import BadArgument
from core.policy import Actor, require_admin
from core.tickets import department_by_name
from storage.models import Department

log = logging.getLogger("termdesk.mail.templates")

KINDS = ("auto-ack", "resolved", "notification", "auto-close")
VARIABLES = ("ref", "subject", "contact_name", "contact_email", "agent", "department", "ticket_link", "event")
MAX_TEMPLATE = 20_000

DEFAULTS: dict[str, tuple[str, str]] = {
    "auto-ack": (
        "{{ subject }}",
        "Hello {{ contact_name or contact_email }},\n\n"
        "we received your message and opened ticket {{ ref }} for it. "
        "Reply to this mail to add to it; please keep the reference in the subject.\n\n"
        "{{ department }}",
    ),
    "resolved": (
        "{{ subject }}",
        "Hello {{ contact_name or contact_email }},\n\n"
        "your ticket {{ ref }} ({{ subject }}) has been resolved. "
        "If anything is still open, just reply to this mail and it will be reopened.\n\n"
        "{{ department }}",
    ),
    "auto-close": (
        "{{ subject }}",
        "Hello {{ contact_name or contact_email }},\n\n"
        "we have not heard back from you, so ticket {{ ref }} ({{ subject }}) is now closed. "
        "If you still need help, just reply to this mail and it will be reopened.\n\n"
        "{{ department }}",
    ),
    "notification": (
        "{{ event }}: {{ subject }}",
        "{{ event }} in {{ department }}: {{ ref }} from {{ contact_name }} <{{ contact_email }}>\n\n"
        "{{ subject }}\n{% if ticket_link %}\n{{ ticket_link }}\n{% endif %}",
    ),
}

MAX_REPEAT = 10_000


class _Sandbox(SandboxedEnvironment):
    """Jinja2's sandbox, plus no `**` and no giant `*` repeats: a template must not eat the server's memory."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            raise SecurityError("the ** operator is not allowed in mail templates")
        if operator == "*" and (isinstance(left, (str, list, tuple)) or isinstance(right, (str, list, tuple))):
            count = right if isinstance(left, (str, list, tuple)) else left
            if not isinstance(count, int) or count > MAX_REPEAT:
                raise SecurityError(f"repeating text more than {MAX_REPEAT} times is not allowed in mail templates")
        return super().call_binop(context, operator, left, right)


_ENVIRONMENT = _Sandbox(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)
_SAMPLE = {
    "ref": "TD-1",
    "subject": "Sample subject",
    "contact_name": "Sample Customer",
    "contact_email": "customer@example.com",
    "agent": "agent",
    "department": "Support",
    "ticket_link": "https://desk.example.com/tickets/TD-1",
    "event": "New ticket",
}


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def _source(department: Department, kind: str) -> tuple[str, str]:
    stored = (department.settings or {}).get("templates", {}).get(kind)
    if isinstance(stored, dict) and isinstance(stored.get("subject"), str) and isinstance(stored.get("body"), str):
        return stored["subject"], stored["body"]
    return DEFAULTS[kind]


def _render(subject: str, body: str, variables: dict[str, str]) -> Rendered:
    return Rendered(
        subject=_ENVIRONMENT.from_string(subject).render(variables),
        body=_ENVIRONMENT.from_string(body).render(variables),
    )


def render_text(source: str, variables: dict[str, str]) -> str:
    """Any other admin-written template (e.g. a canned response) in the same sandbox; raises TemplateError."""
    return _ENVIRONMENT.from_string(source).render(variables)


def check_syntax(source: str) -> str | None:
    """None when `source` parses as a template, else the parser's complaint."""
    try:
        _ENVIRONMENT.parse(source)
    except TemplateError as error:
        return str(error)
    return None


def render(department: Department, kind: str, variables: dict[str, str]) -> Rendered:
    """The department's template filled in; the built-in one when the admin's fails."""
    values = {name: str(variables.get(name, "")) for name in VARIABLES}
    subject, body = _source(department, kind)
    try:
        return _render(subject, body, values)
    except (TemplateError, ValueError, TypeError, RecursionError) as error:
        log.warning("department %s: template %s failed (%s); using the built-in one", department.name, kind, error)
        return _render(*DEFAULTS[kind], values)


def check_kind(kind: str) -> str:
    wanted = kind.strip().lower()
    if wanted not in KINDS:
        raise BadArgument(f"{kind!r} is not a template; use one of {', '.join(KINDS)}.")
    return wanted


def validate(subject: str, body: str) -> Rendered:
    """Refuse a template that does not compile or render with sample values (one sentence)."""
    for label, text in (("subject", subject), ("body", body)):
        if len(text) > MAX_TEMPLATE:
            raise BadArgument(f"The template {label} is {len(text)} characters long; shorten it to {MAX_TEMPLATE}.")
    try:
        return _render(subject, body, _SAMPLE)
    except TemplateError as error:
        names = ", ".join(VARIABLES)
        raise BadArgument(
            f"The template cannot be used ({type(error).__name__}: {error}); fix it (variables: {names})."
        ) from None


@dataclass(frozen=True)
class TemplateView:
    department: str
    kind: str
    subject: str
    body: str
    custom: bool


async def show(session: AsyncSession, actor: Actor, department_name: str, kind: str) -> TemplateView:
    require_admin(actor, "read mail templates")
    department = await department_by_name(session, department_name)
    wanted = check_kind(kind)
    subject, body = _source(department, wanted)
    custom = (subject, body) != DEFAULTS[wanted]
    return TemplateView(department.name, wanted, subject, body, custom)


async def store(
    session: AsyncSession, actor: Actor, department_name: str, kind: str, subject: str | None, body: str | None
) -> TemplateView:
    """Set (or with both None, reset to the built-in) one template of a department."""
    require_admin(actor, "edit mail templates")
    department = await department_by_name(session, department_name)
    wanted = check_kind(kind)
    settings: dict[str, Any] = dict(department.settings or {})
    templates = dict(settings.get("templates", {}))
    if subject is None and body is None:
        templates.pop(wanted, None)
    else:
        current_subject, current_body = _source(department, wanted)
        new_subject = current_subject if subject is None else subject
        new_body = current_body if body is None else body
        validate(new_subject, new_body)
        templates[wanted] = {"subject": new_subject, "body": new_body}
    settings["templates"] = templates
    # A new dict: JSON columns only notice assignment, not mutation.
    department.settings = settings
    return await show(session, actor, department.name, wanted)
