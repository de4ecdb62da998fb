"""Helpers for driving the agent console with Textual's Pilot: read the screen, wait for a condition, type."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rich.segment import Segment
from textual.pilot import Pilot

from tui.console.app import ConsoleApp

DEADLINE = 60.0  # generous: a loaded 2-core CI machine is slow, and the condition usually holds in milliseconds

KEY_NAMES = {" ": "space", ".": "full_stop", ",": "comma", "-": "minus", "'": "apostrophe", "!": "exclamation_mark"}


def segments(app: ConsoleApp) -> list[Segment]:
    """Every segment the current screen renders (what would be written to the terminal, before escape codes)."""
    return [segment for strip in app.screen._compositor.render_strips() for segment in strip]


def screen_text(app: ConsoleApp) -> str:
    return "\n".join("".join(segment.text for segment in strip) for strip in app.screen._compositor.render_strips())


async def wait_for(pilot: Pilot[Any], condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Poll `condition` between frames until it holds; fail naming `what` and showing the screen."""
    ends = time.monotonic() + deadline
    while True:
        try:
            if condition():
                return
        except Exception:  # a widget not mounted yet reads as "not yet"
            pass
        if time.monotonic() > ends:
            raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{screen_text(pilot.app)}")
        await pilot.pause(0.05)


async def type_text(pilot: Pilot[Any], text: str) -> None:
    await pilot.press(*[KEY_NAMES.get(char, char) for char in text])


def queue_screen(app: ConsoleApp) -> Any:
    from tui.console.queues import QueuesScreen

    return next(screen for screen in app.screen_stack if isinstance(screen, QueuesScreen))


async def wait_for_queue(pilot: Pilot[Any]) -> Any:
    from tui.console.queues import QueuesScreen

    await wait_for(pilot, lambda: isinstance(pilot.app.screen, QueuesScreen) and pilot.app.screen.loaded, "the queue")
    return pilot.app.screen


async def cursor_to(pilot: Pilot[Any], ref: str) -> None:
    """Move the queue cursor with j/k onto the row of `ref`."""
    screen = queue_screen(pilot.app)
    await wait_for(pilot, lambda: any(row.ref == ref for row in screen.rows), f"{ref} in the queue")
    for _ in range(len(screen.rows) + 1):
        current = screen.current_row()
        if current is not None and current.ref == ref:
            return
        await pilot.press("j")
    raise AssertionError(f"could not put the cursor on {ref}")


async def open_ticket(pilot: Pilot[Any], ref: str) -> Any:
    from tui.console.ticket import TicketScreen

    await cursor_to(pilot, ref)
    await pilot.press("enter")
    await wait_for(
        pilot,
        lambda: isinstance(pilot.app.screen, TicketScreen) and pilot.app.screen.detail is not None,
        f"the ticket screen of {ref}",
    )
    return pilot.app.screen


async def choose(pilot: Pilot[Any], value: str) -> None:
    """Pick `value` in the open ChoiceScreen with j and enter."""
    from tui.console.prompts import ChoiceScreen

    await wait_for(pilot, lambda: isinstance(pilot.app.screen, ChoiceScreen), f"a choice including {value}")
    screen = pilot.app.screen
    assert value in screen.choices, f"{value!r} is not offered; the choices are {screen.choices}"
    from textual.widgets import OptionList

    options = screen.query_one(OptionList)
    for _ in range(len(screen.choices)):
        if options.highlighted is not None and screen.choices[options.highlighted] == value:
            break
        await pilot.press("j")
    await pilot.press("enter")
