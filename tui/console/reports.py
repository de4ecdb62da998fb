"""The reports screen: report metrics over a chosen range, grouping and bucket, as a chart, a table and a CSV file.

The numbers come from `Desk.report` (core/reports) and nothing else; this
screen only chooses the request and draws the answer. Charts are plotext
through textual-plotext: the plot widget takes the app theme's colours
("auto" theme) and is redrawn at its current size on every render, so it
follows dark/light and the terminal's size. Group names are typed by people:
the table shows them through `tui.inert` and the chart labels get the same
visible-controls treatment (plotext output is parsed as ANSI).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Container
from textual.screen import Screen
from textual.widgets import DataTable, ProgressBar, Static
from textual_plotext import PlotextPlot

from core.errors import BadArgument, DeskError
from core.reports import BUCKETS, GROUPINGS, METRICS, Report, ReportRequest
from core.reports.metrics import iter_csv_rows
from tui.console.keybar import KeyBar
from tui.console.prompts import ChoiceScreen, ConfirmScreen, TextPrompt
from tui.csv_cells import guarded_rows
from tui.inert import inert
from tui.plain import truncate, visible

if TYPE_CHECKING:
    from tui.console.app import ConsoleApp

PRESETS = ("today", "this week", "this month", "this year", "last 7 days", "last 30 days")
CUSTOM = "custom…"
CHART_KINDS = ("line", "bar", "area", "stacked", "shares")
MAX_SERIES = 8  # more groups than this make an unreadable chart; the table still has them all
LABEL_WIDTH = 16
PROGRESS_EVERY = 500  # rows between progress updates of an export


@dataclass(frozen=True)
class Period:
    name: str
    first: date  # both days included, as the CLI's --from/--to
    last: date

    @property
    def request_range(self) -> tuple[datetime, datetime]:
        start = datetime(self.first.year, self.first.month, self.first.day, tzinfo=UTC)
        end = datetime(self.last.year, self.last.month, self.last.day, tzinfo=UTC) + timedelta(days=1)
        return start, end

    def label(self) -> str:
        days = f"{self.first:%Y-%m-%d}" if self.first == self.last else f"{self.first:%Y-%m-%d} .. {self.last:%Y-%m-%d}"
        return days if self.name == "custom" else f"{self.name} ({days})"


def preset(name: str, today: date) -> Period:
    """A named range ending today (UTC, like the reports' buckets)."""
    if name == "today":
        return Period(name, today, today)
    if name == "this week":
        monday = today - timedelta(days=today.weekday())
        return Period(name, monday, monday + timedelta(days=6))
    if name == "this month":
        following = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
        return Period(name, today.replace(day=1), following - timedelta(days=1))
    if name == "this year":
        return Period(name, today.replace(month=1, day=1), today.replace(month=12, day=31))
    days = 7 if name == "last 7 days" else 30
    return Period(name, today - timedelta(days=days - 1), today)


def parse_custom(text: str) -> Period:
    """`FROM TO` (or `FROM..TO`), both YYYY-MM-DD and included; one-sentence DeskError when not."""
    parts = text.replace("..", " ").split()
    try:
        if len(parts) != 2:
            raise ValueError
        first, last = date.fromisoformat(parts[0]), date.fromisoformat(parts[1])
    except ValueError:
        raise BadArgument(f"{text.strip()!r} is not a range; give two days, e.g. 2026-01-01 2026-01-31.") from None
    if last < first:
        raise BadArgument("The range ends before it starts; give the earlier day first.")
    return Period("custom", first, last)


def chart_label(text: str) -> str:
    return truncate(visible(text), LABEL_WIDTH)


class ReportsScreen(Screen[None]):
    """Range, grouping, bucket, chart kind and metric chosen by keys; a chart above the table."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="reports.back"),
        Binding("p", "period", "Range", id="reports.range"),
        Binding("b", "cycle_grouping", "Group by", id="reports.group_by"),
        Binding("u", "cycle_bucket", "Bucket", id="reports.bucket"),
        Binding("c", "cycle_chart", "Chart", id="reports.chart"),
        Binding("m", "cycle_metric", "Metric", id="reports.metric"),
        Binding("e", "export", "Export CSV", id="reports.export"),
        Binding("j,down", "cursor(1)", "Down", show=False, id="reports.down"),
        Binding("k,up", "cursor(-1)", "Up", show=False, id="reports.up"),
        Binding("ctrl+r", "reload", "Reload", show=False, id="reports.reload"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.period: Period | None = None
        self.grouping = "department"
        self.bucket = "day"
        self.chart_kind = "line"
        self.metric_index = 0
        self.report: Report | None = None
        self.loads = 0  # completed loads (tests wait on it)
        self.exported: Path | None = None

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        with Container(id="reports-body"):
            yield PlotextPlot(id="reports-chart")
            yield DataTable(id="reports-table", cursor_type="row", zebra_stripes=True)
        yield ProgressBar(id="reports-progress", show_eta=False)
        yield KeyBar()

    def on_mount(self) -> None:
        self.period = preset("last 7 days", self.console.clock().astimezone(UTC).date())
        self.query_one("#reports-progress", ProgressBar).display = False
        self.query_one("#reports-table", DataTable).focus()
        self.load()

    # -- loading ---------------------------------------------------------------------

    def request(self) -> ReportRequest:
        assert self.period is not None
        start, end = self.period.request_range
        return ReportRequest(start=start, end=end, by=self.grouping, bucket=self.bucket)

    @work(exclusive=True, group="report", exit_on_error=False)
    async def load(self) -> None:
        self.show_status(loading=True)
        try:
            request = self.request()
        except DeskError as error:
            self.console.say(error.message, "error")
            return
        handle = self.console.handle
        found = await self.console.call(lambda desk: desk.report(handle, request))
        if found is not None:
            self.report = found
            self.fill_table(found)
            self.draw_chart()
            self.loads += 1
        self.show_status()

    def action_reload(self) -> None:
        self.load()

    # -- drawing ---------------------------------------------------------------------

    @property
    def metric(self) -> str:
        return METRICS[self.metric_index].name

    def show_status(self, loading: bool = False) -> None:
        parts = [
            "Reports",
            self.period.label() if self.period else "",
            f"by {self.grouping}",
            f"per {self.bucket}",
            f"{self.chart_kind} of {METRICS[self.metric_index].title}",
        ]
        if loading:
            parts.append("loading…")
        elif self.report is not None:
            parts.append(f"{len(self.report.rows)} rows")
        self.query_one("#status-bar", Static).update(Text("  ·  ".join(parts), no_wrap=True, overflow="ellipsis"))

    def fill_table(self, report: Report) -> None:
        table = self.query_one("#reports-table", DataTable)
        table.clear(columns=True)
        table.add_columns(*report.columns)
        for row in report.rows:
            values = row.as_dict()
            table.add_row(
                row.bucket,
                inert(row.group),
                *(
                    Text("" if values[name] is None else str(values[name]), justify="right")
                    for name in report.columns[2:]
                ),
            )

    def series(self) -> tuple[list[str], dict[str, list[float]]]:
        """Bucket keys, and the chosen metric per bucket for the largest groups (by their total)."""
        assert self.report is not None
        bucket_keys = sorted({row.bucket for row in self.report.rows})
        position = {key: index for index, key in enumerate(bucket_keys)}
        by_group: dict[str, list[float]] = {}
        for row in self.report.rows:
            values = by_group.setdefault(row.group, [0.0] * len(bucket_keys))
            values[position[row.bucket]] = float(row.values.get(self.metric) or 0)
        largest = sorted(by_group, key=lambda group: (-sum(by_group[group]), group))[:MAX_SERIES]
        return bucket_keys, {group: by_group[group] for group in largest}

    def draw_chart(self) -> None:
        chart = self.query_one("#reports-chart", PlotextPlot)
        plt = chart.plt
        plt.clear_figure()
        title = METRICS[self.metric_index].title
        if self.report is None or not self.report.rows:
            plt.title(f"{title}: nothing in this range")
            chart.refresh()
            return
        bucket_keys, groups = self.series()
        labels = [chart_label(group) for group in groups]
        xs = list(range(len(bucket_keys)))
        step = max(1, len(bucket_keys) // 6)
        ticks = xs[::step]
        tick_labels = [
            bucket_keys[index][5:] if self.bucket in ("day", "week") else bucket_keys[index][:7] for index in ticks
        ]
        if self.chart_kind in ("line", "area"):
            for label, values in zip(labels, groups.values(), strict=True):
                plt.plot(xs, values, label=label, marker="braille", fillx=self.chart_kind == "area")
            plt.xticks([float(tick) for tick in ticks], tick_labels)
        elif self.chart_kind == "bar":
            plt.multiple_bar(xs, list(groups.values()), labels=labels)  # type: ignore[call-arg]  # stub: label
            plt.xticks([float(tick) for tick in ticks], tick_labels)
        elif self.chart_kind == "stacked":
            plt.stacked_bar(xs, list(groups.values()), labels=labels)  # type: ignore[call-arg]  # stub: label
            plt.xticks([float(tick) for tick in ticks], tick_labels)
        else:  # shares: each group's part of the range's total, as horizontal bars (plotext has no pie)
            totals = [sum(values) for values in groups.values()]
            whole = sum(totals) or 1.0
            plt.bar(labels, [round(100 * total / whole, 1) for total in totals], orientation="horizontal")
            title = f"{title}: share of the range, %"
        plt.title(title)
        chart.refresh()

    # -- keys --------------------------------------------------------------------------

    def action_period(self) -> None:
        def chosen(name: str | None) -> None:
            if name == CUSTOM:
                current = f"{self.period.first} {self.period.last}" if self.period else ""
                self.app.push_screen(TextPrompt("From and to, both included (YYYY-MM-DD YYYY-MM-DD)", current), custom)
            elif name is not None:
                self.period = preset(name, self.console.clock().astimezone(UTC).date())
                self.load()

        def custom(text: str | None) -> None:
            if text is None:
                return
            try:
                self.period = parse_custom(text)
            except DeskError as error:
                self.console.say(error.message, "error")
                return
            self.load()

        self.app.push_screen(ChoiceScreen("Report range", [*PRESETS, CUSTOM]), chosen)

    def action_cycle_grouping(self) -> None:
        self.grouping = GROUPINGS[(GROUPINGS.index(self.grouping) + 1) % len(GROUPINGS)]
        self.load()

    def action_cycle_bucket(self) -> None:
        self.bucket = BUCKETS[(BUCKETS.index(self.bucket) + 1) % len(BUCKETS)]
        self.load()

    def action_cycle_chart(self) -> None:
        self.chart_kind = CHART_KINDS[(CHART_KINDS.index(self.chart_kind) + 1) % len(CHART_KINDS)]
        self.draw_chart()
        self.show_status()

    def action_cycle_metric(self) -> None:
        self.metric_index = (self.metric_index + 1) % len(METRICS)
        self.draw_chart()
        self.show_status()

    def action_cursor(self, step: int) -> None:
        table = self.query_one("#reports-table", DataTable)
        table.action_cursor_down() if step > 0 else table.action_cursor_up()

    def action_back(self) -> None:
        self.app.pop_screen()

    # -- export ------------------------------------------------------------------------

    def default_path(self) -> str:
        request = self.request()
        return (
            f"report-{request.start:%Y%m%d}-{request.end - timedelta(days=1):%Y%m%d}-{self.grouping}-{self.bucket}.csv"
        )

    def action_export(self) -> None:
        if self.report is None:
            self.console.say("The report is still loading; export it once it is shown.", "warning")
            return
        report = self.report

        def chosen(text: str | None) -> None:
            if not text or not text.strip():
                return
            path = Path(text.strip()).expanduser()
            if path.exists():

                def replace(yes: bool | None) -> None:
                    if yes:
                        self.export(report, path)

                self.app.push_screen(ConfirmScreen(f"{path} exists. Replace it?"), replace)
            else:
                self.export(report, path)

        self.app.push_screen(TextPrompt("Export this report as CSV to", self.default_path()), chosen)

    @work(thread=True, exclusive=True, group="export", exit_on_error=False)
    def export(self, report: Report, path: Path) -> None:
        """Write the rows from a thread (a big report is many rows; the screen stays live), with progress."""
        total = len(report.rows)
        self.app.call_from_thread(self.show_progress, 0, total)
        written = 0
        try:
            with path.open("w", newline="", encoding="utf-8") as file:
                writer = csv.writer(file, lineterminator="\n")
                for number, row in enumerate(guarded_rows(iter_csv_rows(report))):
                    writer.writerow(row)
                    written = number
                    if number % PROGRESS_EVERY == 0:
                        self.app.call_from_thread(self.show_progress, number, total)
        except OSError as error:
            reason = error.strerror or str(error)
            self.app.call_from_thread(
                self.finish_export, None, f"Could not write {path}: {reason}; choose another path."
            )
            return
        self.app.call_from_thread(self.finish_export, path, f"Wrote {written} rows to {path}.")

    def show_progress(self, done: int, total: int) -> None:
        bar = self.query_one("#reports-progress", ProgressBar)
        bar.display = True
        bar.update(total=max(total, 1), progress=done)

    def finish_export(self, path: Path | None, message: str) -> None:
        self.query_one("#reports-progress", ProgressBar).display = False
        self.exported = path
        self.console.say(message, "information" if path else "error")
