"""Untrusted text made safe for a terminal: control characters made visible, display widths, aligned tables, JSON.

Subjects, bodies, names and addresses come from strangers' email. Printed raw,
an ESC or a C1 CSI could move the cursor, recolour the screen or rewrite what
an agent believes they read, and bidi overrides could reorder it. Everything
the CLI prints from the database passes through here first.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

# Characters that steer a terminal or reorder text, mapped to a visible form:
# C0 controls in caret notation (ESC -> ^[, as `cat -v` shows them), DEL as
# ^?, and C1 controls, bidi embeddings/overrides/isolates and the Unicode
# line/paragraph separators as <U+XXXX>.
_UNSAFE: dict[int, str] = {code: "^" + chr(code + 0x40) for code in range(0x20)}
_UNSAFE[0x7F] = "^?"
for _code in [*range(0x80, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x2028, 0x2029]:
    _UNSAFE[_code] = f"<U+{_code:04X}>"

# Inside a multi-line body, newlines and tabs are layout, not attacks.
_BLOCK = {**_UNSAFE, ord("\n"): "\n", ord("\t"): "\t"}
# Inside a table cell a tab would break the alignment; show it as a space.
_CELL = {**_UNSAFE, ord("\t"): " "}

_SURROGATE = re.compile("[\ud800-\udfff]")
# For JSON: the same characters as \uXXXX escapes. json.dumps already escapes
# C0 controls; C1, bidi and separators survive `ensure_ascii=False`.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """One line of untrusted text with every control character replaced by a visible mark."""
    return _SURROGATE.sub("\ufffd", text).translate(_CELL)


def visible_block(text: str) -> str:
    """Untrusted multi-line text (a message body): line breaks kept, everything else made visible."""
    # A lone carriage return would let a line overwrite itself; CRLF is just a line end.
    return _SURROGATE.sub("\ufffd", text.replace("\r\n", "\n")).translate(_BLOCK)


def display_width(text: str) -> int:
    """Terminal columns `text` takes: combining marks take none, wide (CJK) characters two."""
    width = 0
    for char in text:
        if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Me", "Cf"):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` columns, with an ellipsis when something was cut."""
    if display_width(text) <= limit:
        return text
    kept: list[str] = []
    used = 0
    for char in text:
        size = display_width(char)
        if used + size > limit - 1:
            break
        kept.append(char)
        used += size
    return "".join(kept) + "…"


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    max_widths: Mapping[int, int] | None = None,
    show_headers: bool = True,
) -> str:
    """Rows of untrusted cells as left-aligned columns; `max_widths` caps columns by index."""
    limits = max_widths or {}
    cells = [
        [truncate(visible(cell), limits[index]) if index in limits else visible(cell) for index, cell in enumerate(row)]
        for row in rows
    ]
    widths = [display_width(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], display_width(cell))

    def line(values: Sequence[str]) -> str:
        padded = [value + " " * (widths[index] - display_width(value)) for index, value in enumerate(values)]
        return "  ".join(padded).rstrip()

    lines = [line(row) for row in cells]
    return "\n".join([line(headers), *lines] if show_headers else lines)


def json_text(data: Any, *, indent: int | None = 2) -> str:
    """JSON for scripts that stays harmless when a person views it in a terminal; indent=None for one line."""
    text = json.dumps(data, ensure_ascii=False, indent=indent)
    text = _SURROGATE.sub("\ufffd", text)
    return _JSON_UNSAFE.sub(lambda match: f"\\u{ord(match.group()):04x}", text)
