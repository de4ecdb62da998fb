"""`termdesk outbox …`, `template …` and `serve` as scripts see them, with a real SMTP server and real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tests.outbox_fixtures import CUSTOMER, customer_mail, open_mail_desk
from tests.smtpserver import SmtpServer
from tui.cli import app

REPO = Path(__file__).resolve().parents[1]
FORBIDDEN = 5
CONFIG_ERROR = 7


def config_file(tmp_path: Path, server: SmtpServer, extra: str = "") -> Path:
    path = tmp_path / "termdesk.toml"
    path.write_text(
        f"""
[logging]
path = "{tmp_path / 'termdesk.log'}"

[smtp]
host = "127.0.0.1"
port = {server.port}
security = "none"
retry_delays_seconds = [0.05]
claim_seconds = 1
poll_seconds = 0.05
{extra}
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def desk_file(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[Path]:
    """A SQLite desk (Support, Billing; agents alice and bob) with one customer mail taken in."""
    import asyncio

    path = tmp_path / "desk.sqlite3"

    async def build() -> None:
        mail = await open_mail_desk(f"sqlite:///{path}", smtp_server)
        await mail.receive(customer_mail())
        await mail.desk.close()

    asyncio.run(build())
    yield path


def wait_until(condition: Callable[[], bool], *, timeout: float = 60.0, what: str = "the condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def invoke(db: Path, config: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", str(db), "--config", str(config), *args])


