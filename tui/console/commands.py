"""The ctrl+p command palette: "verb: object" commands for the screen underneath, e.g. `queue: Billing`.

Department names are admin-typed text, so hits are drawn as `Text` here rather
than through `Matcher.highlight`, which parses its candidate as markup.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from rich.text import Text
from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.inert import inert_plain

Command = tuple[str, Callable[[], object], str]


class ConsoleCommands(Provider):
    def commands(self) -> list[Command]:
        from tui.console.queues import SORTS, STATUS_FILTERS, WHO_FILTERS, QueuesScreen
        from tui.console.ticket import TicketScreen

        screen = self.screen
        found: list[Command] = []
        if isinstance(screen, QueuesScreen):
            found.append(("queue: all departments", partial(screen.choose_department, 0), "Show every department"))
            for index, item in enumerate(screen.departments, start=1):
                found.append((f"queue: {inert_plain(item.department)}", partial(screen.choose_department, index),
                              "Show this department's queue"))
            for index, (name, _) in enumerate(STATUS_FILTERS):
                found.append((f"filter: status {name}", partial(self.set_filter, screen, "status_index", index),
                              "Show tickets of this status"))
            for index, name in enumerate(WHO_FILTERS):
                found.append((f"filter: {name}", partial(self.set_filter, screen, "who_index", index),
                              "Whose tickets to show"))
            for index, name in enumerate(SORTS):
                found.append((f"sort: {name}", partial(self.set_filter, screen, "sort_index", index),
                              "Order the queue"))
            found.append(("queue: reload", screen.action_reload, "Read the queue and counts again"))
        if isinstance(screen, (QueuesScreen, TicketScreen)):
            for verb, action in (
                ("reply", screen.action_reply), ("note", screen.action_note), ("take", screen.action_take),
                ("assign", screen.action_assign), ("unassign", screen.action_unassign),
                ("transfer", screen.action_transfer), ("resolve", screen.action_resolve),
                ("reopen", screen.action_reopen), ("status", screen.action_status),
                ("priority", screen.action_priority), ("tags", screen.action_tags), ("mark spam", screen.action_spam),
            ):
                found.append((f"ticket: {verb}", action, "Act on the ticket (or the marked tickets)"))
        found.append(("app: dashboard", self.app.action_dashboard, "Today's load of your departments (supervisors)"))  # type: ignore[attr-defined]
        found.append(("app: reports", self.app.action_reports, "Metrics and charts for a period, CSV export"))  # type: ignore[attr-defined]
        found.append(("app: help", self.app.action_help, "Show every key"))  # type: ignore[attr-defined]
        found.append(("app: quit", self.app.exit, "Leave the console"))
        return found

    @staticmethod
    def set_filter(screen: object, field: str, index: int) -> None:
        setattr(screen, field, index)
        screen.load_queue()  # type: ignore[attr-defined]
        screen.show_status()  # type: ignore[attr-defined]

    async def discover(self) -> Hits:
        for name, callback, help_text in self.commands():
            yield DiscoveryHit(Text(name), callback, text=name, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, callback, help_text in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, self.highlight(matcher, name), callback, text=name, help=help_text)

    @staticmethod
    def highlight(matcher: object, name: str) -> Text:
        text = Text(name)
        score, offsets = matcher.fuzzy_search.match(matcher.query, name)  # type: ignore[attr-defined]
        if score:
            for offset in offsets:
                text.stylize("bold underline", offset, offset + 1)
        return text
