"""`QueueTable`: the queue as a line-rendered list: one cached strip per row, so moving and paging cost almost nothing.

Textual's DataTable renders every visible cell again whenever rows scroll into
view (about a quarter millisecond per cell: a half-page jump on a 48-line
terminal cost 100+ ms). Here each row is drawn once into a `Strip` when it
arrives or changes; painting a line is a lookup, a crop and, for the cursor
row, one style. Columns have fixed widths, so no row can shift the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.plain import display_width, truncate

Column = tuple[str, str, int]  # key, label, width


class QueueTable(ScrollView, can_focus=True, inherit_bindings=False):
    """Rows keyed by ticket ref, a header line, a row cursor; posts RowHighlighted / RowSelected."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor_up", "Up", show=False),
        Binding("down", "cursor_down", "Down", show=False),
        Binding("enter", "select", "Open", show=False),
        Binding("left", "scroll_left", "Left", show=False),
        Binding("right", "scroll_right", "Right", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"queue-table--header", "queue-table--cursor"}
    DEFAULT_CSS = """
    QueueTable {
        height: 1fr;
        overflow-x: auto;
        overflow-y: auto;
    }
    QueueTable > .queue-table--header {
        text-style: bold;
        background: $boost;
    }
    QueueTable > .queue-table--cursor {
        background: $block-cursor-background;
        color: $block-cursor-foreground;
        text-style: bold;
    }
    QueueTable:blur > .queue-table--cursor {
        background: $block-cursor-blurred-background;
        text-style: none;
    }
    """

    # No repaint on change: the watcher refreshes just the two lines the cursor left and entered.
    cursor_row: reactive[int] = reactive(0, always_update=True, repaint=False)

    class RowHighlighted(Message):
        def __init__(self, table: QueueTable, cursor_row: int) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row

        @property
        def control(self) -> QueueTable:
            return self.table

    class RowSelected(Message):
        def __init__(self, table: QueueTable, cursor_row: int) -> None:
            super().__init__()
            self.table = table
            self.cursor_row = cursor_row

        @property
        def control(self) -> QueueTable:
            return self.table

    def __init__(self, columns: Sequence[Column], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = list(columns)
        self.keys: list[str] = []
        self.cells: list[list[Text]] = []
        self.index: dict[str, int] = {}
        self._strips: dict[int, Strip] = {}
        self.line_width = sum(width for _, _, width in self.columns) + len(self.columns) - 1
        self._styles: tuple[Style, Style, Style] | None = None  # base, header, cursor

    def notify_style_update(self) -> None:
        self._styles = None
        self._strips.clear()
        super().notify_style_update()

    def styles_now(self) -> tuple[Style, Style, Style]:
        if self._styles is None:
            base = self.rich_style
            self._styles = (
                base,
                base + self.get_component_rich_style("queue-table--header"),
                self.get_component_rich_style("queue-table--cursor"),
            )
        return self._styles

    # -- content -----------------------------------------------------------------------

    @property
    def row_count(self) -> int:
        return len(self.keys)

    def _row_strip(self, cells: Sequence[Text], base: Style) -> Strip:
        """One row as segments built directly (cells are single-style `Text`s): no Rich layout per row."""
        segments: list[Segment] = []
        for position, ((_, _, width), cell) in enumerate(zip(self.columns, cells, strict=True)):
            if position:
                segments.append(Segment(" ", base))
            shown = truncate(cell.plain, width)
            shown += " " * (width - display_width(shown))
            style = cell.style if isinstance(cell.style, Style) else Style.parse(cell.style) if cell.style else None
            segments.append(Segment(shown, base + style if style else base))
        return Strip(segments, self.line_width)

    def _strip(self, text: Text, style: Style) -> Strip:
        segments = list(text.render(self.app.console))
        return Strip(Segment.apply_style(segments, style), self.line_width)

    def _sized(self) -> None:
        self.virtual_size = Size(self.line_width, len(self.keys) + 1)

    def clear(self) -> None:
        self.keys.clear()
        self.cells.clear()
        self.index.clear()
        self._strips.clear()
        self.cursor_row = 0
        self._sized()
        self.refresh()

    def add_rows(self, rows: Sequence[tuple[str, list[Text]]]) -> None:
        for key, cells in rows:
            self.index[key] = len(self.keys)
            self.keys.append(key)
            self.cells.append(cells)
        self._sized()
        self.refresh()

    def update_row(self, key: str, cells: list[Text]) -> None:
        row = self.index.get(key)
        if row is None:
            return
        self.cells[row] = cells
        self._strips.pop(row, None)
        self.refresh_line(row)

    def refresh_line(self, row: int) -> None:
        y = row - self.scroll_offset.y + 1
        if 0 < y < self.size.height:
            self.refresh_lines(y)

    # -- the cursor ------------------------------------------------------------------------

    def validate_cursor_row(self, row: int) -> int:
        return max(0, min(row, len(self.keys) - 1)) if self.keys else 0

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh_line(old)
        self.refresh_line(new)
        self.scroll_cursor_visible()
        if self.keys:
            self.post_message(self.RowHighlighted(self, new))

    def scroll_cursor_visible(self) -> None:
        visible_rows = max(1, self.scrollable_content_region.height - 1)
        top = self.scroll_offset.y
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + visible_rows:
            self.scroll_to(y=self.cursor_row - visible_rows + 1, animate=False, immediate=True)

    def move_cursor(self, row: int) -> None:
        self.cursor_row = row

    def action_cursor_down(self) -> None:
        self.cursor_row += 1

    def action_cursor_up(self) -> None:
        self.cursor_row -= 1

    def action_select(self) -> None:
        if self.keys:
            self.post_message(self.RowSelected(self, self.cursor_row))

    def on_click(self, event: events.Click) -> None:
        if event.y < 1:
            return
        row = self.scroll_offset.y + event.y - 1
        if 0 <= row < len(self.keys):
            if row == self.cursor_row:
                self.action_select()
            else:
                self.cursor_row = row

    # -- painting --------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        width = self.scrollable_content_region.width
        scroll_x, scroll_y = self.scroll_offset
        base, header_style, cursor_style = self.styles_now()
        if y == 0:
            header = Text(no_wrap=True, end="")
            for position, (_, label, column_width) in enumerate(self.columns):
                header.append((" " if position else "") + label.ljust(column_width)[:column_width])
            strip = self._strip(header, header_style)
        else:
            row = scroll_y + y - 1
            if row >= len(self.keys):
                return Strip.blank(width, base)
            strip = self._strips.get(row)
            if strip is None:
                strip = self._row_strip(self.cells[row], base)
                self._strips[row] = strip
            if row == self.cursor_row:
                strip = strip.apply_style(cursor_style)
        return strip.crop_extend(scroll_x, scroll_x + width, base)