def one_error_line(result: Result, code: int) -> str:
    assert result.exit_code == code, (result.exit_code, result.stdout, result.stderr, result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def script(db: Path, config: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--db", str(db), "--config", str(config), *args],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_list_retry_and_flush_for_admins(tmp_path: Path, desk_file: Path, smtp_server: SmtpServer) -> None:
    config = config_file(tmp_path, smtp_server)
    assert invoke(desk_file, config, "ticket", "reply", "TD-1", "--as", "alice", "--body", "On it.").exit_code == 0
    listed = json.loads(invoke(desk_file, config, "outbox", "list", "--json").stdout)
    assert sorted(entry["kind"] for entry in listed) == ["auto-ack", "reply"]
    assert {entry["state"] for entry in listed} == {"queued"}
    assert "Only admins" in one_error_line(invoke(desk_file, config, "outbox", "list", "--as", "alice"), FORBIDDEN)
    assert "Only admins" in one_error_line(invoke(desk_file, config, "outbox", "flush", "--as", "alice"), FORBIDDEN)

    smtp_server.recorder.script.append("550 5.1.1 mailbox unavailable")
    flushed = invoke(desk_file, config, "outbox", "flush")
    assert flushed.exit_code == 1 and "Sent 1, deferred 0, failed 1." in flushed.stdout
    [failed] = json.loads(invoke(desk_file, config, "outbox", "list", "--state", "failed", "--json").stdout)
    assert "550" in failed["last_error"]
    ticket = invoke(desk_file, config, "ticket", "show", "TD-1", "--as", "alice").stdout
    assert "· mail sent ──" in ticket and "mail.failed" in ticket  # the reply went; the acknowledgement did not
    shown = invoke(desk_file, config, "outbox", "list")
    assert "failed" in shown.stdout and "550 5.1.1" in shown.stdout

    assert "Only admins" in one_error_line(
        invoke(desk_file, config, "outbox", "retry", str(failed["id"]), "--as", "alice"), FORBIDDEN
    )
    assert invoke(desk_file, config, "outbox", "retry", str(failed["id"])).exit_code == 0
    again = invoke(desk_file, config, "outbox", "flush", "--once")
    assert again.exit_code == 0 and "Sent 1, deferred 0, failed 0." in again.stdout
    ids = [item.message_id for item in smtp_server.recorder.delivered]
    assert len(ids) == 2 and f"<{failed['message_id']}>" in ids
    assert json.loads(invoke(desk_file, config, "outbox", "list", "--state", "failed", "--json").stdout) == []


def test_bad_or_missing_smtp_config_is_one_sentence(tmp_path: Path, desk_file: Path, smtp_server: SmtpServer) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[smtp]\nhost = "mail.example"\nsecurity = "ssl"\n', encoding="utf-8")
    line = one_error_line(invoke(desk_file, bad, "outbox", "flush"), CONFIG_ERROR)
    assert "smtp.security" in line and "config.example.toml" in line
    empty = tmp_path / "empty.toml"
    empty.write_text("", encoding="utf-8")
    assert "No SMTP server is configured" in one_error_line(invoke(desk_file, empty, "outbox", "flush"), CONFIG_ERROR)
    secret = config_file(tmp_path, smtp_server, 'username = "desk"\npassword_env = "TERMDESK_TEST_NO_SUCH_VAR"')
    line = one_error_line(invoke(desk_file, secret, "outbox", "flush"), CONFIG_ERROR)
    assert "$TERMDESK_TEST_NO_SUCH_VAR" in line


def test_template_commands(tmp_path: Path, desk_file: Path, smtp_server: SmtpServer) -> None:
    config = config_file(tmp_path, smtp_server)
    shown = invoke(desk_file, config, "template", "show", "Support", "auto-ack")
    assert shown.exit_code == 0 and "built-in" in shown.stdout
    changed = invoke(desk_file, config, "template", "set", "Support", "auto-ack", "--subject", "Danke: {{ subject }}")
    assert changed.exit_code == 0 and "custom" in changed.stdout
    line = one_error_line(
        invoke(desk_file, config, "template", "set", "Support", "resolved", "--body", "{{ x.__class__ }}"), 2
    )
    assert "cannot be used" in line
    assert invoke(desk_file, config, "template", "reset", "Support", "auto-ack").exit_code == 0
    assert "built-in" in invoke(desk_file, config, "template", "show", "Support", "auto-ack").stdout
    assert invoke(desk_file, config, "agent", "notify", "alice", "on", "--as", "alice").exit_code == 0
    assert one_error_line(invoke(desk_file, config, "agent", "notify", "bob", "on", "--as", "alice"), FORBIDDEN)


def test_a_killed_worker_process_leaves_the_reply_to_be_sent_once_after_restart(
    tmp_path: Path, desk_file: Path, smtp_server: SmtpServer
) -> None:
    config = config_file(tmp_path, smtp_server)
    replied = invoke(desk_file, config, "ticket", "reply", "TD-1", "--as", "alice", "--body", "Exactly once.")
    assert replied.exit_code == 0
    recorder = smtp_server.recorder
    recorder.hold.set()
    worker = script(desk_file, config, "outbox", "flush")
    try:
        wait_until(recorder.holding.is_set, what="the worker to reach DATA")
        worker.kill()  # SIGKILL: no cleanup of any kind
        worker.wait(60)
    finally:
        if worker.poll() is None:
            worker.kill()
    recorder.hold.clear()
    assert recorder.delivered == []
    # Restart: the claim's lease (1 s) runs out and the next run sends everything once.
    deadline = time.monotonic() + 60
    while len(recorder.delivered) < 2 and time.monotonic() < deadline:
        assert invoke(desk_file, config, "outbox", "flush").exit_code == 0
        time.sleep(0.1)
    listed = json.loads(invoke(desk_file, config, "outbox", "list", "--json").stdout)
    assert {entry["state"] for entry in listed} == {"sent"}
    assert sorted(item.message_id for item in recorder.delivered) == sorted(f"<{e['message_id']}>" for e in listed)
    assert invoke(desk_file, config, "outbox", "flush").stdout.startswith("Sent 0,")
    assert len(recorder.delivered) == 2
    # The mail held when the worker died was offered again with the same Message-ID.
    assert len(set(recorder.attempts)) == 2 and len(recorder.attempts) == 3


def test_serve_sends_queued_mail_and_stops_gracefully_on_sigterm(
    tmp_path: Path, desk_file: Path, smtp_server: SmtpServer
) -> None:
    config = config_file(tmp_path, smtp_server)
    server = script(desk_file, config, "serve")
    try:
        wait_until(lambda: len(smtp_server.recorder.to(CUSTOMER)) == 1, what="the acknowledgement")
        assert invoke(desk_file, config, "ticket", "reply", "TD-1", "--as", "alice", "--body", "Served.").exit_code == 0
        wait_until(lambda: len(smtp_server.recorder.to(CUSTOMER)) == 2, what="the reply")
        server.send_signal(signal.SIGTERM)
        _, stderr = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
    assert server.returncode == 0, stderr
    assert b"Stopped." in stderr and b"Traceback" not in stderr


def test_mail_taken_in_with_ingest_is_acknowledged_when_smtp_is_configured(
    tmp_path: Path, desk_file: Path, smtp_server: SmtpServer
) -> None:
    config = config_file(tmp_path, smtp_server)
    eml = tmp_path / "question.eml"
    eml.write_bytes(customer_mail("A question by file", sender="erin@customer.example"))
    assert invoke(desk_file, config, "ingest", str(eml), "--department", "Support").exit_code == 0
    listed = json.loads(invoke(desk_file, config, "outbox", "list", "--json").stdout)
    assert [(entry["kind"], entry["recipient"]) for entry in listed][0] == ("auto-ack", "erin@customer.example")
    # Without [smtp] nothing is queued.
    plain = tmp_path / "plain.toml"
    plain.write_text("", encoding="utf-8")
    eml.write_bytes(customer_mail("Another by file", sender="fred@customer.example"))
    assert invoke(desk_file, plain, "ingest", str(eml), "--department", "Support").exit_code == 0
    after = json.loads(invoke(desk_file, config, "outbox", "list", "--json").stdout)
    assert len(after) == len(listed)
