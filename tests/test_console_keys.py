"""The console's keys: help generated from the bindings, remapping by binding id from config, the command palette,
and the `termdesk tui` command's failures before the screen is taken over."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from core import Desk
from core.config import load_settings
from tests.console_pilot import screen_text, type_text, wait_for, wait_for_queue
from tests.desk_fixtures import World, build_world
from tui.cli import app as cli
from tui.console.app import ConsoleApp
from tui.console.help import HelpScreen


async def test_help_lists_the_keys_of_the_screen_with_their_binding_ids(desk: Desk) -> None:
    await build_world(desk)
    app = ConsoleApp(desk, "bill", live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_queue(pilot)
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        rows = {binding_id: (keys, description) for keys, description, binding_id in app.screen.rows}
        assert rows["queue.filter"] == ("/", "Filter")
        assert rows["ticket.reply"] == ("r", "Reply")
        assert "queue.department_1" in rows and "app.quit" in rows
        await wait_for(pilot, lambda: "queue.filter" in screen_text(app), "the binding ids drawn")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, HelpScreen), "help to close")


async def test_keys_are_remapped_by_binding_id(desk: Desk) -> None:
    await build_world(desk)
    app = ConsoleApp(desk, "bill", live=False, keymap={"queue.status_filter": "v"})
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_for_queue(pilot)
        await pilot.press("v")
        await wait_for(pilot, lambda: screen.status_index == 1, "the status filter to move on with v")
        await pilot.press("f")
        await pilot.pause()
        assert screen.status_index == 1, "f no longer cycles the status once remapped"
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen), "the help screen")
        rows = {binding_id: keys for keys, _, binding_id in app.screen.rows}
        assert rows["queue.status_filter"] == "v"


def test_the_keymap_is_read_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[console]\npoll_seconds = 2\nkeymap = { "ticket.reply" = "R" }\n')
    settings = load_settings(config)
    assert settings.console.keymap == {"ticket.reply": "R"}
    assert settings.console.poll_seconds == 2


async def test_the_command_palette_runs_verb_object_commands(desk: Desk) -> None:
    await build_world(desk)
    app = ConsoleApp(desk, "both", live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: screen.departments, "the departments")
        await pilot.press("ctrl+p")
        await pilot.pause()
        await type_text(pilot, "queue: Technical")
        await wait_for(pilot, lambda: "queue: Technical" in screen_text(app), "the command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.department == "Technical" and screen.loaded
                       and {row.department for row in screen.rows} == {"Technical"}, "the Technical queue")


async def test_an_agent_opens_reports_from_the_command_palette(desk: Desk) -> None:
    from tui.console.reports import ReportsScreen

    await build_world(desk)
    app = ConsoleApp(desk, "bill", live=False)  # a plain agent: reports cover their own departments
    async with app.run_test(size=(120, 40)) as pilot:
        await wait_for_queue(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await type_text(pilot, "app: reports")
        await wait_for(pilot, lambda: "app: reports" in screen_text(app), "the command")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ReportsScreen), "the reports screen")
        await wait_for(pilot, lambda: "Billing" in screen_text(app), "bill's department in the report")
        assert "Technical" not in screen_text(app)


async def test_number_keys_jump_to_a_department(desk: Desk, ) -> None:
    world: World = await build_world(desk)
    app = ConsoleApp(desk, "both", live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: [item.department for item in screen.departments] == ["Billing", "Technical"],
                       "the departments")
        await pilot.press("2")
        await wait_for(pilot, lambda: screen.department == "Technical"
                       and [row.ref for row in screen.rows] == [world.ref("technical")], "the Technical queue")
        await pilot.press("0")
        await wait_for(pilot, lambda: screen.department is None and len(screen.rows) == 3, "every department")


def test_tui_with_an_unknown_agent_fails_in_one_sentence(tmp_path: Path) -> None:
    db = tmp_path / "desk.sqlite3"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", str(db), "init"]).exit_code == 0
    result = runner.invoke(cli, ["--db", str(db), "tui", "--as", "ghost"])
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "ghost" in lines[0] and "Traceback" not in result.output


def test_tui_before_init_says_to_run_init(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--db", str(tmp_path / "none.sqlite3"), "tui", "--as", "bill"])
    assert result.exit_code == 8, result.output
    assert "termdesk init" in result.stderr


async def test_the_mouse_picks_and_opens_a_row(desk: Desk) -> None:
    from tui.console.ticket import TicketScreen

    world = await build_world(desk)
    app = ConsoleApp(desk, "bill", live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        screen = await wait_for_queue(pilot)
        await wait_for(pilot, lambda: len(screen.rows) == 2, "both Billing tickets")
        second = screen.rows[1].ref
        await pilot.click("#queue", offset=(20, 2))  # line 0 is the header, line 2 the second row
        await wait_for(pilot, lambda: screen.current_row().ref == second, "the clicked row under the cursor")
        await pilot.click("#queue", offset=(20, 2))
        await wait_for(pilot, lambda: isinstance(app.screen, TicketScreen) and app.screen.ref == second,
                       "the clicked ticket open")
        assert second in (world.ref("billing"), world.ref("billing2"))
