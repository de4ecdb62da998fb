"""Untrusted text in the console is inert: markup shown literally, controls visible, bidi overrides neutralised.

The corpus goes into subjects, bodies, contact names and tags; the rendered
segments of the queue and ticket screens are then checked character by
character and style by style (no click actions, no links).
"""

from __future__ import annotations

import pytest
from rich.text import Text

from core import Desk
from core.policy import Actor
from core.views import Intake
from tests.console_pilot import open_ticket, screen_text, segments, wait_for, wait_for_queue
from tests.desk_fixtures import add_agents, add_departments
from tui.console.app import ConsoleApp
from tui.inert import inert, inert_block

CORPUS = [
    "[@click=app.quit]x[/]",
    "[bold red]loud[/bold red]",
    "[link=https://evil.example]pay here[/link]",
    "\x1b]52;c;ZXZpbA==\x07clipboard",
    "\x1b[2J\x1b[31mred\x1b[0m",
    "\x9b31mC1 CSI",
    "invoice\u202egnp.exe",
    "\u2066isolate\u2069 \u200fmark",
    "bell\x07 backspace\x08 nul\x00 del\x7f",
]
FORBIDDEN = {chr(code) for code in [*range(0x00, 0x20), *range(0x7F, 0xA0)]} - {"\n"} | {
    *map(chr, range(0x202A, 0x202F)), *map(chr, range(0x2066, 0x206A)),
}


@pytest.mark.parametrize("text", CORPUS)
def test_inert_keeps_markup_literal_and_makes_controls_visible(text: str) -> None:
    for rendered in (inert(text), inert_block(text)):
        assert isinstance(rendered, Text)
        assert not rendered.spans, "no style may come from the text itself"
        assert not FORBIDDEN & set(rendered.plain)
    assert inert("[@click=app.quit]x[/]").plain == "[@click=app.quit]x[/]"
    assert inert("\x1b[31m").plain == "^[[31m"


def assert_inert_screen(app: ConsoleApp) -> None:
    for segment in segments(app):
        assert not FORBIDDEN & set(segment.text), f"a control character reached the screen: {segment.text!r}"
        style = segment.style
        if style is not None:
            assert "@click" not in (style.meta or {}), f"a click action came from text: {segment!r}"
            assert not style.link, f"a link came from text: {segment!r}"


@pytest.mark.slow
async def test_the_injection_corpus_renders_inert_in_queue_and_ticket(desk: Desk) -> None:
    await add_departments(desk, ("Billing",))
    await add_agents(desk, {"bill": ("agent", ("Billing",))})
    refs = []
    for index, text in enumerate(CORPUS):
        row = await desk.create_ticket(
            Actor.system(),
            Intake(department="Billing", contact_email=f"c{index}@example.org", contact_name=text,
                   subject=text, body=f"Body: {text}\nline two"),
        )
        refs.append(row.ref)
    await desk.tag("bill", refs[0], ["[@click=app.quit]t"])

    app = ConsoleApp(desk, "bill", live=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await wait_for_queue(pilot)
        await wait_for(pilot, lambda: "[@click=app.quit]x[/]" in screen_text(app), "the rows drawn")
        assert_inert_screen(app)
        text = screen_text(app)
        assert "[@click=app.quit]x[/]" in text
        assert "[bold red]loud[/bold red]" in text
        assert "^[[2J^[[31mred^[[0m" in text
        assert "<U+202E>" in text
        for ref in refs:
            await pilot.press("g")
            ticket = await open_ticket(pilot, ref)
            await wait_for(
                pilot, lambda ref=ref: "Body: " in screen_text(app) and ref in screen_text(app), "the thread drawn"
            )
            assert_inert_screen(app)
            await pilot.click("#thread-text")  # clicking the text must not run anything
            assert app.is_running
            await pilot.press("escape")
            await wait_for(pilot, lambda ticket=ticket: app.screen is not ticket, "back on the queue")
        assert app.is_running
