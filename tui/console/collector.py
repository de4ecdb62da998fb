"""When Python's cyclic garbage collector may pause the console.

Once the console is up, the objects it holds for good (modules, classes,
SQLAlchemy's compiled statements, Textual's widgets and styles: some hundred
thousand) would be scanned by every full collection. On a 20,000-ticket desk
those ran about every 1–2 seconds of keys and took ~110 ms each (max ~210 ms),
which was most of the slow tail of "open ticket" and "back" in bench/tui.py.
`settle()` moves them to the permanent generation (`gc.freeze`) once, after
the first queue page is on screen, so later full collections scan only what
was made since. Objects frozen that later become cyclic garbage are not freed;
they are startup objects, made once per process.
"""

from __future__ import annotations

import gc

_settled = False
THRESHOLDS = (10_000, 10, 10)


def settle() -> None:
    """Freeze everything alive now out of the collector's sight; once per process."""
    global _settled
    if _settled:
        return
    _settled = True
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
