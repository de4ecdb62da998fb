"""PostgreSQL's change signal: the channel migration 0008's trigger notifies on, and a connection listening to it.

The listener is a plain asyncpg connection outside SQLAlchemy's pool: it is
held for as long as a console runs, and a pooled connection would be
recycled or pre-pinged from under its LISTEN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import make_url

from storage.database import Database

CHANNEL = "termdesk_events"


class Listener:
    """One connection that calls `on_notify` for each notification on CHANNEL and `on_lost` when it drops."""

    def __init__(self, connection: Any) -> None:
        self._connection = connection

    @classmethod
    async def connect(cls, db: Database, on_notify: Callable[[], None], on_lost: Callable[[], None]) -> Listener:
        import asyncpg

        dsn = make_url(db.url).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn, timeout=10)
        try:
            connection.add_termination_listener(lambda _connection: on_lost())
            await connection.add_listener(CHANNEL, lambda *_args: on_notify())
        except BaseException:
            connection.terminate()
            raise
        return cls(connection)

    @property
    def backend_pid(self) -> int:
        return int(self._connection.get_server_pid())

    @property
    def alive(self) -> bool:
        return not self._connection.is_closed()

    async def latest_event_id(self) -> int:
        """The newest event id, read on the listening connection itself (so it doubles as a health check)."""
        value = await self._connection.fetchval("SELECT coalesce(max(id), 0) FROM events", timeout=10)
        return int(value)

    def terminate(self) -> None:
        """Drop the connection at once, without awaiting anything (safe while being cancelled)."""
        if not self._connection.is_closed():
            self._connection.terminate()

    async def close(self) -> None:
        if self._connection.is_closed():
            return
        try:
            await self._connection.close(timeout=2)
        except Exception:  # a connection already half gone: drop it without the goodbye
            self._connection.terminate()
