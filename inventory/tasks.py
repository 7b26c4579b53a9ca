"""Owned background tasks: named, cancellable, and logged when they die."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger("livesell.tasks")


def _report(task: asyncio.Task[Any]) -> None:
    if task.cancelled():
        log.debug("task %s cancelled", task.get_name())
        return
    exc = task.exception()
    if exc is not None:
        log.error("task %s died", task.get_name(), exc_info=exc)
    else:
        log.debug("task %s finished", task.get_name())


def supervise(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Start ``coro`` as a named task whose death (error or exit) is logged."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report)
    return task


async def cancel_all(tasks: list[asyncio.Task[Any]], grace_s: float = 0.5) -> None:
    """Cancel ``tasks`` and wait until every one has stopped.

    A cancellation can be swallowed by a library (redis-py's connection code catches it in some
    paths), leaving a loop running; so tasks still alive after ``grace_s`` are cancelled again.
    """
    pending = {t for t in tasks if not t.done()}
    for attempt in range(20):
        if not pending:
            break
        for t in pending:
            t.cancel()
        _, pending = await asyncio.wait(pending, timeout=grace_s)
        if pending and attempt == 0:
            log.warning("tasks ignored cancellation: %s", [t.get_name() for t in pending])
    if pending:
        log.error("tasks still running after shutdown: %s", [t.get_name() for t in pending])
    tasks.clear()
