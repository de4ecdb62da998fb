"""The footer: the keys of the current context in one line, drawn from the screen's active bindings.

A single widget, not Textual's `Footer`: that one builds a styled widget per
key and restyles them all whenever bindings change, which cost more than the
rest of opening a ticket put together. Keys and descriptions are ours (never
untrusted text).
"""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static


class KeyBar(Static):
    DEFAULT_CSS = """
    KeyBar {
        dock: bottom;
        height: 1;
        background: $panel;
        color: $text-muted;
        padding: 0 1;
    }
    """

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, lambda _screen: self.show_keys())
        self.show_keys()

    def show_keys(self) -> None:
        text = Text(no_wrap=True, overflow="ellipsis")
        seen: set[str] = set()
        for active in self.screen.active_bindings.values():
            binding = active.binding
            marker = binding.id or binding.action
            if not binding.show or not binding.description or marker in seen or not active.enabled:
                continue
            seen.add(marker)
            if text:
                text.append("  ")
            text.append(self.app.get_key_display(binding), style="bold")
            text.append(f" {binding.description}")
        self.update(text)
