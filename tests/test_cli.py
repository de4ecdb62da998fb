"""The `termdesk` command line as scripts see it: output, JSON shapes, exit codes, error sentences, database state.

Most cases run in-process through Typer's CliRunner (fast); a handful run the
real console script in a subprocess, where tracebacks, exit codes and
standard input are exactly what a shell sees.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import pytest
from typer.testing import CliRunner, Result

import tui.cli
from core import Desk
from core.errors import BadArgument
from core.views import TicketDetail
from tui.cli import app, read_body
from tui.plain import display_width, json_text, table, truncate, visible, visible_block

T = TypeVar("T")
REPO = Path(__file__).resolve().parents[1]
NOT_FOUND = 4

# The cast (departments): bill/Billing, tech/Technical, both/Billing+Technical,
# sup/supervisor of Billing, boss/admin in Returns only.
AGENTS = [
    ("bill", "agent", ["Billing"]),
    ("tech", "agent", ["Technical"]),
    ("both", "agent", ["Billing", "Technical"]),
    ("sup", "supervisor", ["Billing"]),
    ("boss", "admin", ["Returns"]),
]
# Tickets made by the template, in order: TD-1 Billing, TD-2 Technical, TD-3 Billing.
TICKETS = [
    ("Billing", "Invoice 1042 charged twice"),
    ("Technical", "Login page shows an error"),
    ("Billing", "Refund for order 77"),
]


def invoke(db: Path | str | None, *args: str, input: str | None = None) -> Result:
    """Run the CLI in-process, with --db when given."""
    prefix = ["--db", str(db)] if db is not None else []
    return CliRunner().invoke(app, [*prefix, *args], input=input)


def ok(db: Path | str | None, *args: str, input: str | None = None) -> str:
    result = invoke(db, *args, input=input)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return result.stdout


def failed(result: Result, code: int) -> str:
    """The one stderr line of a failed command, after checking the exit code and that nothing else leaked."""
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stderr + result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def on_desk(db: Path, work: Callable[[Desk], Coroutine[Any, Any, T]]) -> T:
    """Look at the database through the domain API, independent of the CLI's output."""

    async def run() -> T:
        desk = await Desk.open(str(db))
        try:
            return await work(desk)
        finally:
            await desk.close()

    return asyncio.run(run())


def detail(db: Path, handle: str, ref: str) -> TicketDetail:
    return on_desk(db, lambda desk: desk.ticket(handle, ref))


