"""A background pass repeated on an interval: the base of the reapers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from inventory.errors import Unavailable
from inventory.tasks import cancel_all, supervise

log = logging.getLogger("livesell.reaper")


class Sweeper:
    """Runs ``sweep`` every ``interval_s`` until closed; a failed pass is logged and retried."""

    #: The task's name, and the prefix of its log lines.
    name = "sweeper"

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._tasks: list[asyncio.Task[Any]] = []

    async def sweep(self) -> int:
        """One pass; returns how many things it changed."""
        raise NotImplementedError

    async def _loop(self) -> None:
        while True:
            try:
                await self.sweep()
            except Unavailable:
                log.warning("%s: Redis unavailable; retrying", self.name)
            except Exception:
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    # Stopped mid-pass: a driver may turn the cancellation into its own error
                    # (asyncpg's "another operation is in progress" on the rollback).
                    raise asyncio.CancelledError from None
                log.exception("%s sweep failed", self.name)
            await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        """Start sweeping in the background."""
        self._tasks.append(supervise(self._loop(), self.name))

    async def close(self) -> None:
        """Stop sweeping."""
        await cancel_all(self._tasks)


class Repeat(Sweeper):
    """A sweeper whose pass repeats ``step`` (returning how much it did) until it does nothing."""

    def __init__(self, name: str, step: Callable[[], Awaitable[int]], interval_s: float) -> None:
        super().__init__(interval_s)
        self.name = name
        self._step = step

    async def sweep(self) -> int:
        """Run ``step`` until a call finds nothing to do; returns the total done."""
        total = 0
        while n := await self._step():
            total += n
        return total


@asynccontextmanager
async def running(sweepers: Sequence[Sweeper]) -> AsyncIterator[None]:
    """Run ``sweepers`` for the body's duration; each is stopped on the way out."""
    for w in sweepers:
        w.start()
    try:
        yield
    finally:
        for w in sweepers:
            await w.close()
