"""Ticket actions by key, shared by the queue (on the marked tickets, or the one under the cursor) and the ticket.

Each action asks what it needs in a small prompt, then calls `Desk` once per
ticket in a worker, naming the version the agent saw so a change someone else
made meanwhile is reported instead of overwritten.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from textual import work
from textual.binding import Binding

from core.desk import Desk
from core.views import TicketRow

if TYPE_CHECKING:
    from tui.console.app import ConsoleApp

STATUSES = ("new", "open", "pending", "resolved", "closed")
PRIORITIES = ("low", "normal", "high", "urgent")


def parse_tag_changes(text: str) -> tuple[list[str], list[str]]:
    """`billing -vip +urgent` → (add [billing, urgent], remove [vip])."""
    add: list[str] = []
    remove: list[str] = []
    for word in text.replace(",", " ").split():
        if word.startswith("-") and len(word) > 1:
            remove.append(word[1:])
        elif word.startswith("+") and len(word) > 1:
            add.append(word[1:])
        elif word not in ("+", "-"):
            add.append(word)
    return add, remove


class TicketActions:
    """Mixin for screens with `targets()` (tickets to act on) and `after_action(changed rows)`."""

    ACTION_BINDINGS: ClassVar[list[Binding]] = [
        Binding("r", "reply", "Reply", id="ticket.reply"),
        Binding("c", "note", "Note", id="ticket.note"),
        Binding("m", "transfer", "Transfer", id="ticket.transfer"),
        Binding("a", "assign", "Assign", id="ticket.assign"),
        Binding("A", "unassign", "Unassign", show=False, id="ticket.unassign"),
        Binding("i", "take", "Take", id="ticket.take"),
        Binding("s", "status", "Status", show=False, id="ticket.status"),
        Binding("x", "resolve", "Resolve", id="ticket.resolve"),
        Binding("X", "reopen", "Reopen", show=False, id="ticket.reopen"),
        Binding("p", "priority", "Priority", show=False, id="ticket.priority"),
        Binding("t", "tags", "Tags", show=False, id="ticket.tags"),
        Binding("exclamation_mark", "spam", "Spam", show=False, id="ticket.spam"),
    ]

    app: ConsoleApp  # type: ignore[assignment]

    def targets(self) -> list[TicketRow]:
        raise NotImplementedError

    def after_action(self, changed: list[TicketRow]) -> None:
        raise NotImplementedError

    # -- running a change on every target ------------------------------------------------

    def change(self, verb: str, call: Callable[[Desk, TicketRow], Awaitable[TicketRow]]) -> None:
        targets = self.targets()
        if targets:
            self.run_change(verb, targets, call)

    @work(group="ticket-actions")
    async def run_change(
        self, verb: str, targets: list[TicketRow], call: Callable[[Desk, TicketRow], Awaitable[TicketRow]]
    ) -> None:
        changed: list[TicketRow] = []
        for row in targets:
            result = await self.app.call(lambda desk, row=row: call(desk, row))  # type: ignore[misc]
            if result is not None:
                changed.append(result)
        if changed:
            what = changed[0].ref if len(changed) == 1 else f"{len(changed)} tickets"
            self.app.say(f"{verb} {what}.")
        self.after_action(changed)

    # -- composing -----------------------------------------------------------------------

    def action_reply(self) -> None:
        self.compose_entry("reply")

    def action_note(self) -> None:
        self.compose_entry("note")

    def compose_entry(self, kind: str) -> None:
        from tui.console.composer import ComposerScreen

        targets = self.targets()
        if len(targets) != 1:
            self.app.say("Reply to one ticket at a time; clear the marks first.", "warning")
            return
        self.app.push_screen(ComposerScreen(targets[0], kind), lambda _: self.after_action([]))

    # -- changes -------------------------------------------------------------------------

    def action_take(self) -> None:
        me = self.app.handle
        self.change("Took", lambda desk, row: desk.assign(me, row.ref, me, expected_version=row.version))

    def action_unassign(self) -> None:
        me = self.app.handle
        self.change("Unassigned", lambda desk, row: desk.assign(me, row.ref, None, expected_version=row.version))

    def action_assign(self) -> None:
        self.pick_assignee()

    @work(group="ticket-prompts")
    async def pick_assignee(self) -> None:
        from tui.console.prompts import ChoiceScreen

        targets = self.targets()
        if not targets:
            return
        departments = {row.department for row in targets}
        agents = await self.app.call(lambda desk: desk.agents(self.app.handle))
        if agents is None:
            return
        members = [
            agent.handle for agent in agents
            if agent.active and departments.issubset(set(agent.departments))
        ]
        if not members:
            self.app.say("No agent belongs to every department of these tickets.", "warning")
            return
        me = self.app.handle
        members.sort(key=lambda handle: (handle != me, handle))
        handle = await self.app.push_screen_wait(ChoiceScreen("Assign to", members))
        if handle:
            self.change(f"Assigned to {handle}:", lambda desk, row: desk.assign(
                me, row.ref, handle, expected_version=row.version))

    def action_status(self) -> None:
        self.pick_status()

    @work(group="ticket-prompts")
    async def pick_status(self) -> None:
        from tui.console.prompts import ChoiceScreen

        status = await self.app.push_screen_wait(ChoiceScreen("Set status", list(STATUSES)))
        if status:
            self.set_status(status)

    def set_status(self, status: str) -> None:
        me = self.app.handle
        self.change(f"Set {status}:", lambda desk, row: desk.set_status(
            me, row.ref, status, expected_version=row.version))

    def action_resolve(self) -> None:
        self.set_status("resolved")

    def action_reopen(self) -> None:
        self.set_status("open")

    def action_spam(self) -> None:
        self.confirm_spam()

    @work(group="ticket-prompts")
    async def confirm_spam(self) -> None:
        from tui.console.prompts import ConfirmScreen

        count = len(self.targets())
        if count and await self.app.push_screen_wait(ConfirmScreen(f"Mark {count} ticket(s) as spam?")):
            self.set_status("spam")

    def action_priority(self) -> None:
        self.pick_priority()

    @work(group="ticket-prompts")
    async def pick_priority(self) -> None:
        from tui.console.prompts import ChoiceScreen

        level = await self.app.push_screen_wait(ChoiceScreen("Set priority", list(PRIORITIES)))
        if level:
            me = self.app.handle
            self.change(f"Priority {level}:", lambda desk, row: desk.set_priority(
                me, row.ref, level, expected_version=row.version))

    def action_tags(self) -> None:
        self.edit_tags()

    @work(group="ticket-prompts")
    async def edit_tags(self) -> None:
        from tui.console.prompts import TextPrompt

        text = await self.app.push_screen_wait(TextPrompt("Tags: word adds, -word removes", ""))
        if text:
            add, remove = parse_tag_changes(text)
            me = self.app.handle
            self.change("Tagged", lambda desk, row: desk.tag(
                me, row.ref, add, remove, expected_version=row.version))

    def action_transfer(self) -> None:
        self.pick_transfer()

    @work(group="ticket-prompts")
    async def pick_transfer(self) -> None:
        from tui.console.prompts import ChoiceScreen, TextPrompt

        targets = self.targets()
        if not targets:
            return
        departments = await self.app.call(lambda desk: desk.departments(self.app.handle))
        if departments is None:
            return
        current = {row.department for row in targets}
        names = [item.name for item in departments if item.name not in current or len(current) > 1]
        target = await self.app.push_screen_wait(ChoiceScreen("Transfer to", names))
        if not target:
            return
        note = await self.app.push_screen_wait(TextPrompt(f"Note for {target} (optional)", ""))
        if note is None:
            return
        me = self.app.handle
        self.change(f"Transferred to {target}:", lambda desk, row: desk.transfer(
            me, row.ref, target, note.strip() or None, expected_version=row.version))
