"""The queues screen: the agent's departments with live counts, and the chosen queue as a keyset-paged table.

The table never holds a whole queue: it starts with one page from
`Desk.queue` and fetches the next page (by its keyset cursor) when the cursor
nears the last loaded row. `G` goes to the true end: unless every page is
loaded already, the table is replaced by the queue's *last* page, read by the
same keyset walked backwards (one indexed query, as cheap at a million
tickets as the first page; loading every page in between would be 10,000
round trips and a million rows in the widget), and earlier pages are put in
front as the cursor nears the top. `g` from there reads the first page
again. Live events refresh the counts and the loaded rows (at the head or at
the tail, wherever the window is) in place, keeping the cursor on the same
ticket and the marks where they were.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from core.views import DepartmentCounts, QueueFilter, QueueSort, TicketDetail, TicketRow
from tui.console.actions import TicketActions
from tui.console.cells import ago, department_header, department_line, queue_cells, queue_columns
from tui.console.collector import settle
from tui.console.keybar import KeyBar
from tui.console.prefetch import REST_SECONDS, Prefetched
from tui.console.queue_table import QueueTable
from tui.inert import inert_plain

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from core.desk import Desk
    from core.views import QueuePage
    from tui.console.app import ConsoleApp, DeskChanged

ALL = "__all__"
STATUS_FILTERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("active", ("new", "open", "pending")),
    ("new", ("new",)),
    ("open", ("open",)),
    ("pending", ("pending",)),
    ("resolved", ("resolved",)),
    ("closed", ("closed",)),
    ("spam", ("spam",)),
    ("any", ()),
)
WHO_FILTERS = ("everyone", "mine", "unassigned")
SORTS: tuple[QueueSort, ...] = ("updated", "oldest", "newest", "priority", "due")
REFRESH_LIMIT = 500  # rows re-read on a live update (the most a page holds)
MAX_PAGE_ROWS = 500  # the largest page core serves
SEARCH_END_LIMIT = 5_000  # G on a text search loads at most this many matches


class QueuesScreen(TicketActions, Screen[None]):
    """Departments on the left, the selected queue on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j,down", "cursor_down", "Down", show=False, id="queue.down"),
        Binding("k,up", "cursor_up", "Up", show=False, id="queue.up"),
        Binding("g,home", "top", "Top", show=False, id="queue.top"),
        Binding("G,end", "bottom", "Bottom", show=False, id="queue.bottom"),
        Binding("ctrl+d,pagedown", "half_page(1)", "Half page down", show=False, id="queue.page_down"),
        Binding("ctrl+u,pageup", "half_page(-1)", "Half page up", show=False, id="queue.page_up"),
        Binding("enter", "open", "Open", id="queue.open"),
        Binding("slash", "filter_text", "Filter", id="queue.filter"),
        Binding("n", "next_match(1)", "Next match", show=False, id="queue.next_match"),
        Binding("N", "next_match(-1)", "Previous match", show=False, id="queue.previous_match"),
        Binding("f", "cycle_status", "Status filter", id="queue.status_filter"),
        Binding("w", "cycle_who", "Mine/unassigned", id="queue.who_filter"),
        Binding("number_sign", "filter_tag", "Tag filter", show=False, id="queue.tag_filter"),
        Binding("o", "cycle_sort", "Sort", id="queue.sort"),
        Binding("space", "toggle_mark", "Mark", id="queue.mark"),
        Binding("ctrl+r", "reload", "Reload", show=False, id="queue.reload"),
        Binding("tab", "switch_pane", "Departments/queue", show=False, id="queue.switch_pane"),
        *[
            Binding(str(number), f"department({number})", f"Department {number}", show=False,
                    id=f"queue.department_{number}")
            for number in range(10)
        ],
        *TicketActions.ACTION_BINDINGS,
    ]

    def __init__(self) -> None:
        super().__init__()
        self.departments: list[DepartmentCounts] = []
        self.department: str | None = None
        self.status_index = 0
        self.who_index = 0
        self.sort_index = 0
        self.text: str | None = None
        self.tag: str | None = None
        self.rows: list[TicketRow] = []
        self.next_cursor: str | None = None
        # Set while the table holds a window at the end of the queue (after G): where the rows before it start.
        self.previous_cursor: str | None = None
        self.at_tail = False
        self.loading_earlier = False
        self.marks: set[str] = set()
        self.generation = 0
        self.loading_more = False
        self.loaded = False
        self.prefetched = Prefetched()
        self.rest_timer: Timer | None = None
        # The ticket shown last from here: dropped from `prefetched` on coming back (the agent may have changed it).
        self.opened: str | None = None

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(id="status-bar")
        with Horizontal(id="queues-body"):
            with Vertical(id="departments-pane"):
                yield Static(department_header(), id="departments-header")
                yield OptionList(id="departments")
            with Vertical(id="queue-pane"):
                yield QueueTable(queue_columns(self.subject_limit), id="queue")
                yield Input(placeholder="filter: text in subject or messages (enter applies, escape clears)",
                            id="filter")
        yield KeyBar()

    async def on_mount(self) -> None:
        self.query_one("#filter", Input).display = False
        self.table.focus()
        self.set_interval(1.0, self.show_status)
        self.load_counts()
        self.load_queue()

    # -- state shown in the status bar ----------------------------------------------

    def current_filter(self, cursor: str | None = None, limit: int | None = None) -> QueueFilter:
        who = WHO_FILTERS[self.who_index]
        return QueueFilter(
            department=self.department,
            statuses=STATUS_FILTERS[self.status_index][1],
            assignee=self.console.handle if who == "mine" else None,
            unassigned=who == "unassigned",
            tag=self.tag,
            text=self.text,
            sort=SORTS[self.sort_index],
            limit=limit or self.console.page_size,
            cursor=cursor,
        )

    def show_status(self) -> None:
        app = self.console
        parts = []
        if app.last_update is not None:
            parts.append(f"updated {ago(app.last_update, app.clock())} ago")
        parts += [
            app.handle,
            self.department or "All",
            STATUS_FILTERS[self.status_index][0],
            WHO_FILTERS[self.who_index],
            f"by {SORTS[self.sort_index]}",
        ]
        if self.tag:
            parts.append(f"#{inert_plain(self.tag)}")
        if self.text:
            parts.append(f"/{inert_plain(self.text)}")
        if self.marks:
            parts.append(f"{len(self.marks)} marked")
        more = "+" if self.next_cursor else ""
        if self.at_tail:
            parts.append(f"last {len(self.rows)}{'' if self.previous_cursor is None else '+'} rows")
        else:
            parts.append(f"{len(self.rows)}{more} rows")
        self.query_one("#status-bar", Static).update(Text(" · ".join(parts)))

    # -- departments --------------------------------------------------------------------

    @work(exclusive=True, group="counts")
    async def load_counts(self) -> None:
        found = await self.console.call(lambda desk: desk.counts(self.console.handle))
        if found is None or not self.is_attached:
            return  # failed (and said so), or the screen went away while the counts were read
        self.departments = found
        self.show_departments()

    def show_departments(self) -> None:
        options = self.query_one("#departments", OptionList)
        highlighted = options.highlighted
        total = DepartmentCounts(
            department="All", slug=ALL,
            new=sum(item.new for item in self.departments), open=sum(item.open for item in self.departments),
            pending=sum(item.pending for item in self.departments),
            resolved=sum(item.resolved for item in self.departments),
            mine=sum(item.mine for item in self.departments),
        )
        lines = [Option(department_line(0, total, "All"), id=ALL)]
        lines += [
            Option(department_line(index, item, item.department), id=item.slug)
            for index, item in enumerate(self.departments, start=1)
        ]
        with options.prevent(OptionList.OptionHighlighted):
            options.clear_options()
            options.add_options(lines)
            options.highlighted = highlighted if highlighted is not None else self.department_index()

    def department_index(self) -> int:
        if self.department is None:
            return 0
        for index, item in enumerate(self.departments, start=1):
            if item.department == self.department:
                return index
        return 0

    @on(OptionList.OptionSelected, "#departments")
    @on(OptionList.OptionHighlighted, "#departments")
    def department_chosen(self, event: OptionList.OptionHighlighted | OptionList.OptionSelected) -> None:
        self.choose_department(event.option_index)

    def choose_department(self, index: int) -> None:
        if index < 0 or index > len(self.departments):
            return
        name = None if index == 0 else self.departments[index - 1].department
        if name == self.department and self.loaded:
            return
        self.department = name
        options = self.query_one("#departments", OptionList)
        if options.highlighted != index:
            with options.prevent(OptionList.OptionHighlighted):
                options.highlighted = index
        self.load_queue()

    def action_department(self, number: int) -> None:
        if number <= len(self.departments):
            self.choose_department(number)

    def action_switch_pane(self) -> None:
        table = self.table
        (self.query_one("#departments", OptionList) if table.has_focus else table).focus()

    # -- the queue ----------------------------------------------------------------------

    @property
    def subject_limit(self) -> int:
        # At 80 columns the subject must leave room for status, priority and age.
        return 24 if self.app.size.width < 120 else 48

    @property
    def table(self) -> QueueTable:
        return self.query_one("#queue", QueueTable)

    def load_queue(self) -> None:
        self.generation += 1
        self.marks.clear()
        self.fetch_first_page(self.generation)

    @work(exclusive=True, group="queue")
    async def fetch_first_page(self, generation: int) -> None:
        wanted = self.current_filter()
        page = await self.console.call(lambda desk: desk.queue(self.console.handle, wanted))
        if page is None or generation != self.generation:
            return
        self.rows = list(page.rows)
        self.next_cursor = page.next_cursor
        self.previous_cursor = None
        self.at_tail = False
        self.redraw(keep_ref=None)
        if not self.loaded:
            self.call_after_refresh(settle)  # the console is up: what it holds now, it holds for good
        self.loaded = True
        self.show_status()

    @work(exclusive=True, group="queue")
    async def fetch_last_page(self, generation: int) -> None:
        """Replace the loaded rows with the queue's last page (a reverse keyset read) and go to its last row."""
        wanted = replace(self.current_filter(), backward=True)
        page = await self.console.call(lambda desk: desk.queue(self.console.handle, wanted))
        if page is None or generation != self.generation:
            return
        self.rows = list(page.rows)
        self.next_cursor = None
        self.previous_cursor = page.previous_cursor
        self.at_tail = True
        self.redraw(keep_ref=self.rows[-1].ref if self.rows else None)
        self.show_status()

    def page_of(self, wanted: QueueFilter) -> Callable[[Desk], Awaitable[QueuePage]]:
        handle = self.console.handle
        return lambda desk: desk.queue(handle, wanted)

    def append_page(self, page: QueuePage) -> None:
        """Add the next page's rows under the ones shown (a row a live refresh already added is skipped)."""
        known = {row.ref for row in self.rows}
        fresh = [row for row in page.rows if row.ref not in known]
        now = self.console.clock()
        self.table.add_rows([(row.ref, queue_cells(row, now, False, self.subject_limit)) for row in fresh])
        self.rows.extend(fresh)
        self.next_cursor = page.next_cursor

    @work(exclusive=True, group="queue-to-end")
    async def fetch_to_end(self, generation: int) -> None:
        """A text search reads newest match first and has no reverse order: page forward to its end."""
        while self.next_cursor and generation == self.generation and len(self.rows) < SEARCH_END_LIMIT:
            wanted = self.current_filter(cursor=self.next_cursor, limit=MAX_PAGE_ROWS)
            page = await self.console.call(self.page_of(wanted))
            if page is None or generation != self.generation:
                return
            self.append_page(page)
        if generation == self.generation and self.rows:
            self.table.move_cursor(len(self.rows) - 1)
            if self.next_cursor:
                self.console.say(f"Showing the first {len(self.rows):,} matches; narrow the search to see the rest.")
        self.show_status()

    @work(exclusive=True, group="earlier")
    async def fetch_earlier(self, generation: int, cursor: str) -> None:
        """Put the page before the tail window in front of it, keeping the cursor on the same ticket."""
        try:
            wanted = replace(self.current_filter(cursor=cursor), backward=True)
            page = await self.console.call(lambda desk: desk.queue(self.console.handle, wanted))
            if page is None or generation != self.generation or cursor != self.previous_cursor:
                return
            known = {row.ref for row in self.rows}
            fresh = [row for row in page.rows if row.ref not in known]
            current = self.current_row()
            self.rows = fresh + self.rows
            self.previous_cursor = page.previous_cursor
            self.redraw(current.ref if current else None)
            self.show_status()
        finally:
            self.loading_earlier = False

    @work(exclusive=True, group="more")
    async def fetch_more(self, generation: int, cursor: str) -> None:
        try:
            wanted = self.current_filter(cursor=cursor)
            page = await self.console.call(lambda desk: desk.queue(self.console.handle, wanted))
            if page is None or generation != self.generation or cursor != self.next_cursor:
                return
            self.append_page(page)
            self.show_status()
        finally:
            self.loading_more = False

    def redraw(self, keep_ref: str | None, keep_index: int = 0) -> None:
        """Fill the table from `self.rows`, putting the cursor back on `keep_ref` (or the same index)."""
        table = self.table
        now = self.console.clock()
        table.clear()
        width = self.subject_limit
        table.add_rows([(row.ref, queue_cells(row, now, row.ref in self.marks, width)) for row in self.rows])
        if not self.rows:
            return
        index = next((i for i, row in enumerate(self.rows) if row.ref == keep_ref), min(keep_index, len(self.rows) - 1))
        table.move_cursor(index)

    def current_row(self) -> TicketRow | None:
        if not self.rows:
            return None
        index = self.table.cursor_row
        return self.rows[index] if 0 <= index < len(self.rows) else None

    @on(QueueTable.RowHighlighted, "#queue")
    def near_the_end(self, event: QueueTable.RowHighlighted) -> None:
        if (
            self.previous_cursor
            and not self.loading_earlier
            and event.cursor_row < max(10, self.console.page_size // 2)
        ):
            self.loading_earlier = True
            self.fetch_earlier(self.generation, self.previous_cursor)
        if (
            self.next_cursor
            and not self.loading_more
            and event.cursor_row >= len(self.rows) - max(10, self.console.page_size // 2)
        ):
            self.loading_more = True  # set here, not in the worker, so a second highlight cannot start another
            self.fetch_more(self.generation, self.next_cursor)
        # Read the ticket under the cursor once it rests there, so enter can show it from memory.
        if self.rest_timer is not None:
            self.rest_timer.stop()
        self.rest_timer = self.set_timer(REST_SECONDS, self.prefetch_current, name="prefetch")

    def prefetch_current(self) -> None:
        row = self.current_row()
        if row is not None and self.is_current and self.prefetched.get(row.ref) is None:
            self.prefetch(row.ref)

    @work(exclusive=True, group="prefetch")
    async def prefetch(self, ref: str) -> None:
        epoch = self.prefetched.epoch
        handle = self.console.handle
        detail = await self.console.call(lambda desk: desk.ticket(handle, ref))
        if detail is not None:
            self.prefetched.put(ref, detail, epoch)

    @on(QueueTable.RowSelected, "#queue")
    def row_selected(self, event: QueueTable.RowSelected) -> None:
        self.action_open()

    def action_open(self) -> None:
        row = self.current_row()
        if row is None:
            return
        detail = self.prefetched.get(row.ref)
        if detail is not None:
            self.show_ticket(row.ref, detail)  # read while the cursor rested: no read, no worker hop
        else:
            self.open_ticket(row.ref)

    @work(exclusive=True, group="open")
    async def open_ticket(self, ref: str) -> None:
        """Read the ticket first, then show the screen with it: one layout and paint of the whole thread,
        where showing an empty screen and filling it in painted the screen three times (bench/tui.py)."""
        handle = self.console.handle
        detail = await self.console.call(lambda desk: desk.ticket(handle, ref))
        if detail is None or not self.is_current:
            return
        self.show_ticket(ref, detail)

    def show_ticket(self, ref: str, detail: TicketDetail) -> None:
        from tui.console.ticket import TicketScreen

        self.opened = ref
        if not self.app.is_screen_installed("ticket"):
            self.app.install_screen(TicketScreen(ref), name="ticket")
        screen = self.app.get_screen("ticket")
        assert isinstance(screen, TicketScreen)
        screen.show(ref, detail)
        self.app.push_screen("ticket")

    def action_cursor_down(self) -> None:
        self.table.action_cursor_down()

    def action_cursor_up(self) -> None:
        self.table.action_cursor_up()

    def action_top(self) -> None:
        if self.at_tail and self.previous_cursor is not None:
            # The window starts mid-queue: the first page is one read away (marks stay).
            self.generation += 1
            self.fetch_first_page(self.generation)
            return
        self.table.move_cursor(0)

    def action_bottom(self) -> None:
        if self.next_cursor is None:
            if self.rows:
                self.table.move_cursor(len(self.rows) - 1)
            return
        self.generation += 1
        if self.text:
            self.fetch_to_end(self.generation)
        else:
            self.fetch_last_page(self.generation)

    def action_half_page(self, direction: int) -> None:
        step = max(1, (self.table.size.height - 1) // 2)
        target = max(0, min(len(self.rows) - 1, self.table.cursor_row + direction * step))
        self.table.move_cursor(target)

    def action_reload(self) -> None:
        self.load_counts()
        self.load_queue()

    # -- filters ----------------------------------------------------------------------

    def action_cycle_status(self) -> None:
        self.status_index = (self.status_index + 1) % len(STATUS_FILTERS)
        self.load_queue()
        self.show_status()

    def action_cycle_who(self) -> None:
        self.who_index = (self.who_index + 1) % len(WHO_FILTERS)
        self.load_queue()
        self.show_status()

    def action_cycle_sort(self) -> None:
        self.sort_index = (self.sort_index + 1) % len(SORTS)
        self.load_queue()
        self.show_status()

    def action_filter_text(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = True
        field.value = self.text or ""
        field.focus()

    def action_filter_tag(self) -> None:
        from tui.console.prompts import TextPrompt

        def chosen(value: str | None) -> None:
            if value is not None:
                self.tag = value.strip() or None
                self.load_queue()
                self.show_status()

        self.app.push_screen(TextPrompt("Show only tickets with the tag (empty: any tag)", self.tag or ""), chosen)

    @on(Input.Submitted, "#filter")
    def filter_applied(self, event: Input.Submitted) -> None:
        self.text = event.value.strip() or None
        self.close_filter()
        self.load_queue()
        self.show_status()

    def close_filter(self) -> None:
        field = self.query_one("#filter", Input)
        field.display = False
        self.table.focus()

    def key_escape(self) -> None:
        if self.query_one("#filter", Input).display:
            self.close_filter()
        elif self.text or self.tag:
            self.text = self.tag = None
            self.load_queue()
            self.show_status()

    def action_next_match(self, direction: int) -> None:
        """Move to the next loaded row whose subject or contact holds the filter text."""
        if not self.text or not self.rows:
            return
        needle = self.text.lower()
        start = self.table.cursor_row
        for step in range(1, len(self.rows) + 1):
            index = (start + direction * step) % len(self.rows)
            row = self.rows[index]
            if needle in row.subject.lower() or needle in row.contact.lower() or needle in row.contact_name.lower():
                self.table.move_cursor(index)
                return
        self.console.say("No loaded row holds the filter text; the whole queue is filtered by it already.")

    # -- marks ---------------------------------------------------------------------------

    def action_toggle_mark(self) -> None:
        row = self.current_row()
        if row is None:
            return
        if row.ref in self.marks:
            self.marks.discard(row.ref)
        else:
            self.marks.add(row.ref)
        cells = queue_cells(row, self.console.clock(), row.ref in self.marks, self.subject_limit)
        self.table.update_row(row.ref, cells)
        self.table.action_cursor_down()
        self.show_status()

    def targets(self) -> list[TicketRow]:
        """The marked tickets, or the one under the cursor."""
        if self.marks:
            return [row for row in self.rows if row.ref in self.marks]
        row = self.current_row()
        return [row] if row else []

    def department_of_targets(self) -> str | None:
        departments = {row.department for row in self.targets()}
        return departments.pop() if len(departments) == 1 else None

    def after_action(self, changed: list[TicketRow]) -> None:
        by_ref = {row.ref: row for row in changed}
        self.rows = [by_ref.get(row.ref, row) for row in self.rows]
        self.marks.clear()
        self.prefetched.clear()
        self.refresh_rows()
        self.load_counts()

    # -- live ---------------------------------------------------------------------------------

    def desk_changed(self, message: DeskChanged) -> None:
        self.prefetched.drop(message.refs)
        self.load_counts()
        if self.loaded:
            self.refresh_rows()

    def refresh_rows(self) -> None:
        self.refetch_loaded(self.generation)

    @work(exclusive=True, group="refresh")
    async def refetch_loaded(self, generation: int) -> None:
        """Read the loaded part of the queue again and update the table in place."""
        limit = min(max(len(self.rows), self.console.page_size), REFRESH_LIMIT)
        # At the tail (after G) the window at the end is re-read, backwards; elsewhere the head.
        wanted = replace(self.current_filter(limit=limit), backward=self.at_tail)
        page = await self.console.call(lambda desk: desk.queue(self.console.handle, wanted))
        if page is None or generation != self.generation:
            return
        fresh = list(page.rows)
        # Past REFRESH_LIMIT loaded rows, the rows after the re-read head are dropped and paged in again.
        next_cursor = page.next_cursor
        if self.at_tail:
            self.previous_cursor = page.previous_cursor
        current = self.current_row()
        keep_ref = current.ref if current else None
        keep_index = self.table.cursor_row
        self.marks &= {row.ref for row in fresh}
        if [row.ref for row in fresh] == [row.ref for row in self.rows]:
            now = self.console.clock()
            for old, new in zip(self.rows, fresh, strict=True):
                if old != new:
                    self.table.update_row(new.ref, queue_cells(new, now, new.ref in self.marks, self.subject_limit))
            self.rows = fresh
        else:
            self.rows = fresh
            self.redraw(keep_ref, keep_index)
        self.next_cursor = next_cursor
        self.show_status()

    def on_screen_resume(self) -> None:
        self.table.focus()
        if self.opened is not None:
            self.prefetched.drop([self.opened])
            self.opened = None

    def shown_tickets(self) -> list[TicketRow]:
        return list(self.rows)
