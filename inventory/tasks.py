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
        log.info("task %s finished", task.get_name())


def supervise(coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
    """Start ``coro`` as a named task whose death (error or exit) is logged."""
    task = asyncio.create_task(coro, name=name)
    task.add_done_callback(_report)
    return task


async def cancel_all(tasks: list[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until every one has stopped."""
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.gather(*tasks, return_exceptions=True)
    tasks.clear()
