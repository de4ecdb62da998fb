"""Collision notice: a heartbeat saying this agent is viewing or replying to a ticket, and who else is.

Each beat is one `Desk.heartbeat` call in a worker (skipped while the last
one runs). The screen on top speaks for the agent: opening the composer makes
the intent "replying", closing it "viewing" again, leaving the ticket removes
the row at once; the app writes these one at a time (`announce_presence`). A
console that died is forgotten after `core.drafts.PRESENCE_TTL`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.screen import Screen
from textual.timer import Timer
from textual.widgets import Static

from tui.inert import inert

if TYPE_CHECKING:
    from core.drafts import PresenceView
    from tui.console.app import ConsoleApp


def notice(others: list[PresenceView]) -> Text:
    text = Text("! ")
    for index, other in enumerate(others):
        if index:
            text.append(", ")
        text.append_text(inert(other.handle))
        text.append(f" is {other.activity}")
    text.append(" — this ticket" if len(others) == 1 else " — all on this ticket")
    return text


class PresenceBeat:
    """Keeps the agent's presence on `ref` while `screen` is mounted and shows the others in `widget_id`."""

    def __init__(self, screen: Screen[object], ref: str, activity: str, widget_id: str) -> None:
        self.screen = screen
        self.ref = ref
        self.activity = activity
        self.widget_id = widget_id
        self.running = False
        self.timer: Timer | None = None
        self.others: list[PresenceView] = []

    @property
    def app(self) -> ConsoleApp:
        return self.screen.app  # type: ignore[return-value]

    def start(self) -> None:
        self.app.presence_intent[self.ref] = self.activity
        self.beat()
        self.timer = self.screen.set_interval(self.app.presence_seconds, self.beat, name="presence")

    def beat(self) -> None:
        # Under the composer the screen on top speaks for the agent; "viewing" must not overwrite its
        # "replying" between beats.
        if self.running or self.app.presence_intent.get(self.ref) != self.activity:
            return
        self.running = True
        self.screen.run_worker(self.send(), group="presence", exit_on_error=False)

    async def send(self) -> None:
        try:
            others = await self.app.announce_presence(self.ref)
        finally:
            self.running = False
        if others is None or not self.screen.is_mounted or self.timer is None:
            return
        self.others = others
        widget = self.screen.query_one(f"#{self.widget_id}", Static)
        widget.display = bool(others)
        widget.update(notice(others) if others else Text())

    def stop(self, then: str | None = None) -> None:
        """Leave (or with `then`, switch back to that activity, e.g. the composer closing on the ticket)."""
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        self.app.presence_intent[self.ref] = then
        self.app.run_worker(self.app.announce_presence(self.ref), group="presence-leave")
