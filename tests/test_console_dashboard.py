"""The dashboard and reports screens driven with Pilot on a real desk: live updates, access, charts, CSV export.

No timing is asserted: every wait polls for the condition with a generous
deadline (tests/console_pilot.py), so a loaded machine is only slower.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core import Desk
from core.reports.metrics import iter_csv_rows
from tests.console_pilot import choose, screen_text, type_text, wait_for
from tests.desk_fixtures import World, build_world
from tui.cli import app as cli
from tui.console.app import ConsoleApp
from tui.console.dashboard import DashboardScreen, dashboard_app
from tui.console.prompts import TextPrompt
from tui.console.queues import QueuesScreen
from tui.console.reports import CHART_KINDS, CUSTOM, ReportsScreen, parse_custom, preset


@pytest.fixture
async def world(desk: Desk) -> World:
    return await build_world(desk)


def console(desk: Desk, handle: str) -> ConsoleApp:
    return ConsoleApp(desk, handle, poll_seconds=0.1, presence_seconds=0.2)


def billing(screen: DashboardScreen) -> tuple[int, int, int]:
    """Billing's new, resolved today and unassigned as the departments table shows them (a refresh after a
    change updates only the changed cells, so this reads the screen, not the numbers behind it)."""
    from textual.widgets import DataTable

    from tui.console.dashboard import DEPARTMENT_COLUMNS

    table = screen.query_one("#dashboard-departments", DataTable)
    cells = next(
        [str(cell) for cell in table.get_row_at(index)]
        for index in range(table.row_count)
        if str(table.get_row_at(index)[0]) == "Billing"
    )
    new, resolved, unassigned = (cells[DEPARTMENT_COLUMNS.index(name)] for name in ("New", "Resolved", "Unasg"))
    return int(new), int(resolved), int(unassigned)


async def test_the_dashboard_follows_changes_made_by_another_process(db_url: str, desk: Desk, world: World) -> None:
    app = console(desk, "sup")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        await pilot.press("d")
        await wait_for(
            pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.board is not None, "the dashboard"
        )
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        assert billing(screen) == (2, 0, 2)
        # The "other process": its own connection pool on the same database.
        other = await Desk.open(db_url)
        try:
            await other.set_status("sup", world.ref("billing"), "resolved")
            await wait_for(pilot, lambda: billing(screen) == (1, 1, 1), "the resolution on the dashboard")
            await wait_for(
                pilot,
                lambda: "Billing" in screen_text(app) and "updated" in screen_text(app),
                "the table and the updated mark drawn",
            )
        finally:
            await other.close()
        # Only Billing: sup is not in Technical or Returns.
        assert [row.department for row in screen.board.departments] == ["Billing"]  # type: ignore[union-attr]
        assert "Technical" not in screen_text(app) and "Returns" not in screen_text(app)
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen), "back on the queues")


async def test_an_agent_gets_one_sentence_instead_of_the_dashboard(desk: Desk, world: World) -> None:
    app = console(desk, "bill")
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, QueuesScreen), "the queues")
        await pilot.press("d")
        await wait_for(
            pilot,
            lambda: any("only supervisors and admins may see" in str(n.message) for n in app._notifications),
            "the notice",
        )
        assert isinstance(app.screen, QueuesScreen)


async def test_escape_on_the_dashboard_termdesk_dashboard_opened_leaves_the_console(desk: Desk, world: World) -> None:
    app = dashboard_app(desk, "sup", live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, DashboardScreen), "the dashboard")
        assert "Back" not in screen_text(app)  # nothing lies under it
        await pilot.press("escape")
        await wait_for(pilot, lambda: not app.is_running, "the console to close")


async def test_refreshes_asked_while_one_runs_fold_into_one_more(desk: Desk, world: World) -> None:
    app = dashboard_app(desk, "sup", live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_for(
            pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.refreshes >= 1, "the dashboard"
        )
        screen = app.screen
        assert isinstance(screen, DashboardScreen)
        before = screen.refreshes
        for _ in range(5):
            screen.request_refresh()
        await wait_for(pilot, lambda: not screen.refreshing and screen.refreshes >= before + 1, "the refreshes")
        await pilot.pause(0.2)
        assert screen.refreshes <= before + 2  # one running, one follow-up: never five


async def report_screen(pilot: object, app: ConsoleApp) -> ReportsScreen:
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, DashboardScreen) and app.screen.board is not None,  # type: ignore[arg-type]
        "the dashboard",
    )
    await pilot.press("e")  # type: ignore[attr-defined]
    await wait_for(
        pilot,
        lambda: isinstance(app.screen, ReportsScreen) and app.screen.loads >= 1,  # type: ignore[arg-type]
        "the reports screen",
    )
    screen = app.screen
    assert isinstance(screen, ReportsScreen)
    return screen


async def test_the_reports_screen_draws_every_chart_kind_and_metric(desk: Desk, world: World) -> None:
    await desk.set_status("sup", world.ref("billing"), "resolved")
    app = dashboard_app(desk, "sup", live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await report_screen(pilot, app)
        assert screen.report is not None and {row.group for row in screen.report.rows} == {"Billing"}
        seen = set()
        for _ in CHART_KINDS:
            seen.add(screen.chart_kind)
            await wait_for(pilot, lambda: "Created" in screen_text(app), f"the {screen.chart_kind} chart")
            await pilot.press("c")
        assert seen == set(CHART_KINDS)
        await pilot.press("m")
        await wait_for(pilot, lambda: "Resolved" in screen_text(app), "the chart of the next metric")
        await pilot.press("b")
        await wait_for(pilot, lambda: screen.grouping == "agent" and screen.loads >= 2, "grouped by agent")
        await pilot.press("u")
        await wait_for(pilot, lambda: screen.bucket == "week" and screen.loads >= 3, "bucketed by week")
        # A custom range through the prompt.
        await pilot.press("p")
        await choose(pilot, CUSTOM)
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), "the custom range prompt")
        prompt = app.screen
        prompt.query_one("Input").value = ""  # type: ignore[attr-defined]
        await type_text(pilot, "2026-01-01 2026-01-31")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: screen.period is not None and screen.period.name == "custom" and screen.loads >= 4,
            "the custom range",
        )
        assert screen.request().start == datetime(2026, 1, 1, tzinfo=UTC)


async def test_export_from_the_screen_writes_the_rows_of_iter_csv_rows(
    desk: Desk, world: World, tmp_path: Path
) -> None:
    await desk.set_status("sup", world.ref("billing"), "resolved")
    target = tmp_path / "out.csv"
    app = dashboard_app(desk, "sup", live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        screen = await report_screen(pilot, app)
        await pilot.press("e")
        await wait_for(pilot, lambda: isinstance(app.screen, TextPrompt), "the path prompt")
        app.screen.query_one("Input").value = ""  # type: ignore[attr-defined]
        await type_text(pilot, str(target))
        await pilot.press("enter")
        await wait_for(pilot, lambda: screen.exported == target, "the export")
        request = screen.request()
    expected = list(iter_csv_rows(await desk.report("sup", request)))
    with target.open(newline="", encoding="utf-8") as file:
        assert list(csv.reader(file)) == expected
    assert len(expected) > 1


def test_presets_and_custom_ranges() -> None:
    today = datetime(2026, 11, 25, tzinfo=UTC).date()  # a Wednesday
    assert (preset("this week", today).first.isoformat(), preset("this week", today).last.isoformat()) == (
        "2026-11-23",
        "2026-11-29",
    )
    assert preset("last 7 days", today).first == today - timedelta(days=6)
    assert preset("this month", today).last.isoformat() == "2026-11-30"
    assert preset("this year", today).request_range[1] == datetime(2027, 1, 1, tzinfo=UTC)
    assert parse_custom("2026-01-01..2026-01-31").last.isoformat() == "2026-01-31"
    with pytest.raises(Exception, match="give two days"):
        parse_custom("January")
    with pytest.raises(Exception, match="earlier day first"):
        parse_custom("2026-02-01 2026-01-01")


def test_dashboard_command_with_an_unknown_agent_fails_in_one_sentence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", url, "init"]).exit_code == 0
    result = runner.invoke(cli, ["--db", url, "dashboard", "--as", "ghost"])
    assert result.exit_code == 3
    assert "There is no active agent with handle 'ghost'" in result.output
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) == 1


def test_dashboard_command_refuses_a_plain_agent_in_one_sentence(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'desk.sqlite3'}"
    runner = CliRunner()
    assert runner.invoke(cli, ["--db", url, "init"]).exit_code == 0
    assert runner.invoke(cli, ["--db", url, "department", "add", "Billing", "--email", "b@example.com"]).exit_code == 0
    assert (
        runner.invoke(
            cli,
            [
                "--db",
                url,
                "agent",
                "add",
                "ann",
                "--name",
                "Ann",
                "--email",
                "ann@example.com",
                "--department",
                "Billing",
            ],
        ).exit_code
        == 0
    )
    result = runner.invoke(cli, ["--db", url, "dashboard", "--as", "ann"])
    assert result.exit_code == 5
    assert "supervisors and admins" in result.output and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(cli, ["--db", url, "dashboard"])
    assert result.exit_code == 2  # --as is required


async def test_report_charts_follow_the_theme_and_the_terminal_size(desk: Desk, world: World) -> None:
    from textual_plotext import PlotextPlot

    app = dashboard_app(desk, "sup", live=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await report_screen(pilot, app)
        chart = app.screen.query_one("#reports-chart", PlotextPlot)
        app.theme = "textual-dark"
        await pilot.pause()
        dark = {span.style for span in chart.render().spans}  # type: ignore[union-attr]
        app.theme = "textual-light"
        await wait_for(
            pilot,
            lambda: {span.style for span in chart.render().spans} != dark,  # type: ignore[union-attr]
            "the chart in the light theme's colours",
        )
        width = chart.size.width
        await pilot.resize_terminal(160, 48)
        await wait_for(pilot, lambda: chart.size.width > width, "a wider chart")
        lines = chart.render().plain.splitlines()  # type: ignore[union-attr]
        assert max(len(line) for line in lines) == chart.size.width


async def test_untrusted_names_render_inert_on_the_dashboard_and_reports(desk: Desk) -> None:
    from core.policy import Actor
    from tests.desk_fixtures import add_agents, new_ticket
    from tests.test_console_inert import assert_inert_screen

    evil = "[@click=app.quit]x[/] \x1b[31mred"
    await desk.add_department(Actor.operator(), evil, email="evil@desk.example")
    await add_agents(desk, {"sup": ("supervisor", (evil,))})
    await new_ticket(desk, evil, "hello")
    app = dashboard_app(desk, "sup", live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for(
            pilot, lambda: isinstance(app.screen, DashboardScreen) and app.screen.board is not None, "the dashboard"
        )
        await wait_for(pilot, lambda: "[@click=app.quit]x[/] ^[[31mred" in screen_text(app), "the name, literally")
        assert_inert_screen(app)
        screen = await report_screen(pilot, app)
        for _ in CHART_KINDS:
            await wait_for(pilot, lambda: "[@click=app.quit]x[/] ^[[31mred" in screen_text(app), "the table row")
            assert_inert_screen(app)
            await pilot.press("c")
        assert screen.report is not None
