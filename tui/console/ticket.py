"""The ticket screen: header, the thread (newest at the bottom), the contact panel, and every action by key.

Live events for this ticket re-read it in place: the thread stays at the
bottom if it was there, otherwise where the agent was reading.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from core.views import TicketDetail, TicketRow
from tui.console.actions import TicketActions
from tui.console.cells import PRIORITY_STYLE, STATUS_STYLE, due
from tui.console.keybar import KeyBar
from tui.console.presence import PresenceBeat
from tui.console.thread import contact_panel, thread_entries
from tui.inert import inert

if TYPE_CHECKING:
    from tui.console.app import ConsoleApp, DeskChanged


class TicketScreen(TicketActions, Screen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back", id="ticket.back"),
        Binding("j,down", "scroll(1)", "Scroll down", show=False, id="ticket.down"),
        Binding("k,up", "scroll(-1)", "Scroll up", show=False, id="ticket.up"),
        Binding("g,home", "top", "Top", show=False, id="ticket.top"),
        Binding("G,end", "bottom", "Bottom", show=False, id="ticket.bottom"),
        Binding("ctrl+d,pagedown", "half_page(1)", "Half page down", show=False, id="ticket.page_down"),
        Binding("ctrl+u,pageup", "half_page(-1)", "Half page up", show=False, id="ticket.page_up"),
        Binding("z", "toggle_quotes", "Fold quotes", show=False, id="ticket.fold"),
        *TicketActions.ACTION_BINDINGS,
    ]

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref
        self.detail: TicketDetail | None = None
        self.folded = True
        self.presence = PresenceBeat(self, ref, "viewing", "presence")
        self.present = False
        self.preloaded = False
        self.thread_text = Text()

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        yield Static(Text(f"{self.ref} loading…"), id="ticket-header")
        yield Static(id="presence")
        with Horizontal(id="ticket-body"):
            with VerticalScroll(id="thread"):
                yield Static(id="thread-text")
            with VerticalScroll(id="contact"):
                yield Static(id="contact-text")
        yield KeyBar()

    def show(self, ref: str, detail: TicketDetail | None = None) -> None:
        """Make this (kept, installed) screen show another ticket, already read when `detail` is given; the
        console reuses one ticket screen because composing and styling a fresh one cost more than reading
        the ticket."""
        self.ref = ref
        self.detail = detail
        self.preloaded = detail is not None
        self.folded = True
        self.presence = PresenceBeat(self, ref, "viewing", "presence")
        self.present = False
        if self.is_mounted:
            self.query_one("#presence", Static).display = False
            self.show_detail()

    def show_detail(self) -> None:
        """Draw the detail (or "loading…"), scrolled to the newest entry at the bottom."""
        if self.detail is None:
            self.query_one("#ticket-header", Static).update(Text(f"{self.ref} loading…"))
            self.query_one("#thread-text", Static).update(Text())
            self.query_one("#contact-text", Static).update(Text())
            return
        self.render_detail()
        self.scroll_to_newest()

    def scroll_to_newest(self) -> None:
        """Show the bottom of the thread without painting its top first where that can be known.

        A thread taller than the view is *anchored*: Textual lays it out already scrolled to the end
        (scrolling up releases the anchor, coming back down takes it again). A thread that fits is
        shown from its top (anchoring it would push it down, leaving blank lines above). Near the
        boundary, or before the screen has a size, it is scrolled after the first paint as before.
        """
        thread = self.query_one("#thread", VerticalScroll)
        thread.anchor(False)
        view = thread.scrollable_content_region
        if view.width <= 0 or view.height <= 0:
            self.call_after_refresh(thread.scroll_end, animate=False)
            return
        lines = len(self.thread_text.wrap(self.app.console, view.width))
        if lines < view.height - 1:
            thread.scroll_to(y=0, animate=False, immediate=True)
        elif lines > view.height + 2:
            thread.anchor()
        else:
            self.call_after_refresh(thread.scroll_end, animate=False)

    def on_mount(self) -> None:
        self.query_one("#presence", Static).display = False
        if self.detail is not None:
            self.show_detail()

    def on_screen_resume(self) -> None:
        self.query_one("#thread", VerticalScroll).focus()
        if self.preloaded:
            self.preloaded = False  # read just now by the queue screen; coming back later reads it again
        else:
            self.load(first=self.detail is None)
        if not self.present:
            self.present = True
            # After the first paint: the heartbeat is a database write that would otherwise delay it.
            self.call_after_refresh(self.start_presence, self.presence)

    def start_presence(self, beat: PresenceBeat) -> None:
        if self.present and beat is self.presence and beat.timer is None:
            beat.start()

    def leave(self) -> None:
        if self.present:
            self.present = False
            self.presence.stop()

    def on_unmount(self) -> None:
        self.leave()

    @work(exclusive=True, group="ticket")
    async def load(self, first: bool = False) -> None:
        detail = await self.console.call(lambda desk: desk.ticket(self.console.handle, self.ref))
        if detail is None:
            # Gone from the agent's sight (transferred away, or never visible): back to the queue.
            if self.is_current:
                self.action_back()
            return
        thread = self.query_one("#thread", VerticalScroll)
        at_bottom = first or thread.scroll_y >= thread.max_scroll_y - 1
        self.detail = detail
        self.render_detail()
        if at_bottom:
            self.scroll_to_newest()

    def render_detail(self) -> None:
        if self.detail is None:
            return
        now = self.console.clock()
        row = self.detail.ticket
        self.query_one("#ticket-header", Static).update(header(row, now))
        text = Text()
        for index, entry in enumerate(thread_entries(self.detail, now, folded=self.folded)):
            if index:
                text.append("\n\n" if entry.kind != "event" else "\n")
            text.append_text(entry.text)
        self.thread_text = text
        self.query_one("#thread-text", Static).update(text)
        self.query_one("#contact-text", Static).update(contact_panel(self.detail, now))

    # -- moving around ------------------------------------------------------------------

    def action_back(self) -> None:
        self.leave()
        self.dismiss(None)

    def action_scroll(self, step: int) -> None:
        self.query_one("#thread", VerticalScroll).scroll_relative(y=step * 2, animate=False)

    def action_top(self) -> None:
        self.query_one("#thread", VerticalScroll).scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.query_one("#thread", VerticalScroll).scroll_end(animate=False)

    def action_half_page(self, direction: int) -> None:
        thread = self.query_one("#thread", VerticalScroll)
        thread.scroll_relative(y=direction * max(1, thread.size.height // 2), animate=False)

    def action_toggle_quotes(self) -> None:
        self.folded = not self.folded
        self.render_detail()

    # -- actions ---------------------------------------------------------------------------

    def targets(self) -> list[TicketRow]:
        return [self.detail.ticket] if self.detail else []

    def after_action(self, changed: list[TicketRow]) -> None:
        self.load()

    def desk_changed(self, message: DeskChanged) -> None:
        if self.ref in message.refs:
            self.load()


def header(row: TicketRow, now: datetime) -> Text:
    text = Text()
    text.append(f"{row.ref} ", style="bold")
    text.append_text(inert(row.subject, "bold"))
    text.append("\n")
    text.append_text(inert(row.department))
    text.append(" · ")
    text.append(row.status, style=STATUS_STYLE.get(row.status, ""))
    text.append(" · ")
    text.append(row.priority, style=PRIORITY_STYLE.get(row.priority, ""))
    text.append(" · assignee ")
    text.append_text(inert(row.assignee or "nobody"))
    text.append(" · due ")
    text.append_text(due(row.resolution_due if row.status in ("new", "open", "pending") else None, now))
    if row.tags:
        text.append(" · tags ")
        text.append_text(inert(", ".join(row.tags)))
    return text
