"""CSV cells a spreadsheet will not run: the formula-injection guard shared by `termdesk report --csv` and the console.

A cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is run
as a formula by spreadsheets (CSV injection). Group names (departments, tags,
handles) are typed by people, so they are written with controls made visible
and a leading apostrophe when they would start a formula. Numbers and bucket
dates come from the desk and are written as they are.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from tui.plain import visible

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_label(text: str) -> str:
    """A group name (department, tag, handle: typed by people) as inert CSV text."""
    shown = visible(text)
    return "'" + shown if shown.startswith(FORMULA_START) else shown


def guarded_rows(rows: Iterable[list[Any]]) -> Iterator[list[Any]]:
    """`core.reports.metrics.iter_csv_rows` output (header first, then bucket, group, values) made safe."""
    for number, row in enumerate(rows):
        yield list(row) if number == 0 else [row[0], safe_label(str(row[1])), *row[2:]]
