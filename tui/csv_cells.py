"""CSV cells a spreadsheet will not run: the formula-injection guard shared by `termdesk report --csv` and the console.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is run
as a formula by spreadsheets (CSV injection). Group names (departments, tags,
handles) are typed by people, so they are written with controls made visible
and a leading apostrophe when they would start a formula. Numbers and bucket
dates come from the desk and are written as they are. A list of tags is one
cell: each name guarded alike, joined by TAG_SEPARATOR.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tui.plain import visible

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# A comma, as the console and the CLI list tags: the desk refuses commas in a tag (core.tickets.normalise_tag).
TAG_SEPARATOR = ","
# How a comma inside a name written around the desk shows, in the <U+XXXX> notation of tui.plain.visible.
_SEPARATOR_SHOWN = "<U+002C>"


def safe_label(text: str) -> str:
    """A group name (department, tag, handle: typed by people) as inert CSV text."""
    shown = visible(text)
    return "'" + shown if shown.startswith(FORMULA_START) else shown


def safe_tags(names: Iterable[str]) -> str:
    """Tag names as one inert CSV cell: each name as `safe_label`, in the given order, joined by
    TAG_SEPARATOR, and a comma inside a name shown as <U+002C>, so splitting the cell on commas gives
    back exactly one entry per tag."""
    return TAG_SEPARATOR.join(safe_label(name).replace(TAG_SEPARATOR, _SEPARATOR_SHOWN) for name in names)


def guarded_rows(rows: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """`core.reports.metrics.iter_csv_rows` output (header first, then bucket, group, values) made safe."""
    for number, row in enumerate(rows):
        yield list(row) if number == 0 else [row[0], safe_label(str(row[1])), *row[2:]]
