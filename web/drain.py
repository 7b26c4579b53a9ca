"""A bounded drain: what ``livesell serve`` (and each worker) does between SIGTERM and exit.

aiohttp's runner does the steps in order: the listening sockets close (nothing new is
accepted), idle keep-alive connections close, ``on_shutdown`` runs (``/readyz`` turns 503, each
room socket gets ``server_restarting`` and closes with 1001: ``web/health.py``,
``web/room.py``), then in-flight requests (buys) get up to ``request_timeout`` to finish, then
the resources close in reverse (the relay ends its WebRTC sessions, the persister stops and
leaves its unacknowledged events pending for another consumer, Redis stops). A deadline set at
the first step makes the process exit within ``LIVESELL_DRAIN_S`` even if a step hangs.
"""

from __future__ import annotations

import logging
import os
import threading

from aiohttp import web

log = logging.getLogger("livesell.drain")

#: The share of the bound in-flight requests may take; the rest is for closing resources.
REQUESTS_SHARE = 0.5
#: Exit status when the deadline cut the drain short (0 when it finished in time).
EXIT_DRAIN_TIMEOUT = 3


def request_timeout(drain_s: float) -> float:
    """How long in-flight requests may run after SIGTERM (aiohttp's ``shutdown_timeout``)."""
    return max(0.5, drain_s * REQUESTS_SHARE)


class DrainDeadline:
    """Ends the process ``seconds`` after ``arm`` unless it exited by itself before."""

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._timer: threading.Timer | None = None

    def arm(self) -> None:
        """Start counting (once); a thread, so a blocked event loop cannot stop it."""
        if self._timer is not None:
            return
        log.info("draining: exiting within %.1f s", self._seconds)
        self._timer = threading.Timer(self._seconds, self._expire)
        self._timer.daemon = True  # never what keeps the process alive
        self._timer.start()

    def _expire(self) -> None:
        log.error("drain not finished within %.1f s: exiting now", self._seconds)
        for handler in logging.getLogger().handlers:
            handler.flush()
        # Children still running get SIGTERM from the kernel (PR_SET_PDEATHSIG, web/process.py);
        # a private Redis flushes its append-only file on it.
        os._exit(EXIT_DRAIN_TIMEOUT)


def bound_shutdown(app: web.Application, drain_s: float) -> DrainDeadline:
    """Arm a ``DrainDeadline`` of ``drain_s`` at the first shutdown step of ``app``."""
    deadline = DrainDeadline(drain_s)

    async def arm(_app: web.Application) -> None:
        deadline.arm()

    app.on_shutdown.insert(0, arm)
    return deadline
