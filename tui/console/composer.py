"""The composer: write a reply or an internal note, see the department's signature, then review before sending.

Leaving the editor (ctrl+s or escape) always goes through the review step,
as in aerc: `y` sends, `e` edits again, `p` keeps it as a draft, `d` discards
it. A kept draft is stored by the desk for this agent and ticket, so it
survives a restart of the console and another agent's change to the ticket.
The text is also kept by itself a moment (`console.autosave_seconds`) after
the last keystroke, so a console killed mid-sentence loses only that moment.
ctrl+t inserts one of the department's canned responses at the cursor.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Static, TextArea

from core.views import TicketRow
from tui.console.keybar import KeyBar
from tui.console.presence import PresenceBeat
from tui.inert import inert, inert_block

if TYPE_CHECKING:
    from tui.console.app import ConsoleApp

KIND_TITLE = {"reply": "Reply to the customer", "note": "Internal note (agents only)"}


class ComposerScreen(Screen[bool]):
    """Dismissed with True when something was sent."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "review", "Review", id="composer.review"),
        Binding("escape", "review", "Review / leave", id="composer.leave"),
        Binding("ctrl+t", "canned", "Canned response", id="composer.canned"),
    ]

    def __init__(self, row: TicketRow, kind: str) -> None:
        super().__init__()
        self.row = row
        self.kind = kind
        self.signature = ""
        self.presence = PresenceBeat(self, row.ref, "replying", "composer-presence")
        # Autosave: the text as last stored, the pending debounce timer, and a lock so an autosave in
        # flight never lands after the draft was sent or discarded (`finished`).
        self.saved_text = ""
        self.autosaves = 0
        self.finished = False
        self._autosave_timer: Timer | None = None
        self._save_lock = asyncio.Lock()

    def on_unmount(self) -> None:
        # Back on the ticket screen (if that is where we came from) the agent is viewing again.
        from tui.console.ticket import TicketScreen

        stack = self.app.screen_stack
        viewing = any(isinstance(screen, TicketScreen) and screen.ref == self.row.ref for screen in stack)
        self.presence.stop("viewing" if viewing else None)

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    def compose(self) -> ComposeResult:
        title = Text(f"{KIND_TITLE[self.kind]} · {self.row.ref} ", style="bold")
        title.append_text(inert(self.row.subject))
        title.append(" · ")
        title.append_text(inert(self.row.department))
        yield Static(title, id="composer-title")
        yield Static(id="composer-presence", classes="presence")
        yield TextArea(id="composer-body", soft_wrap=True, show_line_numbers=False)
        yield Static(id="signature")
        yield KeyBar()

    def on_mount(self) -> None:
        self.query_one("#composer-presence", Static).display = False
        self.presence.start()
        self.query_one("#signature", Static).display = False
        self.query_one("#composer-body", TextArea).focus()
        self.prepare()

    @work(exclusive=True, group="composer")
    async def prepare(self) -> None:
        """Load a kept draft and, for replies, the department's signature."""
        drafts = self.console.drafts
        draft = await drafts.load(self.row.ref, self.kind)
        if draft:
            area = self.query_one("#composer-body", TextArea)
            if not area.text:
                self.saved_text = draft
                area.load_text(draft)
                area.move_cursor(area.document.end)
            self.console.say("Your kept draft is back in the editor.")
        if self.kind == "reply":
            departments = await self.console.call(lambda desk: desk.departments(self.console.handle))
            for department in departments or []:
                if department.name == self.row.department and department.signature:
                    self.signature = department.signature
                    shown = Text("department signature:\n", style="dim")
                    shown.append_text(inert_block(department.signature, "dim"))
                    widget = self.query_one("#signature", Static)
                    widget.update(shown)
                    widget.display = True

    @property
    def body(self) -> str:
        return self.query_one("#composer-body", TextArea).text

    # -- autosave ---------------------------------------------------------------------

    def on_text_area_changed(self, _event: TextArea.Changed) -> None:
        """Debounce: save once the agent has paused for `autosave_seconds`."""
        if self._autosave_timer is not None:
            self._autosave_timer.stop()
        if not self.finished:
            self._autosave_timer = self.set_timer(self.console.autosave_seconds, self.autosave, name="autosave")

    def autosave(self) -> None:
        self.run_worker(self.save_now(), group="composer-autosave", exclusive=False, exit_on_error=False)

    async def save_now(self) -> None:
        """Store the text as the kept draft if it changed since the last save (an emptied editor keeps none)."""
        async with self._save_lock:
            body = self.body
            if self.finished or body == self.saved_text:
                return
            drafts = self.console.drafts
            if body.strip():
                stored = await drafts.save(self.row.ref, self.kind, body)
            else:
                await drafts.discard(self.row.ref, self.kind)
                stored = not self.console.last_call_failed
            if stored:
                self.saved_text = body
                self.autosaves += 1

    async def finish(self) -> None:
        """No autosave may run from now on: the text is being sent or discarded."""
        if self._autosave_timer is not None:
            self._autosave_timer.stop()
        async with self._save_lock:
            self.finished = True

    # -- canned responses -------------------------------------------------------------

    def action_canned(self) -> None:
        self.insert_canned()

    @work(exclusive=True, group="composer-canned")
    async def insert_canned(self) -> None:
        from tui.console.canned import CannedPicker

        handle, ref = self.console.handle, self.row.ref
        items = await self.console.call(lambda desk: desk.canned_for_ticket(handle, ref))
        if items is None:
            return
        chosen = await self.app.push_screen_wait(CannedPicker(self.row.department, items))
        area = self.query_one("#composer-body", TextArea)
        area.focus()
        if chosen is None:
            return
        text = await self.console.call(lambda desk: desk.render_canned(handle, ref, chosen))
        if text is not None:
            area.insert(text)

    # -- leaving ------------------------------------------------------------------------

    def action_review(self) -> None:
        self.review()

    @work(exclusive=True, group="composer-review")
    async def review(self) -> None:
        body = self.body
        choice = await self.app.push_screen_wait(ReviewScreen(self.row, self.kind, body, self.signature))
        drafts = self.console.drafts
        if choice == "edit":
            self.query_one("#composer-body", TextArea).focus()
        elif choice == "keep":
            await self.finish()
            if await drafts.save(self.row.ref, self.kind, body):
                self.console.say(f"Kept the draft for {self.row.ref}.")
                self.dismiss(False)
            else:
                self.finished = False
        elif choice == "discard":
            await self.finish()
            await drafts.discard(self.row.ref, self.kind)
            self.dismiss(False)
        elif choice == "send":
            if not body.strip():
                self.console.say("There is nothing to send; write something or discard.", "warning")
                return
            await self.finish()
            handle = self.console.handle
            if self.kind == "reply":
                sent = await self.console.call(lambda desk: desk.reply(handle, self.row.ref, body))
            else:
                sent = await self.console.call(lambda desk: desk.note(handle, self.row.ref, body))
            if sent is None:
                # Kept so nothing typed is lost when the send failed.
                await drafts.save(self.row.ref, self.kind, body)
                self.saved_text = body
                self.finished = False
                return
            await drafts.discard(self.row.ref, self.kind)
            self.console.say(f"{'Replied to' if self.kind == 'reply' else 'Noted on'} {self.row.ref}.")
            self.dismiss(True)


class ReviewScreen(ModalScreen[str]):
    """Answers send / edit / keep / discard."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "choose('send')", "Send", id="review.send"),
        Binding("e,escape", "choose('edit')", "Edit", id="review.edit"),
        Binding("p", "choose('keep')", "Keep as draft", id="review.keep"),
        Binding("d", "choose('discard')", "Discard", id="review.discard"),
    ]

    def __init__(self, row: TicketRow, kind: str, body: str, signature: str) -> None:
        super().__init__()
        self.row = row
        self.kind = kind
        self.body = body
        self.signature = signature

    def compose(self) -> ComposeResult:
        preview = Text(f"Review: {KIND_TITLE[self.kind]} on {self.row.ref}\n\n", style="bold")
        preview.append_text(inert_block(self.body or "(empty)"))
        if self.signature:
            preview.append("\n-- \n", style="dim")
            preview.append_text(inert_block(self.signature, "dim"))
        with Vertical(classes="prompt", id="review"):
            with VerticalScroll(id="review-body"):
                yield Static(preview)
            yield Static(Text("y send · e edit · p keep as draft · d discard", style="bold"))
        yield KeyBar()

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
