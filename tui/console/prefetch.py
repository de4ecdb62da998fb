"""Ticket details read ahead of `enter`: the ticket under the queue's cursor, once the cursor rests.

Opening a ticket from memory skips the read (~10–15 ms on a 20,000-ticket desk)
and the worker hop before the ticket screen can be shown (bench/tui.py). An
entry is dropped when the live feed reports a change to its ticket, when the
agent acts on tickets from the queue, when the agent comes back from the
ticket (they may have changed it), and after `MAX_AGE` seconds (what the feed
does not announce, e.g. a contact's other tickets in other departments, is at
most that old). A read that started before an invalidation is not stored.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable

from core.views import TicketDetail

# The cursor must rest this long on a row before its ticket is read: moving with j/k reads nothing.
REST_SECONDS = 0.1
MAX_AGE = 10.0
KEEP = 8


class Prefetched:
    """A small LRU of ticket details by ref, with an epoch so a read overtaken by a change is discarded."""

    def __init__(self, keep: int = KEEP, max_age: float = MAX_AGE) -> None:
        self.keep = keep
        self.max_age = max_age
        self.epoch = 0
        self._details: OrderedDict[str, tuple[float, TicketDetail]] = OrderedDict()

    def get(self, ref: str) -> TicketDetail | None:
        found = self._details.get(ref)
        if found is None:
            return None
        at, detail = found
        if time.monotonic() - at > self.max_age:
            del self._details[ref]
            return None
        self._details.move_to_end(ref)
        return detail

    def put(self, ref: str, detail: TicketDetail, epoch: int) -> None:
        """Keep `detail` if nothing was invalidated since `epoch` (taken before the read began)."""
        if epoch != self.epoch:
            return
        self._details[ref] = (time.monotonic(), detail)
        self._details.move_to_end(ref)
        while len(self._details) > self.keep:
            self._details.popitem(last=False)

    def drop(self, refs: Iterable[str]) -> None:
        refs = list(refs)
        if refs:  # feed events without a ticket change no ticket: reads under way stay good
            self.epoch += 1
        for ref in refs:
            self._details.pop(ref, None)

    def clear(self) -> None:
        self.epoch += 1
        self._details.clear()
