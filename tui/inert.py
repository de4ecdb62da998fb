"""The one way the console shows untrusted text: a Rich `Text` holding the characters literally, never markup.

Subjects, bodies, names, addresses and filenames come from strangers. Textual
parses markup in plain `str` content (`[@click=app.quit]` is an action link)
and neither Textual nor Rich strips ESC, so every such string reaches a widget
through `inert()` (one line) or `inert_block()` (a body). Both make control
characters visible exactly as the CLI does (`tui.plain`: ESC as `^[`, C1 and
bidi overrides as `<U+XXXX>`) and wrap the result in a `Text`, which no widget
parses for markup.
"""

from __future__ import annotations

from rich.text import Text

from tui.plain import truncate, visible, visible_block


def inert(text: str | None, style: str = "", *, limit: int | None = None) -> Text:
    """One line of untrusted text, controls made visible, optionally cut to `limit` columns."""
    shown = visible(text or "")
    if limit is not None:
        shown = truncate(shown, limit)
    return Text(shown, style=style, no_wrap=True, end="")


def inert_block(text: str | None, style: str = "") -> Text:
    """Untrusted multi-line text (a message body): line breaks kept, every other control made visible."""
    return Text(visible_block(text or "").expandtabs(4), style=style, end="")


def inert_plain(text: str | None) -> str:
    """The visible characters only, for places that need a `str` and never parse markup (search, titles)."""
    return visible(text or "")
