"""`termdesk serve`: the IMAP sync, the outbox worker and the scheduler in one asyncio process until asked to stop.

Both loops watch one stop event: the sync finishes the batch in flight (it is
committed before `\\Seen`), the worker finishes the message in flight and hands
the rest of its claimed batch back to the queue, so nothing is lost or sent twice.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from core.config import Settings
from core.desk import Desk
from core.mail.imap import SyncTuning, sync_all
from core.mail.intake import Intake
from core.mail.sender import OutboxWorker
from core.scheduler import Scheduler

log = logging.getLogger("termdesk.mail.serve")


async def serve(
    desk: Desk,
    settings: Settings,
    stop: asyncio.Event,
    *,
    worker: OutboxWorker | None = None,
    tuning: SyncTuning | None = None,
    scheduler: Scheduler | None = None,
) -> list[str]:
    """Run until `stop` is set; returns the names of what ran ("sync", "outbox", "scheduler")."""
    tasks: dict[str, asyncio.Task[Any]] = {}
    if settings.mailbox:
        intake = Intake(desk, settings)
        tasks["sync"] = asyncio.create_task(
            sync_all(settings.mailbox, intake, stop, max_message_bytes=settings.mail.max_message_bytes, tuning=tuning),
            name="serve:sync",
        )
    if settings.smtp.configured or worker is not None:
        worker = worker or OutboxWorker(desk.db, settings.smtp)
        tasks["outbox"] = asyncio.create_task(worker.run(stop), name="serve:outbox")
    if settings.automation.enabled or scheduler is not None:
        # Time-based work (SLA moments, time rules, auto-close) and the rules on the change feed.
        # It also warms the report day cache at start and after each UTC midnight ([reports] warm_days).
        reports = settings.reports
        scheduler = scheduler or Scheduler(
            desk.db, desk.outbox, warm_days=reports.warm_days if reports.day_cache else 0
        )
        tasks["scheduler"] = asyncio.create_task(
            scheduler.run(stop, interval=settings.automation.interval_seconds), name="serve:scheduler"
        )
    try:
        await asyncio.gather(*tasks.values())
    finally:
        for task in tasks.values():
            task.cancel()
        await asyncio.gather(*tasks.values(), return_exceptions=True)
    return list(tasks)
