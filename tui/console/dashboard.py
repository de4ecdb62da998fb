"""The supervisor dashboard: today's load per department and per agent, and incoming vs resolved per hour, live.

Everything on it comes from one `Desk.dashboard` call. The screen follows
the console's events feed (`desk_changed`): each batch of events asks for
one refresh; a refresh runs in an exclusive worker and a request that comes
while one runs is folded into a single follow-up run, so a busy desk never
piles up queries and the last change is never missed. A slow timer refreshes
too, because SLA moments and waits move with the clock, not with events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual_plotext import PlotextPlot

from core.desk import Desk
from core.reports.dashboard import Dashboard
from tui.console.app import ConsoleApp  # app.py imports this module only inside an action, so no cycle
from tui.console.cells import ago, span
from tui.console.keybar import KeyBar
from tui.inert import inert

if TYPE_CHECKING:
    from tui.console.app import DeskChanged

CLOCK_REFRESH_SECONDS = 60.0  # SLA "at risk" and waits change with time alone
DEPARTMENT_COLUMNS = ("Department", "New", "Open", "Pend", "Unasg", "Resolved", "At risk", "Breached", "Oldest wait")
AGENT_COLUMNS = ("Agent", "Role", "Availability", "Load", "Resolved")


class DashboardScreen(Screen[None]):
    """Departments and agents of the supervisor, with today's hours as a chart."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="dashboard.back"),
        Binding("j,down", "cursor(1)", "Down", show=False, id="dashboard.down"),
        Binding("k,up", "cursor(-1)", "Up", show=False, id="dashboard.up"),
        Binding("tab", "switch_table", "Departments/agents", show=False, id="dashboard.switch_table"),
        Binding("e", "reports", "Reports", id="dashboard.reports"),
        Binding("ctrl+r", "reload", "Reload", id="dashboard.reload"),
    ]

    def __init__(self, *, root: bool = False) -> None:
        super().__init__()
        self.root = root  # opened by `termdesk dashboard`: escape has nothing to go back to
        self.board: Dashboard | None = None
        self.refreshing = False
        self.refresh_wanted = False
        self.refreshes = 0  # completed refreshes (tests wait on it)
        self.shown_rows: dict[str, list[tuple[Any, ...]]] = {}  # per table, the cells it shows

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        with Vertical(id="dashboard-body"):
            yield DataTable(id="dashboard-departments", cursor_type="row", zebra_stripes=True)
            with Horizontal(id="dashboard-lower"):
                yield DataTable(id="dashboard-agents", cursor_type="row", zebra_stripes=True)
                yield PlotextPlot(id="dashboard-chart")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#dashboard-departments", DataTable).add_columns(*DEPARTMENT_COLUMNS)
        self.query_one("#dashboard-agents", DataTable).add_columns(*AGENT_COLUMNS)
        self.query_one("#dashboard-departments", DataTable).focus()
        self.set_interval(1.0, self.show_status)
        self.set_interval(CLOCK_REFRESH_SECONDS, self.request_refresh)
        self.show_status()
        self.request_refresh()

    # -- refreshing ----------------------------------------------------------------

    def desk_changed(self, message: DeskChanged) -> None:
        self.request_refresh()

    def request_refresh(self) -> None:
        if self.refreshing:
            self.refresh_wanted = True  # one follow-up run covers every request made meanwhile
            return
        self.refreshing = True
        self.refresh_wanted = False
        self.load()

    @work(exclusive=True, group="dashboard", exit_on_error=False)
    async def load(self) -> None:
        try:
            now = self.console.clock()
            board = await self.console.call(lambda desk: desk.dashboard(self.console.handle, now=now))
            if board is not None and self.is_attached:  # not after the screen went away meanwhile
                self.board = board
                self.show(board)
                self.refreshes += 1
        finally:
            self.refreshing = False
            if self.refresh_wanted and self.is_attached:
                self.request_refresh()

    def action_reload(self) -> None:
        self.request_refresh()

    # -- drawing ---------------------------------------------------------------------

    def show(self, board: Dashboard) -> None:
        now = board.now
        self.fill(
            "#dashboard-departments",
            [
                (
                    inert(row.department),
                    *(
                        Text(str(value), justify="right")
                        for value in (row.new, row.open, row.pending, row.unassigned, row.resolved_today)
                    ),
                    Text(str(row.sla_at_risk), justify="right", style="bold yellow" if row.sla_at_risk else ""),
                    Text(str(row.sla_breached), justify="right", style="bold red" if row.sla_breached else ""),
                    Text("-" if (wait := row.oldest_waiting(now)) is None else span(wait), justify="right"),
                )
                for row in board.departments
            ],
        )
        self.fill(
            "#dashboard-agents",
            [
                (
                    inert(agent.handle),
                    agent.role,
                    Text(agent.availability, style="" if agent.availability == "available" else "dim"),
                    Text(str(agent.load), justify="right"),
                    Text(str(agent.resolved_today), justify="right"),
                )
                for agent in board.agents
            ],
        )
        self.show_status()
        # The chart after the numbers are painted: plotext draws it in tens of milliseconds.
        self.call_after_refresh(self.draw_chart, board)

    def fill(self, selector: str, rows: list[tuple[Any, ...]]) -> None:
        """Put `rows` in a table: only the changed cells when the rows are the same ones as before (a refresh
        after one change moves a count or two; rebuilding 200 agent rows made Textual lay the table out
        anew), else the whole table, keeping the cursor's position."""
        table = self.query_one(selector, DataTable)
        shown = self.shown_rows.get(selector, [])
        if shown and [row[0] for row in shown] == [row[0] for row in rows]:
            for index, (before, after) in enumerate(zip(shown, rows, strict=True)):
                for column, (old, new) in enumerate(zip(before, after, strict=True)):
                    if old != new:
                        table.update_cell_at(Coordinate(index, column), new)
        else:
            cursor = table.cursor_row
            table.clear()
            for row in rows:
                table.add_row(*row)
            table.move_cursor(row=min(cursor, max(len(rows) - 1, 0)))
        self.shown_rows[selector] = rows

    def draw_chart(self, board: Dashboard) -> None:
        chart = self.query_one("#dashboard-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_figure()
        # Hours up to the current one: a flat line into the future would read as "nothing came in".
        shown = [hour for hour in board.hours if hour.start <= board.now] or board.hours[:1]
        xs = list(range(len(shown)))
        # Side by side bars: an hour's counts are small whole numbers, which a line would draw as spikes.
        plt.multiple_bar(
            xs,
            [[hour.incoming for hour in shown], [hour.resolved for hour in shown]],
            labels=["incoming", "resolved"],  # type: ignore[call-arg]  # the stub says label; plotext takes labels
        )
        plt.xlim(-1, len(board.hours))
        ticks = list(range(0, len(board.hours), 3))
        plt.xticks([float(tick) for tick in ticks], [f"{tick:02d}" for tick in ticks])
        plt.title(f"Today per hour ({board.day_start:%Z})")
        chart.refresh()

    def show_status(self) -> None:
        app = self.console
        parts = ["Dashboard", app.handle]
        if self.board is not None:
            parts.append(f"{self.board.day_start:%Y-%m-%d %Z}")
            parts.append(f"updated {ago(self.board.now, app.clock())} ago")
        else:
            parts.append("loading…")
        self.query_one("#status-bar", Static).update(Text("  ·  ".join(parts), no_wrap=True, overflow="ellipsis"))

    # -- keys --------------------------------------------------------------------------

    def action_cursor(self, step: int) -> None:
        table = self.focused if isinstance(self.focused, DataTable) else self.query_one("#dashboard-departments")
        assert isinstance(table, DataTable)
        table.action_cursor_down() if step > 0 else table.action_cursor_up()

    def action_switch_table(self) -> None:
        departments = self.query_one("#dashboard-departments", DataTable)
        agents = self.query_one("#dashboard-agents", DataTable)
        (agents if departments.has_focus else departments).focus()

    def action_reports(self) -> None:
        from tui.console.reports import ReportsScreen

        self.app.push_screen(ReportsScreen())

    def action_back(self) -> None:
        if self.root:
            self.app.exit()
        else:
            self.app.pop_screen()


def open_dashboard(app: ConsoleApp) -> None:
    """The console's `d`: the dashboard for supervisors and admins, one sentence for everyone else."""
    from textual.screen import ModalScreen

    from core.errors import DeskError
    from core.policy import require_supervisor

    if isinstance(app.screen, ModalScreen) or isinstance(app.screen, DashboardScreen):
        return
    try:
        require_supervisor(app.actor, "see the dashboard")  # the rule Desk.dashboard applies, asked up front
    except DeskError as refused:
        app.say(refused.message, "warning")
        return
    if any(isinstance(screen, DashboardScreen) for screen in app.screen_stack):
        while not isinstance(app.screen, DashboardScreen):  # back down to it (from the reports screen)
            app.pop_screen()
        return
    app.push_screen(DashboardScreen())


class RootDashboardScreen(DashboardScreen):
    """The dashboard `termdesk dashboard` opens on: nothing lies under it, so escape quits like `q`
    (and is not offered as "Back" in the key bar)."""

    BINDINGS = [Binding("escape", "back", "Quit", show=False, id="dashboard.back")]

    def __init__(self) -> None:
        super().__init__(root=True)


class DashboardApp(ConsoleApp):
    """The console opened on the dashboard (`termdesk dashboard`); escape there leaves the console."""

    def first_screen(self) -> Screen[None]:
        return RootDashboardScreen()


def dashboard_app(desk: Desk, handle: str, **options: Any) -> ConsoleApp:
    return DashboardApp(desk, handle, **options)
