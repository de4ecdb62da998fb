"""The composer: write a reply or an internal note, see the department's signature, then review before sending.

Leaving the editor (ctrl+s or escape) always goes through the review step,
as in aerc: `y` sends, `e` edits again, `p` keeps it as a draft, `d` discards
it. A kept draft is stored by the desk for this agent and ticket, so it
survives a restart of the console and another agent's change to the ticket.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
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
    ]

    def __init__(self, row: TicketRow, kind: str) -> None:
        super().__init__()
        self.row = row
        self.kind = kind
        self.signature = ""
        self.presence = PresenceBeat(self, row.ref, "replying", "composer-presence")

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
            if await drafts.save(self.row.ref, self.kind, body):
                self.console.say(f"Kept the draft for {self.row.ref}.")
                self.dismiss(False)
        elif choice == "discard":
            await drafts.discard(self.row.ref, self.kind)
            self.dismiss(False)
        elif choice == "send":
            if not body.strip():
                self.console.say("There is nothing to send; write something or discard.", "warning")
                return
            handle = self.console.handle
            if self.kind == "reply":
                sent = await self.console.call(lambda desk: desk.reply(handle, self.row.ref, body))
            else:
                sent = await self.console.call(lambda desk: desk.note(handle, self.row.ref, body))
            if sent is None:
                # Kept so nothing typed is lost when the send failed.
                await drafts.save(self.row.ref, self.kind, body)
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
