"""`termdesk rule …`, `agent pause/resume/max-load`, `department assignment/auto-close/sla`, `automation run`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.test_cli import db, detail, failed, invoke, isolated_environment, ok, template  # noqa: F401

ROUTE = ["rule", "add", "Route returns", "--trigger", "ticket_created",
         "--when", "subject contains возврат && channel equals email", "--when", "subject starts REFUND",
         "--do", "transfer Returns", "--do", "add_tag returns,авто"]


def test_rule_lifecycle_through_the_cli(db: Path, tmp_path: Path) -> None:  # noqa: F811
    assert "Added rule 'Route returns' (on)." in ok(db, *ROUTE)
    listed = ok(db, "rule", "list")
    assert "Route returns" in listed and "ticket_created" in listed
    shown = ok(db, "rule", "show", "Route returns")
    assert '{field = "subject", op = "contains", value = "возврат"}' in shown
    # The template desk's TD-3 "Refund for order 77" would match the second group.
    tested = ok(db, "rule", "test", "Route returns", "--since", "7d")
    assert "TD-3: would move it to Returns; tag it returns, авто" in tested
    assert "would have matched 1 of 3 occurrences" in tested
    assert detail(db, "bill", "TD-3").ticket.department == "Billing"  # the dry run changed nothing

    ok(db, "rule", "disable", "Route returns")
    assert json.loads(ok(db, "rule", "show", "Route returns", "--json"))["active"] is False
    ok(db, "rule", "edit", "Route returns", "--do", "transfer Returns", "--order", "3")
    assert json.loads(ok(db, "rule", "show", "1", "--json"))["actions"] == [
        {"do": "transfer", "department": "Returns"}]
    exported = ok(db, "rule", "export")
    (tmp_path / "rules.toml").write_text(exported, encoding="utf-8")
    assert "Deleted rule 'Route returns'." in ok(db, "rule", "delete", "Route returns")
    assert "No rules." in ok(db, "rule", "list")
    assert "1 added, 0 replaced" in ok(db, "rule", "import", str(tmp_path / "rules.toml"))
    ok(db, "rule", "enable", "Route returns")
    ok(db, "ticket", "create", "--department", "Billing", "--from", "x@example.org", "--subject", "REFUND now",
       "--body", "b")
    # Only the ticket made after the rule was switched on: TD-3 is older history.
    assert "Rules fired 1," in ok(db, "automation", "run")
    assert detail(db, "boss", "TD-4").ticket.department == "Returns"


def test_rule_cli_mistakes_are_one_sentence(db: Path, tmp_path: Path) -> None:  # noqa: F811
    assert "needs --trigger" in failed(invoke(db, "rule", "add", "X", "--do", "mark_spam"), 2)
    assert "not an action" in failed(invoke(db, "rule", "add", "X", "--trigger", "ticket_created", "--do", "fly"), 2)
    assert "not a condition" in failed(
        invoke(db, "rule", "add", "X", "--trigger", "ticket_created", "--when", "subject", "--do", "mark_spam"), 2)
    assert "No rule named" in failed(invoke(db, "rule", "show", "nope"), 4)
    assert "not a period" in failed(invoke(db, "rule", "test", "nope", "--since", "soon"), 2)
    (tmp_path / "bad.toml").write_text("[[rule]\n", encoding="utf-8")
    assert "not valid TOML" in failed(invoke(db, "rule", "import", str(tmp_path / "bad.toml")), 2)
    assert "Only admins" in failed(invoke(db, "rule", "list", "--as", "bill"), 5)


def test_agents_and_department_settings(db: Path, tmp_path: Path) -> None:  # noqa: F811
    assert "bill is paused." in ok(db, "agent", "pause", "bill", "--as", "bill")
    assert "Only bill or an admin" in failed(invoke(db, "agent", "resume", "bill", "--as", "both"), 5)
    assert "bill is available." in ok(db, "agent", "resume", "bill")
    ok(db, "agent", "max-load", "bill", "5")
    assert "round-robin" in ok(db, "department", "assignment", "Billing", "round-robin")
    assert "not an assignment mode" in failed(invoke(db, "department", "assignment", "Billing", "dice"), 2)
    assert "after 5 days" in ok(db, "department", "auto-close", "Billing", "5")
    policy = tmp_path / "sla.toml"
    policy.write_text('first_response = 60\nresolution = 480\n[calendar]\ntimezone = "Europe/Berlin"\n'
                      'mon = ["08:00-12:00", "13:00-17:00"]\n[priorities.urgent]\nfirst_response = 15\n',
                      encoding="utf-8")
    assert "SLA policy set" in ok(db, "department", "sla", "Billing", str(policy))
    policy.write_text("first_response = -1\n", encoding="utf-8")
    assert "above 0" in failed(invoke(db, "department", "sla", "Billing", str(policy)), 2)
    assert "SLA policy removed" in ok(db, "department", "sla", "Billing", "--clear")
