"""`DeskFeed`: "something may have changed on the desk", as soon as the database can tell.

On PostgreSQL one connection LISTENs on the channel that migration 0008's
trigger notifies for every statement that inserts events, wherever it comes
from (a console, the CLI, the mail sync, the rules). If that connection drops
it is reopened with backoff, and a slow check of the newest event id on it
catches anything a lost notification would hide. On SQLite, which has no
notifications, the newest event id is polled at the interval given.

The feed yields True for "may have changed: read the events" and False for
"checked, nothing new" (so a screen can say how fresh it is). It never says
what changed: the reader asks `Desk.events_since` for what its agent may see.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable

from storage.database import Database
from storage.errors import StorageError
from storage.notify import Listener

log = logging.getLogger("termdesk.feed")

FIRST_BACKOFF_SECONDS = 0.2
MAX_BACKOFF_SECONDS = 5.0


class DeskFeed:
    def __init__(
        self,
        db: Database,
        latest_event_id: Callable[[], Awaitable[int]],
        *,
        poll_seconds: float,
        safety_seconds: float,
    ) -> None:
        self.db = db
        self._latest = latest_event_id
        self.poll_seconds = poll_seconds
        self.safety_seconds = safety_seconds
        # PostgreSQL: whether the listening connection is up now, and how many times it was reopened.
        self.listening = False
        self.reconnects = 0
        self.backend_pid: int | None = None

    def changes(self) -> AsyncGenerator[bool, None]:
        if self.db.is_sqlite:
            return self._polled()
        return self._notified()

    async def _polled(self) -> AsyncGenerator[bool, None]:
        last: int | None = None
        while True:
            try:
                newest = await self._latest()
            except StorageError as error:
                log.info("the live feed could not read the desk: %s", error.message)
            else:
                # The first look says "changed": whatever happened before the feed started is read then.
                changed = last is None or newest != last
                last = newest
                yield changed
            await asyncio.sleep(self.poll_seconds)

    async def _notified(self) -> AsyncGenerator[bool, None]:
        wake = asyncio.Event()
        listener: Listener | None = None
        backoff = FIRST_BACKOFF_SECONDS
        last: int | None = None
        checked = time.monotonic()
        try:
            while True:
                if listener is None or not listener.alive:
                    self.listening = False
                    if listener is not None:
                        await listener.close()
                        listener = None
                    try:
                        listener = await Listener.connect(self.db, wake.set, wake.set)
                        last = await listener.latest_event_id()
                    except Exception as error:  # noqa: BLE001 - any failure to connect means: wait and retry
                        log.info("the live feed cannot listen (retrying in %.1f s): %s", backoff, error)
                        if listener is not None:
                            await listener.close()
                            listener = None
                        await asyncio.sleep(backoff)
                        backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                        continue
                    self.listening = True
                    self.backend_pid = listener.backend_pid
                    backoff = FIRST_BACKOFF_SECONDS
                    wake.clear()
                    checked = time.monotonic()
                    # Whatever happened while nobody listened (or before the first LISTEN) is read now.
                    yield True
                    continue
                try:
                    await asyncio.wait_for(wake.wait(), timeout=min(self.poll_seconds, self.safety_seconds))
                except TimeoutError:
                    pass
                if not listener.alive:
                    self.reconnects += 1
                    continue
                if wake.is_set():
                    wake.clear()
                    last = None  # the next safety check takes the newest id as it then is
                    yield True
                    continue
                if time.monotonic() - checked >= self.safety_seconds:
                    checked = time.monotonic()
                    try:
                        newest = await listener.latest_event_id()
                    except Exception as error:  # noqa: BLE001 - a dead connection: reopen it
                        log.info("the live feed lost its connection: %s", error)
                        await listener.close()
                        self.reconnects += 1
                        continue
                    changed = last is not None and newest != last
                    last = newest
                    if changed:
                        log.info("the live feed caught a change no notification announced")
                    yield changed
                    continue
                yield False
        finally:
            # Usually reached by cancellation (the console quitting): nothing here may await.
            self.listening = False
            if listener is not None:
                listener.terminate()
