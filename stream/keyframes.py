"""Rate-limited keyframe requests (PLI) to the publisher, shared by every viewer of a stream."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from stream.tasks import cancel, supervise

log = logging.getLogger("livesell.stream")


class KeyframeRequester:
    """Coalesces viewers' needs for a keyframe into at most one upstream request per interval.

    A burst of joins (or of viewers' PLIs) while a request is outstanding costs nothing more;
    the request is repeated each interval until a keyframe arrives, in case a PLI was lost.
    """

    def __init__(
        self,
        send: Callable[[], Awaitable[int]],
        name: str,
        min_interval_s: float = 0.5,
        max_attempts: int = 6,
    ) -> None:
        self._send = send
        self._name = name
        self._interval = min_interval_s
        self._max_attempts = max_attempts
        self._last_sent = -float("inf")
        self._wanted = False
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        #: Requests asked for (joins, lagging viewers, viewers' PLI/FIR).
        self.asked = 0
        #: Requests actually sent upstream.
        self.sent = 0

    def request(self) -> None:
        """Ask for a keyframe soon; cheap and idempotent while one is already on its way."""
        self.asked += 1
        if self._closed or self._wanted:
            return
        self._wanted = True
        if self._task is None or self._task.done():
            self._task = supervise(self._run(), f"keyframes:{self._name}")

    def keyframe_seen(self) -> None:
        """A keyframe went through: everyone waiting has been served."""
        self._wanted = False

    async def _run(self) -> None:
        attempts = 0
        while self._wanted and not self._closed and attempts < self._max_attempts:
            wait = self._last_sent + self._interval - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            self._last_sent = time.monotonic()
            attempts += 1
            try:
                self.sent += await self._send()
            except ConnectionError as exc:
                log.debug("keyframe request for %s not sent: %s", self._name, exc)
        # Give up after max_attempts (a publisher like OBS ignores PLI; its periodic keyframes
        # will serve the waiting viewers). A later request() starts over.
        self._wanted = False

    async def close(self) -> None:
        """Stop requesting."""
        self._closed = True
        await cancel(self._task)
