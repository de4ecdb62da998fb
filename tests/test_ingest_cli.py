"""`termdesk ingest` (.eml, folders, mbox, Maildir) and `termdesk quarantine` through the real CLI."""

from __future__ import annotations

import json
import mailbox
from email.message import EmailMessage
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from tui.cli import app


def run(db: Path, *args: str) -> Result:
    return CliRunner().invoke(app, ["--db", str(db), *args])


def ok(db: Path, *args: str) -> str:
    result = run(db, *args)
    assert result.exit_code == 0, (args, result.stdout, result.stderr, result.exception)
    return result.stdout


def letter(number: int, *, body: str = "Hello", sender: str = "carla@example.org") -> bytes:
    message = EmailMessage()
    message["From"] = f"Carla <{sender}>"
    message["To"] = "support@example.com"
    message["Subject"] = f"Order {number}"
    message["Message-ID"] = f"<order-{number}@example.org>"
    message.set_content(f"{body} {number}")
    return message.as_bytes()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "desk.sqlite3"
    ok(path, "init")
    ok(path, "department", "add", "Technical", "--email", "support@example.com")
    ok(path, "department", "add", "Billing", "--email", "billing@example.com")
    ok(path, "agent", "add", "tess", "--name", "Tess", "--email", "tess@example.com", "--department", "Technical")
    return path


def counts(db: Path, handle: str = "tess") -> dict[str, int]:
    rows = json.loads(ok(db, "counts", "--as", handle, "--json"))
    return {row["department"]: row["new"] for row in rows}


def test_ingest_eml_files_and_folders_then_again_finds_only_duplicates(db: Path, tmp_path: Path) -> None:
    folder = tmp_path / "mails"
    (folder / "sub").mkdir(parents=True)
    for number in range(3):
        (folder / "sub" / f"{number}.eml").write_bytes(letter(number))
    single = tmp_path / "single.eml"
    single.write_bytes(letter(99))
    first = json.loads(ok(db, "ingest", str(folder), str(single), "--department", "Technical", "--json"))
    assert (first["tickets"], first["duplicates"], first["quarantined"]) == (4, 0, 0)
    again = json.loads(ok(db, "ingest", str(folder), str(single), "--department", "Technical", "--json"))
    assert (again["tickets"], again["duplicates"]) == (0, 4)
    assert counts(db)["Technical"] == 4


def test_ingest_mbox_and_maildir(db: Path, tmp_path: Path) -> None:
    box = mailbox.mbox(str(tmp_path / "archive.mbox"))
    for number in range(5):
        box.add(letter(number))
    box.flush()
    box.close()
    maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
    for number in range(5, 8):
        maildir.add(letter(number))
    result = json.loads(
        ok(
            db,
            "ingest",
            str(tmp_path / "archive.mbox"),
            str(tmp_path / "Maildir"),
            "--department",
            "technical",
            "--json",
        )
    )
    assert result["tickets"] == 8
    listed = json.loads(ok(db, "ticket", "list", "--as", "tess", "--json", "--limit", "50"))
    assert sorted(row["subject"] for row in listed) == sorted(f"Order {n}" for n in range(8))


def test_ingest_replies_thread_onto_the_imported_tickets(db: Path, tmp_path: Path) -> None:
    (tmp_path / "a.eml").write_bytes(letter(1))
    reply = EmailMessage()
    reply["From"] = "carla@example.org"
    reply["To"] = "support@example.com"
    reply["Subject"] = "Re: Order 1"
    reply["In-Reply-To"] = "<order-1@example.org>"
    reply["Message-ID"] = "<reply-1@example.org>"
    reply.set_content("any news?")
    (tmp_path / "b.eml").write_bytes(reply.as_bytes())
    result = json.loads(
        ok(db, "ingest", str(tmp_path / "a.eml"), str(tmp_path / "b.eml"), "--department", "Technical", "--json")
    )
    assert (result["tickets"], result["replies"]) == (1, 1)
    shown = json.loads(ok(db, "ticket", "show", result["refs"][0], "--as", "tess", "--json"))
    assert [m["kind"] for m in shown["messages"]] == ["customer", "customer"]


def test_a_mail_for_billing_lands_in_billing_even_when_imported_for_technical(db: Path, tmp_path: Path) -> None:
    message = EmailMessage()
    message["From"] = "payer@example.org"
    message["To"] = "Billing <billing@example.com>"
    message["Subject"] = "Invoice"
    message.set_content("wrong amount")
    (tmp_path / "bill.eml").write_bytes(message.as_bytes())
    ok(db, "ingest", str(tmp_path / "bill.eml"), "--department", "Technical")
    assert counts(db) == {"Technical": 0}
    ok(db, "agent", "join", "tess", "Billing")
    assert counts(db) == {"Billing": 1, "Technical": 0}


def test_quarantine_list_show_release_and_unknown_ids(db: Path, tmp_path: Path) -> None:
    (tmp_path / "prose.eml").write_bytes(b"just some words, no headers at all\n\x1b]0;owned\x07 here\n")
    result = json.loads(ok(db, "ingest", str(tmp_path / "prose.eml"), "--department", "Technical", "--json"))
    assert result["quarantined"] == 1
    [entry] = json.loads(ok(db, "quarantine", "list", "--json"))
    assert entry["reason"]
    shown = ok(db, "quarantine", "show", str(entry["id"]))
    assert "Reason:" in shown and "\x1b" not in shown and "^[" in shown
    assert run(db, "quarantine", "show", str(entry["id"]), "--raw").stdout_bytes.startswith(b"just some words")
    refused = run(db, "quarantine", "retry", str(entry["id"]))
    assert refused.exit_code == 2 and "release it" in refused.stderr
    released = ok(db, "quarantine", "release", str(entry["id"]))
    assert "Released into TD-" in released
    assert json.loads(ok(db, "quarantine", "list", "--json")) == []
    missing = run(db, "quarantine", "release", str(entry["id"]))
    assert missing.exit_code == 4 and "No quarantined mail" in missing.stderr
    forbidden = run(db, "quarantine", "list", "--as", "tess")
    assert forbidden.exit_code == 5


def test_ingest_errors_are_one_sentence(db: Path, tmp_path: Path) -> None:
    missing = run(db, "ingest", str(tmp_path / "nope.mbox"), "--department", "Technical")
    assert missing.exit_code == 2 and "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    unknown = run(db, "ingest", str(tmp_path), "--department", "Nowhere")
    assert unknown.exit_code == 2 and "No department named 'Nowhere'" in unknown.stderr
    no_department = run(db, "ingest", str(tmp_path))
    assert no_department.exit_code == 2 and "--department" in no_department.stderr