def run_script(
    *args: str, input: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """The real console script in a child process, as a shell would run it."""
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test reads the developer's desk, config or log directory, or leaves the CLI's log handler behind."""
    monkeypatch.delenv("TERMDESK_DB", raising=False)
    monkeypatch.delenv("TERMDESK_CONFIG", raising=False)
    for name in ("XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if h.get_name() == tui.cli.LOG_HANDLER_NAME]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(level)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A seeded desk built once through the CLI itself; each test gets a copy."""
    db = tmp_path_factory.mktemp("template") / "desk.sqlite3"
    ok(db, "init")
    for name in ("Billing", "Technical", "Returns"):
        ok(db, "department", "add", name, "--email", f"{name.lower()}@example.com")
    for handle, role, departments in AGENTS:
        joins = [arg for name in departments for arg in ("--department", name)]
        ok(db, "agent", "add", handle, "--name", handle.title(), "--email", f"{handle}@example.com",
           "--role", role, *joins)
    for department, subject in TICKETS:
        ok(db, "ticket", "create", "--department", department, "--from", "Jane@Example.org",
           "--name", "Jane Doe", "--subject", subject, "--body", f"Body of: {subject}")
    return db


@pytest.fixture
def db(template: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "desk.sqlite3"
    for suffix in ("", "-wal", "-shm"):
        source = Path(f"{template}{suffix}")
        if source.exists():
            shutil.copy(source, f"{copy}{suffix}")
    return copy


# -- setting up --------------------------------------------------------------------


def test_init_twice_in_a_real_process_succeeds_both_times(tmp_path: Path) -> None:
    db = tmp_path / "fresh.sqlite3"
    first = run_script("--db", str(db), "init")
    second = run_script("--db", str(db), "init")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stderr
    assert "now at schema revision" in first.stdout
    assert "already at schema revision" in second.stdout
    # And the schema really is there: a read command works.
    assert json.loads(run_script("--db", str(db), "department", "list", "--json").stdout) == []


def test_departments_and_agents_are_listed_as_json(db: Path) -> None:
    departments = json.loads(ok(db, "department", "list", "--json"))
    assert [d["name"] for d in departments] == ["Billing", "Returns", "Technical"]
    billing = departments[0]
    assert billing["email"] == "billing@example.com"
    assert billing["members"] == ["bill", "both", "sup"]
    agents = {a["handle"]: a for a in json.loads(ok(db, "agent", "list", "--json"))}
    assert agents["both"]["departments"] == ["Billing", "Technical"]
    assert agents["sup"]["role"] == "supervisor"
    assert agents["boss"]["role"] == "admin"


def test_department_and_agent_tables_are_aligned(db: Path) -> None:
    lines = ok(db, "agent", "list").splitlines()
    assert lines[0].split() == ["HANDLE", "NAME", "EMAIL", "ROLE", "AVAILABILITY", "ACTIVE", "DEPARTMENTS"]
    # Every row starts its EMAIL column where the header does.
    column = lines[0].index("EMAIL")
    assert all(line[column:].startswith(f"{line.split()[0]}@") for line in lines[1:])


def test_department_set_changes_address_and_signature(db: Path) -> None:
    ok(db, "department", "set", "Billing", "--email", "money@example.com", "--signature", "-- Billing team")
    [billing] = [d for d in on_desk(db, lambda desk: desk.departments("bill")) if d.name == "Billing"]
    assert billing.email == "money@example.com"
    assert billing.signature == "-- Billing team"


def test_agent_join_leave_and_deactivate(db: Path) -> None:
    assert "tech joined Billing" in ok(db, "agent", "join", "tech", "Billing")
    assert "was already in" in ok(db, "agent", "join", "tech", "Billing")
    ok(db, "ticket", "show", "TD-1", "--as", "tech")
    assert "tech left Billing" in ok(db, "agent", "leave", "tech", "Billing")
    failed(invoke(db, "ticket", "show", "TD-1", "--as", "tech"), NOT_FOUND)
    ok(db, "agent", "set", "tech", "--inactive")
    message = failed(invoke(db, "counts", "--as", "tech"), 3)
    assert "no active agent" in message


def test_admin_commands_with_as_need_an_admin(db: Path) -> None:
    message = failed(invoke(db, "department", "add", "Sales", "--email", "s@example.com", "--as", "sup"), 5)
    assert message.startswith("Only admins may add departments")
    ok(db, "department", "add", "Sales", "--email", "s@example.com", "--as", "boss")
    assert "Sales" in [d.name for d in on_desk(db, lambda desk: desk.departments("boss"))]


def test_duplicate_department_is_a_conflict(db: Path) -> None:
    message = failed(invoke(db, "department", "add", "Billing", "--email", "b2@example.com"), 6)
    assert "already exists" in message


# -- tickets -------------------------------------------------------------------------


def test_ticket_create_prints_only_the_ref(db: Path) -> None:
    out = ok(db, "ticket", "create", "--department", "Technical", "--from", "x@example.net",
             "--subject", "Printer on fire", "--priority", "urgent", "--channel", "phone", "--body", "Help")
    assert out == "TD-4\n"
    row = detail(db, "tech", "TD-4").ticket
    assert (row.subject, row.priority, row.channel) == ("Printer on fire", "urgent", "phone")
    assert row.department == "Technical"


def test_ticket_list_json_has_the_documented_fields(db: Path) -> None:
    rows = json.loads(ok(db, "ticket", "list", "--as", "bill", "--json"))
    assert {row["ref"] for row in rows} == {"TD-1", "TD-3"}
    for key in ("ref", "subject", "department", "status", "priority", "assignee", "contact", "tags",
                "created_at", "updated_at"):
        assert key in rows[0], key
    assert rows[0]["contact"] == "jane@example.org"
    assert rows[0]["tags"] == []
    assert rows[0]["assignee"] is None


def test_ticket_list_human_table_shows_only_own_departments(db: Path) -> None:
    out = ok(db, "ticket", "list", "--as", "tech")
    assert out.splitlines()[0].split()[:3] == ["REF", "STATUS", "PRIORITY"]
    assert "TD-2" in out and "Login page shows an error" in out
    assert "TD-1" not in out and "TD-3" not in out


def test_ticket_list_filters(db: Path) -> None:
    ok(db, "ticket", "assign", "TD-1", "--as", "bill", "--to", "bill")
    ok(db, "ticket", "tag", "TD-3", "--as", "bill", "--add", "refund")
    ok(db, "ticket", "status", "TD-3", "pending", "--as", "bill")

    def refs(*args: str) -> list[str]:
        return [row["ref"] for row in json.loads(ok(db, "ticket", "list", "--json", *args))]

    assert refs("--as", "bill", "--mine") == ["TD-1"]
    assert refs("--as", "sup", "--mine") == []
    assert refs("--as", "sup", "--assignee", "bill") == ["TD-1"]
    assert refs("--as", "bill", "--unassigned") == ["TD-3"]
    assert refs("--as", "bill", "--tag", "refund") == ["TD-3"]
    assert refs("--as", "bill", "--status", "pending") == ["TD-3"]
    assert sorted(refs("--as", "bill", "--status", "pending", "--status", "new")) == ["TD-1", "TD-3"]
    assert refs("--as", "both", "--department", "Technical") == ["TD-2"]
    assert refs("--as", "both", "--search", "Refund") == ["TD-3"]
    assert refs("--as", "both", "--sort", "oldest") == ["TD-1", "TD-2", "TD-3"]
    message = failed(invoke(db, "ticket", "list", "--as", "bill", "--mine", "--unassigned"), 2)
    assert "only one of" in message
    failed(invoke(db, "ticket", "list", "--as", "bill", "--sort", "sideways"), 2)


def test_ticket_list_pages_with_a_cursor_on_stderr(db: Path) -> None:
    first = invoke(db, "ticket", "list", "--as", "both", "--sort", "newest", "--limit", "2", "--json")
    assert first.exit_code == 0, first.stderr
    assert [row["ref"] for row in json.loads(first.stdout)] == ["TD-3", "TD-2"]
    assert first.stderr.startswith("next cursor: ")
    cursor = first.stderr.strip().removeprefix("next cursor: ")
    second = invoke(db, "ticket", "list", "--as", "both", "--sort", "newest", "--limit", "2",
                    "--cursor", cursor, "--json")
    assert [row["ref"] for row in json.loads(second.stdout)] == ["TD-1"]
    assert "next cursor" not in second.stderr
    human = invoke(db, "ticket", "list", "--as", "both", "--limit", "1")
    assert "next cursor: " in human.stderr


def test_ticket_show_json_has_thread_and_history(db: Path) -> None:
    ok(db, "ticket", "note", "TD-1", "--as", "bill", "--body", "Checked the ledger")
    data = json.loads(ok(db, "ticket", "show", "TD-1", "--as", "bill", "--json"))
    assert data["ref"] == "TD-1" and data["department"] == "Billing"
    assert [(m["kind"], m["author"], m["body"]) for m in data["messages"]] == [
        ("customer", "jane@example.org", "Body of: Invoice 1042 charged twice"),
        ("note", "bill", "Checked the ledger"),
    ]
    assert all("created_at" in m for m in data["messages"])
    assert [e["kind"] for e in data["events"]] == ["ticket.created", "ticket.noted"]
    assert {"kind", "actor", "at", "data"} <= set(data["events"][1])
    assert data["events"][1]["actor"] == "bill"


def test_ticket_show_human_has_thread_and_history(db: Path) -> None:
    ok(db, "ticket", "reply", "TD-1", "--as", "bill", "--body", "We refunded the second charge.")
    out = ok(db, "ticket", "show", "TD-1", "--as", "bill")
    assert out.startswith("TD-1  Invoice 1042 charged twice\n")
    assert "Jane Doe <jane@example.org>" in out
    assert "── reply · bill · " in out and "We refunded the second charge." in out
    history = out.split("\nHistory\n", 1)[1]
    assert "ticket.created" in history and "ticket.replied" in history


def test_reply_sets_status_and_stores_the_message(db: Path) -> None:
    out = ok(db, "ticket", "reply", "TD-1", "--as", "bill", "--body", "Done", "--status", "resolved")
    assert out.startswith("TD-1: Billing · resolved")
    found = detail(db, "bill", "TD-1")
    assert found.ticket.status == "resolved"
    assert (found.messages[-1].kind, found.messages[-1].body) == ("reply", "Done")


def test_body_comes_from_stdin_when_not_given(db: Path) -> None:
    ok(db, "ticket", "note", "TD-1", "--as", "bill", input="line one\nline two\n")
    assert detail(db, "bill", "TD-1").messages[-1].body == "line one\nline two"


def test_body_from_stdin_in_a_real_process(db: Path) -> None:
    made = run_script("--db", str(db), "ticket", "create", "--department", "Returns", "--from", "r@example.com",
                      "--subject", "Broken vase", input="It arrived in pieces.\nPhotos attached.\n")
    assert made.returncode == 0, made.stderr
    assert made.stdout == "TD-4\n"
    replied = run_script(
        "--db", str(db), "ticket", "reply", "TD-4", "--as", "boss", input="Sorry! A new one is on its way.\n"
    )
    assert replied.returncode == 0, replied.stderr
    bodies = [m.body for m in detail(db, "boss", "TD-4").messages]
    assert bodies == ["It arrived in pieces.\nPhotos attached.", "Sorry! A new one is on its way."]


def test_empty_stdin_body_is_refused(db: Path) -> None:
    message = failed(invoke(db, "ticket", "note", "TD-1", "--as", "bill", input=""), 2)
    assert "body is empty" in message


def test_body_is_never_read_from_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal:
        def isatty(self) -> bool:
            return True

        def read(self) -> str:
            raise AssertionError("a terminal must not be read")

    monkeypatch.setattr(sys, "stdin", Terminal())
    with pytest.raises(BadArgument, match="--body TEXT or pipe it"):
        read_body(None)
    assert read_body("given") == "given"


def test_tags_are_added_and_removed(db: Path) -> None:
    out = ok(db, "ticket", "tag", "TD-1", "--as", "bill", "--add", "vip", "--add", "Refund")
    assert out.strip().endswith("refund, vip")
    ok(db, "ticket", "tag", "TD-1", "--as", "bill", "--remove", "vip")
    assert detail(db, "bill", "TD-1").ticket.tags == ("refund",)
    failed(invoke(db, "ticket", "tag", "TD-1", "--as", "bill"), 2)


def test_transfer_moves_the_ticket_with_its_thread(db: Path) -> None:
    ok(db, "ticket", "note", "TD-1", "--as", "both", "--body", "Internal: customer is upset")
    out = ok(db, "ticket", "transfer", "TD-1", "--as", "both", "--to", "Technical", "--note", "Looks like a bug")
    assert out.startswith("TD-1: Technical")
    # The Billing-only agent has lost it; the Technical agent now has everything.
    failed(invoke(db, "ticket", "show", "TD-1", "--as", "bill"), NOT_FOUND)
    moved = detail(db, "tech", "TD-1")
    assert moved.ticket.department == "Technical"
    assert moved.contact.email == "jane@example.org"
    bodies = [m.body for m in moved.messages]
    assert "Internal: customer is upset" in bodies and "Looks like a bug" in bodies
    assert "ticket.transferred" in [e.kind for e in moved.events]


def test_assign_and_unassign(db: Path) -> None:
    ok(db, "ticket", "assign", "TD-1", "--as", "sup", "--to", "bill")
    assert detail(db, "bill", "TD-1").ticket.assignee == "bill"
    assert "unassigned" in ok(db, "ticket", "assign", "TD-1", "--as", "sup", "--none")
    assert detail(db, "bill", "TD-1").ticket.assignee is None
    assert "exactly one of" in failed(invoke(db, "ticket", "assign", "TD-1", "--as", "sup"), 2)
    failed(invoke(db, "ticket", "assign", "TD-1", "--as", "sup", "--to", "bill", "--none"), 2)
    # An agent outside the ticket's department cannot be given it.
    assert "not a member of Billing" in failed(invoke(db, "ticket", "assign", "TD-1", "--as", "sup", "--to", "tech"), 2)


def test_status_and_priority(db: Path) -> None:
    ok(db, "ticket", "status", "TD-1", "--as", "bill", "pending")
    ok(db, "ticket", "priority", "TD-1", "--as", "bill", "high")
    row = detail(db, "bill", "TD-1").ticket
    assert (row.status, row.priority) == ("pending", "high")


def test_bad_status_and_priority_name_the_choices(db: Path) -> None:
    message = failed(invoke(db, "ticket", "status", "TD-1", "--as", "bill", "done"), 2)
    assert message == "'done' is not a ticket status; use one of new, open, pending, resolved, closed, spam."
    assert "is not a priority" in failed(invoke(db, "ticket", "priority", "TD-1", "--as", "bill", "asap"), 2)
    assert detail(db, "bill", "TD-1").ticket.status == "new"


def test_counts_json_per_department(db: Path) -> None:
    ok(db, "ticket", "assign", "TD-1", "--as", "both", "--to", "both")
    counts = json.loads(ok(db, "counts", "--as", "both", "--json"))
    assert [c["department"] for c in counts] == ["Billing", "Technical"]
    billing = counts[0]
    assert (billing["new"], billing["open"], billing["unassigned"], billing["mine"]) == (2, 0, 1, 1)
    assert counts[1]["new"] == 1
    human = ok(db, "counts", "--as", "tech").splitlines()
    assert human[0].split()[:3] == ["DEPARTMENT", "NEW", "OPEN"]
    assert human[1].split()[:2] == ["Technical", "1"]
    assert len(human) == 2


# -- department access ---------------------------------------------------------------------------------------

TICKET_PATHS: list[list[str]] = [
    ["ticket", "show", "{ref}", "--as", "bill"],
    ["ticket", "show", "{ref}", "--as", "bill", "--json"],
    ["ticket", "reply", "{ref}", "--as", "bill", "--body", "hi"],
    ["ticket", "note", "{ref}", "--as", "bill", "--body", "hi"],
    ["ticket", "transfer", "{ref}", "--as", "bill", "--to", "Returns"],
    ["ticket", "assign", "{ref}", "--as", "bill", "--to", "bill"],
    ["ticket", "assign", "{ref}", "--as", "bill", "--none"],
    ["ticket", "status", "{ref}", "resolved", "--as", "bill"],
    ["ticket", "priority", "{ref}", "urgent", "--as", "bill"],
    ["ticket", "tag", "{ref}", "--as", "bill", "--add", "x"],
]


@pytest.mark.parametrize("command", TICKET_PATHS, ids=lambda c: " ".join(c[:2] + c[3:4]))
def test_other_departments_ticket_answers_exactly_like_a_missing_one(db: Path, command: list[str]) -> None:
    other = invoke(db, *(part.format(ref="TD-2") for part in command))
    missing = invoke(db, *(part.format(ref="TD-99") for part in command))
    assert other.exit_code == missing.exit_code == NOT_FOUND
    assert failed(other, NOT_FOUND).replace("TD-2", "REF") == failed(missing, NOT_FOUND).replace("TD-99", "REF")
    assert other.stdout == missing.stdout == ""
    assert detail(db, "tech", "TD-2").ticket.version == 1  # nothing was changed


def test_other_departments_tickets_never_show_in_lists_search_or_counts(db: Path) -> None:
    assert "TD-2" not in ok(db, "ticket", "list", "--as", "bill", "--search", "Login")
    assert "Technical" not in ok(db, "counts", "--as", "bill")
    other = failed(invoke(db, "ticket", "list", "--as", "bill", "--department", "Technical"), NOT_FOUND)
    missing = failed(invoke(db, "ticket", "list", "--as", "bill", "--department", "Nowhere"), NOT_FOUND)
    assert other == missing.replace("Nowhere", "Technical")


# -- errors a person can cause ----------------------------------------------------------------------------------


def test_unknown_agent(db: Path) -> None:
    message = failed(invoke(db, "ticket", "list", "--as", "ghost"), 3)
    assert message == "There is no active agent with handle 'ghost'; list them with `termdesk agent list`."


def test_missing_ticket(db: Path) -> None:
    message = failed(invoke(db, "ticket", "show", "TD-404", "--as", "bill"), NOT_FOUND)
    assert message == "No ticket TD-404 exists; check the reference with `termdesk ticket list`."


def test_uninitialised_database(tmp_path: Path) -> None:
    empty = tmp_path / "empty.sqlite3"
    empty.touch()
    message = failed(invoke(empty, "counts", "--as", "bill"), 8)
    assert message.endswith("has no termdesk tables; run `termdesk init` first.")


def test_missing_database_file_is_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "typo" / "desk.sqlite3"
    message = failed(invoke(missing, "counts", "--as", "bill"), 8)
    assert message == (
        f"The database file {missing} does not exist; run `termdesk init` to create it, or fix --db / TERMDESK_DB."
    )
    assert not missing.parent.exists()


def test_bad_config_toml(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[database\nurl = 'x'\n")
    message = failed(invoke(None, "--config", str(config), "counts", "--as", "bill"), 7)
    assert message.startswith(f"The config file {config} is not valid TOML")


def test_bad_config_value(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[logging]\nlevel = 'LOUD'\n")
    message = failed(invoke(None, "--config", str(config), "counts", "--as", "bill"), 7)
    assert "bad value at `logging.level`" in message


def test_missing_config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TERMDESK_CONFIG", str(tmp_path / "nope.toml"))
    message = failed(invoke(None, "counts", "--as", "bill"), 7)
    assert message == (
        f"The config file {tmp_path / 'nope.toml'} does not exist; copy config.example.toml there or fix --config."
    )


@pytest.mark.slow
def test_errors_in_a_real_process_are_one_line_without_traceback(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("not toml at all [")
    cases = [
        (["--db", str(db), "ticket", "show", "TD-404", "--as", "bill"], NOT_FOUND, "No ticket TD-404 exists"),
        (["--db", str(db), "ticket", "show", "TD-2", "--as", "bill"], NOT_FOUND, "No ticket TD-2 exists"),
        (["--db", str(db), "ticket", "list", "--as", "ghost"], 3, "There is no active agent"),
        (["--db", str(db), "ticket", "status", "TD-1", "--as", "bill", "done"], 2, "'done' is not a ticket status"),
        (["--db", str(db), "department", "add", "Billing", "--email", "x@example.com"], 6, "already exists"),
        (["--db", str(tmp_path / "none.sqlite3"), "counts", "--as", "bill"], 8, "run `termdesk init` to create it"),
        (["--db", "postgresql://nobody@127.0.0.1:1/x", "counts", "--as", "bill"], 8, "Cannot reach the database"),
        (["--config", str(config), "counts", "--as", "bill"], 7, "is not valid TOML"),
        (["--config", str(tmp_path / "missing.toml"), "counts", "--as", "bill"], 7, "does not exist"),
        (["--db", str(db), "ticket", "list"], 2, "Missing option '--as'"),
    ]
    # Independent processes: run them side by side, the interpreter start-up dominates.
    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        results = list(pool.map(lambda case: run_script(*case[0]), cases))
    for (args, code, sentence), done in zip(cases, results, strict=True):
        assert done.returncode == code, (args, done.stderr)
        assert "Traceback" not in done.stderr and "Traceback" not in done.stdout, args
        assert sentence in done.stderr, (args, done.stderr)
        if code != 2 or "--as" not in done.stderr:  # click's usage errors have their usage lines
            assert len(done.stderr.strip().splitlines()) == 1, (args, done.stderr)


def test_unreachable_postgresql_names_the_url_and_the_fix() -> None:
    message = failed(invoke("postgresql://nobody@127.0.0.1:1/x", "counts", "--as", "bill"), 8)
    assert message.startswith("Cannot reach the database postgresql+asyncpg://nobody@127.0.0.1:1/x")
    assert message.endswith("check that it is running and the URL is right.")


def test_unexpected_failure_is_one_line_and_the_traceback_goes_to_the_log(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "logs" / "desk.log"
    config = tmp_path / "config.toml"
    config.write_text(f"[logging]\npath = '{log}'\n")

    async def broken(self: Desk, actor: object) -> None:
        raise RuntimeError("the disk is full of bees")

    monkeypatch.setattr(Desk, "counts", broken)
    message = failed(invoke(db, "--config", str(config), "counts", "--as", "bill"), 1)
    assert message == (
        f"termdesk failed unexpectedly (RuntimeError: the disk is full of bees); see the log file {log}"
    )
    written = log.read_text()
    assert "Traceback" in written and "the disk is full of bees" in written


def test_unexpected_failure_logs_to_the_xdg_state_dir_by_default(
    db: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(self: Desk, actor: object) -> None:
        raise ValueError("odd")

    monkeypatch.setattr(Desk, "counts", broken)
    message = failed(invoke(db, "counts", "--as", "bill"), 1)
    log = Path(message.rsplit("see the log file ", 1)[1])
    assert log.is_relative_to(tmp_path / "xdg_state_home")
    assert "ValueError: odd" in log.read_text()


def test_ctrl_c_exits_130_quietly(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async def interrupted(self: Desk, actor: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Desk, "counts", interrupted)
    result = invoke(db, "counts", "--as", "bill")
    assert result.exit_code == 130
    assert result.stdout == result.stderr == ""


def test_undecodable_argument_is_refused_before_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    db = tmp_path / "x.sqlite3"
    # What Python makes of the bytes b"bad \x9b" in argv: a surrogate escape.
    argv = ["termdesk", "--db", str(db), "department", "add", "bad \udc9b", "--email", "a@example.com"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as stopped:
        tui.cli.main()
    assert stopped.value.code == 2
    sentence = "The argument bad \\udc9b is not valid UTF-8 text; fix its encoding and try again.\n"
    assert capsys.readouterr().err == sentence
    assert not db.exists()


# -- which database ------------------------------------------------------------------------------------------


def _desk_named(path: Path, department: str) -> Path:
    ok(path, "init")
    ok(path, "department", "add", department, "--email", "d@example.com")
    return path


def _department_seen(*args: str) -> str:
    [department] = json.loads(ok(None, *args, "department", "list", "--json"))
    return department["name"]


def test_database_precedence_flag_then_env_then_config_then_xdg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = _desk_named(tmp_path / "flag.sqlite3", "FromFlag")
    env = _desk_named(tmp_path / "env.sqlite3", "FromEnv")
    from_config = _desk_named(tmp_path / "config.sqlite3", "FromConfig")
    config = tmp_path / "config.toml"
    config.write_text(f"[database]\nurl = 'sqlite:///{from_config}'\n")

    # Nothing configured: the XDG data directory.
    ok(None, "init")
    assert (tmp_path / "xdg_data_home" / "termdesk" / "termdesk.sqlite3").exists()
    assert json.loads(ok(None, "department", "list", "--json")) == []

    assert _department_seen("--config", str(config)) == "FromConfig"
    monkeypatch.setenv("TERMDESK_CONFIG", str(config))
    assert _department_seen() == "FromConfig"
    monkeypatch.setenv("TERMDESK_DB", str(env))
    assert _department_seen() == "FromEnv"
    assert _department_seen("--db", str(flag)) == "FromFlag"
    assert _department_seen("--db", f"sqlite:///{flag}", "--config", str(config)) == "FromFlag"


@pytest.mark.postgres
def test_the_same_commands_work_on_postgresql(postgres_url: str) -> None:
    assert "now at schema revision" in ok(postgres_url, "init")
    assert "already at schema revision" in ok(postgres_url, "init")
    for name in ("Billing", "Technical"):
        ok(postgres_url, "department", "add", name, "--email", f"{name.lower()}@example.com")
    ok(postgres_url, "agent", "add", "bill", "--name", "Bill", "--email", "b@example.com", "--department", "Billing")
    ok(postgres_url, "agent", "add", "tech", "--name", "Tech", "--email", "t@example.com", "--department", "Technical")
    ref = ok(postgres_url, "ticket", "create", "--department", "Billing", "--from", "c@example.com",
             "--subject", "Hóa đơn sai / ใบแจ้งหนี้ผิด", input="Xin chào\n").strip()
    ok(postgres_url, "ticket", "tag", ref, "--as", "bill", "--add", "vip")
    [row] = json.loads(ok(postgres_url, "ticket", "list", "--as", "bill", "--search", "แจ้งหนี้", "--json"))
    assert (row["ref"], row["tags"]) == (ref, ["vip"])
    other = failed(invoke(postgres_url, "ticket", "show", ref, "--as", "tech"), NOT_FOUND)
    missing = failed(invoke(postgres_url, "ticket", "show", "TD-999", "--as", "tech"), NOT_FOUND)
    assert other.replace(ref, "REF") == missing.replace("TD-999", "REF")


# -- counters --------------------------------------------------------------------------------------------------


def test_check_finds_and_repairs_wrong_counters(db: Path) -> None:
    assert "agree" in ok(db, "check")
    with sqlite3.connect(db) as connection:
        connection.execute("UPDATE queue_counters SET count = count + 5 WHERE status = 'open'")
    message = failed(invoke(db, "check"), 1)
    assert "disagree with the tickets; run `termdesk check --repair`" in message
    assert "were wrong" in ok(db, "check", "--repair")
    assert "agree" in ok(db, "check")
    assert json.loads(ok(db, "counts", "--as", "bill", "--json"))[0]["open"] == 0


def test_check_warm_fills_the_report_day_cache(db: Path, tmp_path: Path) -> None:
    with sqlite3.connect(db) as connection:  # tickets from ten days ago: ten past days to fill per grouping
        connection.execute("UPDATE tickets SET created_at = datetime('now', '-10 days')")
    output = ok(db, "check", "--warm")
    assert "Filled 40 missing (grouping, day)s of the report day cache (the last 400 days)." in output
    assert "agree" in output
    with sqlite3.connect(db) as connection:
        assert connection.execute("SELECT count(*) FROM report_cached_days").fetchone() == (40,)
    assert "Filled 0 missing" in ok(db, "check", "--warm")
    config = tmp_path / "off.toml"
    config.write_text("[reports]\nday_cache = false\n")
    message = failed(invoke(db, "--config", str(config), "check", "--warm"), 7)
    assert message == (
        "The report day cache is off ([reports] day_cache = false); turn it on in the config file to warm it."
    )


def test_bad_warm_days(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[reports]\nwarm_days = -1\n")
    message = failed(invoke(None, "--config", str(config), "check", "--warm"), 7)
    assert "bad value at `reports.warm_days`" in message and "see config.example.toml" in message


# -- untrusted text ---------------------------------------------------------------------------------------------


def test_subjects_cannot_inject_terminal_escapes(db: Path) -> None:
    hostile = "Pay now \x1b[2J\x1b]0;pwned\x07 \u009b31m \u202eevil"
    ref = ok(db, "ticket", "create", "--department", "Billing", "--from", "m@example.com",
             "--subject", hostile, "--body", "body \x1b[31mred\r fake line").strip()
    listed = ok(db, "ticket", "list", "--as", "bill")
    shown = ok(db, "ticket", "show", ref, "--as", "bill")
    for out in (listed, shown):
        assert "\x1b" not in out and "\x07" not in out and "\u009b" not in out and "\u202e" not in out
        assert "\r" not in out
    assert "Pay now ^[[2J^[]0;pwned^G <U+009B>31m <U+202E>evil" in shown
    assert "body ^[[31mred^M fake line" in shown
    as_json = ok(db, "ticket", "show", ref, "--as", "bill", "--json")
    assert "\x1b" not in as_json and "\u009b" not in as_json and "\u202e" not in as_json
    assert json.loads(as_json)["subject"] == hostile  # escaped, not altered


def test_plain_text_helpers() -> None:
    assert visible("a\x1bb\x00c\x7fd\te\nf") == "a^[b^@c^?d e^Jf"
    assert visible_block("one\r\ntwo\rthree\n\tfour") == "one\ntwo^Mthree\n\tfour"
    assert visible("ok \udc80") == "ok \ufffd"
    assert display_width("ที่นี่") == 2  # Thai vowel and tone marks above the letter take no column
    assert display_width("日本") == 4
    assert truncate("abcdef", 4) == "abc…"
    assert truncate("日本語", 4) == "日…"
    assert truncate("short", 10) == "short"
    lines = table(["A", "B"], [["日本", "x"], ["abc", "y"]]).splitlines()
    assert lines == ["A     B", "日本  x", "abc   y"]
    assert json.loads(json_text({"s": "\u2028\x9b"})) == {"s": "\u2028\x9b"}
    assert "\x9b" not in json_text({"s": "\x9b"})


# -- demo (last: core.demo is built by another engineer) -------------------------------------------------------


def test_demo_builds_a_desk_and_says_how_to_explore_it(tmp_path: Path) -> None:
    pytest.importorskip("core.demo")
    target = tmp_path / "demo.sqlite3"
    out = ok(None, "demo", "--tickets", "40", "--db", str(target), "--no-tui")
    assert "DEPARTMENT" in out and "NEW" in out
    explore = out.strip().splitlines()[-1]
    assert explore.startswith(f"Explore it: termdesk --db {target} ticket list --as ")
    handle = explore.rsplit(" ", 1)[1]
    rows = json.loads(ok(target, "ticket", "list", "--as", handle, "--json", "--limit", "500"))
    assert rows, "the supervisor sees tickets"
    counts = json.loads(ok(target, "counts", "--as", handle, "--json"))
    statuses = ("new", "open", "pending", "resolved", "closed", "spam")
    assert sum(c[s] for c in counts for s in statuses) >= len(rows)


def test_demo_defaults_to_a_new_temporary_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("core.demo")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # re-read TMPDIR
    out = ok(None, "demo", "--tickets", "10")
    built = next(tmp_path.glob("termdesk-demo-*/demo.sqlite3"))
    assert f"Building a demo desk in {built}" in out
