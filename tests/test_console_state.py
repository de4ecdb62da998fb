"""Kept drafts and presence through `Desk`: per agent, only on tickets the agent may see, presence forgotten."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import update

from core import Desk
from core.drafts import PRESENCE_TTL
from core.errors import BadArgument, NotFound
from storage.console import Presence
from storage.types import utcnow
from tests.desk_fixtures import World, build_world


@pytest.fixture
async def world(desk: Desk) -> World:
    return await build_world(desk)


async def test_drafts_are_per_agent_ticket_and_kind(desk: Desk, world: World) -> None:
    ref = world.ref("billing")
    await desk.save_draft("bill", ref, "reply", "first")
    await desk.save_draft("bill", ref, "reply", "second")
    await desk.save_draft("bill", ref, "note", "a note")
    assert await desk.draft("bill", ref, "reply") == "second"
    assert await desk.draft("bill", ref, "note") == "a note"
    assert await desk.draft("sup", ref, "reply") is None
    await desk.discard_draft("bill", ref, "reply")
    assert await desk.draft("bill", ref, "reply") is None
    with pytest.raises(BadArgument):
        await desk.save_draft("bill", ref, "letter", "x")


async def test_no_draft_or_presence_on_a_ticket_of_another_department(desk: Desk, world: World) -> None:
    ref = world.ref("technical")
    with pytest.raises(NotFound):
        await desk.save_draft("bill", ref, "reply", "x")
    with pytest.raises(NotFound):
        await desk.draft("bill", ref, "reply")
    with pytest.raises(NotFound):
        await desk.heartbeat("bill", ref, "viewing")


async def test_presence_names_the_others_and_forgets_the_silent(desk: Desk, world: World) -> None:
    ref = world.ref("billing")
    assert await desk.heartbeat("bill", ref, "viewing") == []
    others = await desk.heartbeat("sup", ref, "replying")
    assert [(other.handle, other.activity) for other in others] == [("bill", "viewing")]
    others = await desk.heartbeat("bill", ref, "viewing")
    assert [(other.handle, other.activity) for other in others] == [("sup", "replying")]
    async with desk.db.writing() as session:  # sup's console went silent long ago
        await session.execute(update(Presence).values(seen_at=utcnow() - PRESENCE_TTL - timedelta(seconds=1)))
    assert await desk.heartbeat("bill", ref, "viewing") == []
    await desk.heartbeat("sup", ref, "viewing")
    await desk.heartbeat("sup", ref, None)  # left
    assert await desk.heartbeat("bill", ref, "viewing") == []
