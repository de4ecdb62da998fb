"""SVG snapshots of the dashboard and reports screens at 80x24 and 160x48 (pytest-textual-snapshot).

The desk is the console snapshots' fixed desk (tests/test_console_snapshots.py:
every timestamp a fixed moment before a fixed clock) with one ticket resolved
at a fixed time, seen by the Billing supervisor, so "updated … ago", waits and
today's hours never move. Update after a deliberate change with `pytest --snapshot-update`.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from core import Desk
from storage.database import Database
from storage.models import Ticket
from tests.console_pilot import wait_for
from tests.test_console_snapshots import NOW, SIZES, _build
from tui.console.dashboard import DashboardScreen, dashboard_app
from tui.console.reports import ReportsScreen


async def _build_with_a_resolution(url: str) -> None:
    await _build(url)
    desk = Desk(Database(url))
    try:
        await desk.set_status("sup", "TD-2", "resolved")
        async with desk.db.writing() as session:
            moment = NOW - timedelta(minutes=90)
            await session.execute(update(Ticket).where(Ticket.id == 2).values(resolved_at=moment, updated_at=moment))
    finally:
        await desk.close()


@pytest.fixture
def fixed_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'snap.sqlite3'}"
    asyncio.run(_build_with_a_resolution(url))
    return url


def fixed_dashboard(url: str) -> Any:
    # A Desk made outside any event loop connects first inside the app's own loop, and the app closes it.
    return dashboard_app(
        Desk(Database(url)), "sup", clock=lambda: NOW, live=False, presence_seconds=3600, close_desk=True
    )


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_dashboard_screen(snap_compare: Any, fixed_url: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Any) -> None:
        await wait_for(
            pilot, lambda: isinstance(pilot.app.screen, DashboardScreen) and pilot.app.screen.refreshes, "the dashboard"
        )
        await pilot.pause()

    assert snap_compare(fixed_dashboard(fixed_url), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
def test_reports_screen(snap_compare: Any, fixed_url: str, size: tuple[int, int]) -> None:
    async def ready(pilot: Any) -> None:
        await wait_for(
            pilot, lambda: isinstance(pilot.app.screen, DashboardScreen) and pilot.app.screen.refreshes, "the dashboard"
        )
        await pilot.press("e")
        await wait_for(
            pilot, lambda: isinstance(pilot.app.screen, ReportsScreen) and pilot.app.screen.loads, "the reports screen"
        )
        await pilot.pause()

    assert snap_compare(fixed_dashboard(fixed_url), terminal_size=size, run_before=ready)
