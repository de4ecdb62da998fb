"""Canned responses: who may manage and use them, the CLI, and inserting one in the console's composer.

Also the composer's autosave: text typed and left is back after the console
is closed without keeping it (as after a crash).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core import Desk
from core.errors import BadArgument, Conflict, Forbidden, NotFound
from tests.console_pilot import open_ticket, screen_text, type_text, wait_for, wait_for_queue
from tests.desk_fixtures import World, build_world, new_ticket
from tests.test_cli import failed, invoke, ok
from tui.console.app import ConsoleApp
from tui.console.canned import CannedPicker
from tui.console.composer import ComposerScreen

TEMPLATE = "Hello {{ contact_name }},\nabout {{ ticket_ref }}: your refund is on its way.\n{{ agent_name }}"


@pytest.fixture
async def world(desk: Desk) -> World:
    return await build_world(desk)


def console(desk: Desk, handle: str) -> ConsoleApp:
    app = ConsoleApp(desk, handle, poll_seconds=0.2, presence_seconds=0.5)
    app.autosave_seconds = 0.2
    return app


# -- access -------------------------------------------------------------------------


async def test_supervisors_manage_their_departments_and_admins_any(desk: Desk, world: World) -> None:
    added = await desk.add_canned("sup", "Billing", "Refund issued", TEMPLATE)
    assert added.department == "Billing"
    await desk.add_canned("boss", "Technical", "Reboot", "Please reboot the router.")  # admin, not a member
    await desk.add_canned("boss", "Billing", "Invoice copy", "A copy is attached.")
    with pytest.raises(Forbidden):
        await desk.add_canned("sup", "Technical", "Nope", "Not my department.")
    with pytest.raises(Forbidden):
        await desk.add_canned("bill", "Billing", "Agent", "Agents only use them.")
    with pytest.raises(Forbidden):
        await desk.edit_canned("bill", "Billing", "Refund issued", body="changed by an agent")
    with pytest.raises(Forbidden):
        await desk.delete_canned("both", "Billing", "Refund issued")
    with pytest.raises(Conflict):
        await desk.add_canned("sup", "Billing", "refund ISSUED", "A duplicate name.")
    with pytest.raises(BadArgument):
        await desk.add_canned("sup", "Billing", "Broken", "{{ unclosed")

    changed = await desk.edit_canned("sup", "Billing", "refund issued", new_name="Refund sent")
    assert changed.name == "Refund sent" and changed.body == TEMPLATE
    assert await desk.delete_canned("boss", "Billing", "Invoice copy") == "Invoice copy"
    with pytest.raises(NotFound):
        await desk.delete_canned("sup", "Billing", "Invoice copy")


async def test_members_list_their_departments_and_nobody_else_does(desk: Desk, world: World) -> None:
    await desk.add_canned("sup", "Billing", "Refund issued", TEMPLATE)
    await desk.add_canned("boss", "Technical", "Reboot", "Please reboot the router.")
    assert [item.name for item in await desk.canned_responses("bill", "Billing")] == ["Refund issued"]
    assert [item.name for item in await desk.canned_responses("both", "Technical")] == ["Reboot"]
    with pytest.raises(Forbidden):
        await desk.canned_responses("bill", "Technical")
    with pytest.raises(Forbidden):
        await desk.canned_responses("nobody", "Billing")
    # Through a ticket: only the ticket's department, and only a ticket the agent may see.
    assert [item.name for item in await desk.canned_for_ticket("both", world.ref("technical"))] == ["Reboot"]
    with pytest.raises(NotFound):
        await desk.canned_for_ticket("bill", world.ref("technical"))


async def test_a_canned_response_is_filled_in_for_the_ticket_in_the_sandbox(desk: Desk, world: World) -> None:
    ticket = await new_ticket(desk, "Billing", "Where is my refund?", contact="ana@example.org", name="Ana Lima")
    refund = await desk.add_canned("sup", "Billing", "Refund issued", TEMPLATE)
    reboot = await desk.add_canned("boss", "Technical", "Reboot", "Please reboot.")
    text = await desk.render_canned("bill", ticket.ref, refund.id)
    assert text == f"Hello Ana Lima,\nabout {ticket.ref}: your refund is on its way.\nBill"
    with pytest.raises(NotFound):  # another department's canned response is not offered for this ticket
        await desk.render_canned("both", ticket.ref, reboot.id)
    sneaky = await desk.add_canned("sup", "Billing", "Sneaky", "{{ ''.__class__.__mro__ }}")
    with pytest.raises(BadArgument, match="cannot be filled in"):
        await desk.render_canned("bill", ticket.ref, sneaky.id)
    typo = await desk.add_canned("sup", "Billing", "Typo", "Hi {{ contact_nam }}")
    with pytest.raises(BadArgument, match="contact_name"):
        await desk.render_canned("bill", ticket.ref, typo.id)


# -- CLI ----------------------------------------------------------------------------


@pytest.fixture
def cli_db(tmp_path: Path) -> Path:
    db = tmp_path / "cli.sqlite3"
    ok(db, "init")
    ok(db, "department", "add", "Billing", "--email", "billing@desk.example")
    ok(db, "department", "add", "Technical", "--email", "tech@desk.example")
    ok(
        db,
        "agent",
        "add",
        "sup",
        "--name",
        "Sup",
        "--email",
        "sup@desk.example",
        "--role",
        "supervisor",
        "--department",
        "Billing",
    )
    ok(db, "agent", "add", "bill", "--name", "Bill", "--email", "bill@desk.example", "--department", "Billing")
    return db


def test_cli_adds_lists_edits_and_deletes_canned_responses(cli_db: Path) -> None:
    db = cli_db
    assert "Added canned response 'Refund issued'" in ok(
        db, "canned", "add", "Refund issued", "--department", "Billing", "--as", "sup", "--body", TEMPLATE
    )
    ok(db, "canned", "add", "From stdin", "-d", "billing", input="Piped [b]text[/b]\n")
    listed = ok(db, "canned", "list", "--department", "Billing", "--as", "bill")
    assert "Refund issued" in listed and "From stdin" in listed
    shown = json.loads(ok(db, "canned", "list", "-d", "Billing", "--json"))
    assert {item["name"]: item["body"] for item in shown} == {
        "From stdin": "Piped [b]text[/b]",
        "Refund issued": TEMPLATE,
    }
    ok(db, "canned", "edit", "from stdin", "-d", "Billing", "--body", "-", input="Replaced\n")
    ok(db, "canned", "edit", "From stdin", "-d", "Billing", "--name", "Replaced one")
    assert ok(db, "canned", "show", "Replaced one", "-d", "Billing").strip() == "Replaced"
    ok(db, "canned", "delete", "Replaced one", "-d", "Billing", "--as", "sup")
    assert [item["name"] for item in json.loads(ok(db, "canned", "list", "-d", "Billing", "--json"))] == [
        "Refund issued"
    ]


def test_cli_refuses_agents_and_bad_templates_in_one_sentence(cli_db: Path) -> None:
    db = cli_db
    line = failed(invoke(db, "canned", "add", "X", "-d", "Billing", "--as", "bill", "--body", "Hi"), 5)
    assert "supervisors of Billing" in line
    line = failed(invoke(db, "canned", "add", "X", "-d", "Technical", "--as", "sup", "--body", "Hi"), 5)
    assert "Technical" in line
    line = failed(invoke(db, "canned", "list", "-d", "Technical", "--as", "bill"), 5)
    assert "members of Technical" in line
    line = failed(invoke(db, "canned", "add", "X", "-d", "Billing", "--body", "{% if %}"), 2)
    assert "not a valid template" in line
    failed(invoke(db, "canned", "edit", "Missing", "-d", "Billing", "--body", "x"), 4)
    failed(invoke(db, "canned", "edit", "Missing", "-d", "Billing"), 2)


# -- the console ----------------------------------------------------------------------


async def test_the_composer_inserts_a_chosen_canned_response_at_the_cursor(desk: Desk, world: World) -> None:
    ref = world.ref("billing")
    refund = await desk.add_canned("sup", "Billing", "Refund issued", TEMPLATE)
    await desk.add_canned("sup", "Billing", "[@click=app.quit]Trap[/] \x1b[31m", "Inert {{ ticket_ref }}")
    await desk.add_canned("boss", "Technical", "Reboot", "Please reboot.")
    app = console(desk, "both")
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for_queue(pilot)
        await open_ticket(pilot, ref)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen), "the composer")
        composer = app.screen
        await type_text(pilot, "Dear customer, ")
        await pilot.press("ctrl+t")
        await wait_for(pilot, lambda: isinstance(app.screen, CannedPicker), "the canned picker")
        picker = app.screen
        await wait_for(pilot, lambda: len(picker.shown) == 2, "Billing's two canned responses")
        text = screen_text(app)
        assert "[@click=app.quit]Trap[/] ^[[31m" in text, "the untrusted name is shown literally"
        assert "Reboot" not in text, "another department's canned response is not offered"
        await type_text(pilot, "refund")
        await wait_for(pilot, lambda: [item.name for item in picker.shown] == ["Refund issued"], "the filter")
        await pilot.press("enter")
        await wait_for(pilot, lambda: app.screen is composer, "back in the composer")
        await wait_for(pilot, lambda: "your refund is on its way" in composer.body, "the inserted text")
        filled = await desk.render_canned("both", ref, refund.id)
        assert composer.body == "Dear customer, " + filled
        assert f"about {ref}:" in filled and filled.endswith("\nBoth")
        assert app.is_running


async def test_typed_text_is_autosaved_and_back_after_the_console_is_closed(desk: Desk, world: World) -> None:
    ref = world.ref("billing")
    app = console(desk, "bill")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_queue(pilot)
        await open_ticket(pilot, ref)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen), "the composer")
        composer = app.screen
        await type_text(pilot, "Typed before the crash")
        await wait_for(pilot, lambda: composer.saved_text == "Typed before the crash", "the autosave")
        # Leave without review or keeping: as if the console were killed.
    assert await desk.draft("bill", ref, "reply") == "Typed before the crash"

    app = console(desk, "bill")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for_queue(pilot)
        await open_ticket(pilot, ref)
        await pilot.press("r")
        await wait_for(pilot, lambda: isinstance(app.screen, ComposerScreen), "the composer")
        composer = app.screen
        await wait_for(pilot, lambda: composer.body == "Typed before the crash", "the autosaved draft back")
