"""`ConsoleApp`: the agent console's root — the desk, the acting agent, the live feed, keymap and theme.

Screens ask the app for the desk and the agent and never open sessions
themselves. The live feed (`Desk.watch`: LISTEN/NOTIFY on PostgreSQL, a
poll of the newest event id on SQLite) wakes `poll`, which reads
`Desk.events_since` and broadcasts one `DeskChanged` to every screen on the
stack that cares. Wake-ups during a poll are folded into one more poll after
it, so a burst of changes or a slow database never piles up work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from core.desk import Desk
from core.drafts import PresenceView
from core.errors import DeskError
from core.feed import DeskFeed
from core.views import EventView
from storage.errors import StorageError
from tui.console.drafts import KeptDrafts
from tui.plain import visible

log = logging.getLogger("termdesk.console")
T = TypeVar("T")
Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def _retrieve(task: asyncio.Future[object]) -> None:
    """Collect the outcome of a call whose caller was cancelled, so no "exception never retrieved" is logged."""
    if not task.cancelled() and task.exception() is not None:
        log.info("a desk call finished after its caller left: %s", task.exception())


class DeskChanged(Message):
    """New events from the feed that touch the agent's departments."""

    def __init__(self, events: list[EventView]) -> None:
        super().__init__()
        self.events = events

    @property
    def refs(self) -> set[str]:
        return {event.ticket_ref for event in self.events if event.ticket_ref}


