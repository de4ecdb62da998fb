"""`?`: every key the current screen answers to, generated from the active bindings, with ids for remapping."""

from __future__ import annotations

from collections import defaultdict
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from tui.console.keybar import KeyBar


def binding_table(screen: Screen[object]) -> list[tuple[str, str, str]]:
    """(keys, description, binding id) for every described binding active on `screen`, keys grouped per id."""
    keys: dict[str, list[str]] = defaultdict(list)
    described: dict[str, str] = {}
    order: list[str] = []
    for key, active in screen.active_bindings.items():
        binding = active.binding
        if not binding.description or not binding.id:
            continue
        marker = binding.id or f"{binding.action}"
        if marker not in described:
            described[marker] = binding.description
            order.append(marker)
        shown = screen.app.get_key_display(binding)
        if shown not in keys[marker]:
            keys[marker].append(shown)
        del key
    return [(" ".join(keys[marker]), described[marker], marker if "." in marker else "") for marker in order]


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,q", "dismiss_help", "Close help", id="help.close"),
        Binding("j,down", "scroll(1)", "Down", show=False, id="help.down"),
        Binding("k,up", "scroll(-1)", "Up", show=False, id="help.up"),
    ]

    def __init__(self, screen: Screen[object]) -> None:
        super().__init__()
        self.rows = binding_table(screen)

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Keys here (remap by id in [console.keymap] of the config)\n\n", style="bold")
        for keys, description, binding_id in self.rows:
            text.append(f"{keys:<16}", style="bold")
            text.append(f" {description:<22}")
            text.append(f" {binding_id}\n", style="dim")
        with VerticalScroll(id="help"):
            yield Static(text)
        yield KeyBar()

    def action_scroll(self, step: int) -> None:
        self.query_one("#help", VerticalScroll).scroll_relative(y=step, animate=False)

    def action_dismiss_help(self) -> None:
        self.dismiss(None)
