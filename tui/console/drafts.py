"""The composer's kept drafts, stored by the desk per agent, ticket and kind (reply / note)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.console.app import ConsoleApp


class KeptDrafts:
    def __init__(self, app: ConsoleApp) -> None:
        self.app = app

    async def load(self, ref: str, kind: str) -> str | None:
        return await self.app.call(lambda desk: desk.draft(self.app.handle, ref, kind))

    async def save(self, ref: str, kind: str, body: str) -> bool:
        """True when stored; a failure was already told to the agent."""
        done = await self.app.call(lambda desk: desk.save_draft(self.app.handle, ref, kind, body))
        return done is None and not self.app.last_call_failed

    async def discard(self, ref: str, kind: str) -> None:
        await self.app.call(lambda desk: desk.discard_draft(self.app.handle, ref, kind))