class ConsoleApp(App[None]):
    """The console for one agent on one desk."""

    CSS_PATH = Path(__file__).with_name("console.tcss")
    TITLE = "termdesk"
    ENABLE_COMMAND_PALETTE = True
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (120, "-wide")]
    BINDINGS = [
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("ctrl+p", "command_palette", "Commands", id="app.commands"),
        Binding("q", "quit", "Quit", id="app.quit"),
        # `d`: unshifted on QWERTY and AZERTY alike and free on every console screen (STYLE.md: no Shift-only chords).
        Binding("d", "dashboard", "Dashboard", show=False, id="app.dashboard"),
    ]

    def __init__(
        self,
        desk: Desk,
        handle: str,
        *,
        clock: Clock = system_clock,
        poll_seconds: float | None = None,
        keymap: dict[str, str] | None = None,
        live: bool = True,
        page_size: int = 100,
        presence_seconds: float = 5.0,
        close_desk: bool = False,
    ) -> None:
        super().__init__()
        from tui.console.commands import ConsoleCommands

        self.COMMANDS = {ConsoleCommands}
        self.desk = desk
        self.handle = handle.strip().lower()
        self.clock = clock
        settings = desk.settings.console
        self.poll_seconds = poll_seconds if poll_seconds is not None else settings.poll_seconds
        self.live = live
        self.page_size = page_size
        self.presence_seconds = presence_seconds
        # True when the desk was made for this app (its connections then live in the app's event loop).
        self.close_desk = close_desk
        self.last_event_id = 0
        self.last_update: datetime | None = None
        self.polling = False
        self.poll_again = False
        self.skipped_ticks = 0
        self.autosave_seconds = settings.autosave_seconds
        self.feed: DeskFeed | None = None
        self._keymap = {**settings.keymap, **(keymap or {})}
        self.theme = settings.theme
        self.last_call_failed = False
        self.drafts = KeptDrafts(self)
        # What this console says it is doing on each ticket. Heartbeats are written one at a time and
        # each writes the intent as it stands then, so a "viewing" beat still in flight can never land
        # after the composer's "replying" and hide it from the other agent.
        self.presence_intent: dict[str, str | None] = {}
        self._presence_lock = asyncio.Lock()

    # -- start -----------------------------------------------------------------

    def first_screen(self) -> Screen[None]:
        """The screen the console opens on (`termdesk dashboard` opens on the dashboard instead)."""
        from tui.console.queues import QueuesScreen

        return QueuesScreen()

    async def on_mount(self) -> None:
        if self._keymap:
            self.set_keymap(self._keymap)
        self.actor = await self.desk.login(self.handle)
        self.last_event_id = await self.desk.latest_event_id()
        self.last_update = self.clock()
        await self.push_screen(self.first_screen())
        if self.live:
            self.run_worker(self.follow_feed(), group="live-feed-watch", exit_on_error=False)

    async def on_unmount(self) -> None:
        if self.close_desk:
            await self.desk.close()

    # -- calling the desk --------------------------------------------------------

    async def call(self, action: Callable[[Desk], Awaitable[T]]) -> T | None:
        """Run one Desk call; a DeskError or storage failure becomes a one-sentence notification and None."""
        self.last_call_failed = False
        # Shielded: a worker cancelled mid-call (an exclusive worker replaced, a screen closed, the app
        # quitting) must not abandon a database transaction half way; the call finishes on its own.
        call = asyncio.ensure_future(action(self.desk))
        try:
            return await asyncio.shield(call)
        except asyncio.CancelledError:
            call.add_done_callback(_retrieve)
            raise
        except (DeskError, StorageError) as error:
            self.last_call_failed = True
            log.info("desk call failed: %s", error.message)
            self.notify(visible(error.message), severity="error", markup=False)
        return None

    async def announce_presence(self, ref: str) -> list[PresenceView] | None:
        """Write this agent's current intent on `ref` (see `presence_intent`); the other agents there now."""
        async with self._presence_lock:
            activity = self.presence_intent.get(ref)
            handle = self.handle
            others = await self.call(lambda desk: desk.heartbeat(handle, ref, activity))
            if activity is None:
                self.presence_intent.pop(ref, None)
            return others

    def say(self, message: str, severity: str = "information") -> None:
        self.notify(visible(message), severity=severity, markup=False)  # type: ignore[arg-type]

    # -- the live feed -------------------------------------------------------------

    async def follow_feed(self) -> None:
        """Wake `poll` whenever the desk may have changed; note the freshness when it is known unchanged."""
        self.feed = self.desk.watch(self.poll_seconds)
        async with aclosing(self.feed.changes()) as changes:
            async for changed in changes:
                if changed:
                    self.tick()
                elif not self.polling:
                    self.last_update = self.clock()

    def tick(self) -> None:
        """Read new events now, or once more right after the poll that is running (bursts fold into one)."""
        if self.polling:
            self.skipped_ticks += 1
            self.poll_again = True
            return
        self.polling = True
        self.poll_again = False
        self.run_worker(self.poll(), group="live-feed", exit_on_error=False)

    async def poll(self) -> None:
        """Read the events after the last one seen and hand them to every screen on the stack."""
        try:
            found: list[EventView] = []
            while True:
                batch = await self.call(lambda desk: desk.events_since(self.handle, self.last_event_id))
                if not batch:
                    break
                found.extend(batch)
                self.last_event_id = batch[-1].id
                if len(batch) < 500:
                    break
            self.last_update = self.clock()
            if found:
                self.broadcast(DeskChanged(found))
        finally:
            self.polling = False
        if self.poll_again:
            self.tick()

    def broadcast(self, message: DeskChanged) -> None:
        for screen in self.screen_stack:
            handler = getattr(screen, "desk_changed", None)
            if handler is not None:
                handler(message)

    def action_dashboard(self) -> None:
        from tui.console.dashboard import open_dashboard

        open_dashboard(self)

    def action_reports(self) -> None:
        """The reports screen, for anyone: every figure on it is limited to the agent's departments."""
        from textual.screen import ModalScreen

        from tui.console.reports import ReportsScreen

        if not isinstance(self.screen, (ModalScreen, ReportsScreen)):
            self.push_screen(ReportsScreen())

    # -- help --------------------------------------------------------------------------

    def action_help(self) -> None:
        from tui.console.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.screen))

