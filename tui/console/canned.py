"""The canned-response picker: the ticket's department's ready-made texts, filtered as you type.

The composer opens it (ctrl+t), asks the desk to fill the chosen one in for
the ticket and the agent (core.canned: sandboxed Jinja2), and inserts the
text at the cursor. Names and texts were typed by people, so they are shown
inert.
"""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from core.canned import CannedView
from tui.inert import inert, inert_plain

PREVIEW = 60


def matches(item: CannedView, words: list[str]) -> bool:
    haystack = f"{item.name}\n{item.body}".casefold()
    return all(word in haystack for word in words)


class CannedPicker(ModalScreen[int | None]):
    """Answers the chosen canned response's id, or None (escape, or nothing to choose)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel", id="canned.cancel"),
        Binding("down", "move(1)", "Down", show=False, id="canned.down"),
        Binding("up", "move(-1)", "Up", show=False, id="canned.up"),
    ]

    def __init__(self, department: str, items: list[CannedView]) -> None:
        super().__init__()
        self.department = department
        self.items = items
        self.shown: list[CannedView] = list(items)

    def compose(self) -> ComposeResult:
        title = Text("Canned responses of ", style="bold")
        title.append_text(inert(self.department, "bold"))
        title.append(" · type to filter, enter inserts", style="dim")
        with Vertical(classes="prompt", id="canned-picker"):
            yield Static(title, classes="prompt-title")
            yield Input(placeholder="filter", id="canned-filter")
            yield OptionList(id="canned-options")
            yield Static(id="canned-empty")

    def on_mount(self) -> None:
        self.refill()
        self.query_one(Input).focus()

    def refill(self) -> None:
        words = self.query_one(Input).value.casefold().split()
        self.shown = [item for item in self.items if matches(item, words)]
        options = self.query_one(OptionList)
        options.clear_options()
        options.add_options([self.option(item) for item in self.shown])
        options.highlighted = 0 if self.shown else None
        empty = self.query_one("#canned-empty", Static)
        empty.display = not self.shown
        if not self.items:
            empty.update(Text("None yet; a supervisor adds them with `termdesk canned add`.", style="dim"))
        else:
            empty.update(Text("Nothing matches the filter.", style="dim"))

    @staticmethod
    def option(item: CannedView) -> Option:
        label = inert(item.name, "bold")
        label.append("  ")
        label.append_text(inert(" ".join(inert_plain(item.body).split()), "dim", limit=PREVIEW))
        return Option(label, id=str(item.id))

    @on(Input.Changed, "#canned-filter")
    def filtered(self) -> None:
        self.refill()

    def action_move(self, step: int) -> None:
        options = self.query_one(OptionList)
        options.action_cursor_down() if step > 0 else options.action_cursor_up()

    @on(Input.Submitted, "#canned-filter")
    def submitted(self) -> None:
        highlighted = self.query_one(OptionList).highlighted
        if highlighted is not None and highlighted < len(self.shown):
            self.dismiss(self.shown[highlighted].id)

    @on(OptionList.OptionSelected, "#canned-options")
    def picked(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(self.shown[event.option_index].id)

    def action_cancel(self) -> None:
        self.dismiss(None)
