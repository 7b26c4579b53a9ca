"""The order persister as a supervised child process (``livesell persist``).

Run inside the server, the persister's SQL writes share the event loop and the GIL with the
request path; in a buy rush that halved the buys one process could take. As a child process it
runs on the other core, and the consumer group makes a restarted child pick up where it died.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from typing import Any

from inventory.tasks import cancel_all, supervise
from web.settings import Settings

log = logging.getLogger("livesell.persister")


class PersisterProcess:
    """Keeps one ``livesell persist`` child running until ``close``; restarts it if it dies."""

    def __init__(self, settings: Settings, redis_url: str, restart_delay_s: float = 1.0) -> None:
        self._env = {
            **os.environ,
            "LIVESELL_REDIS_URL": redis_url,
            "LIVESELL_DATABASE_URL": settings.resolved_database_url(),
            "LIVESELL_REDIS_PREFIX": settings.redis_prefix,
            "LIVESELL_DATA_DIR": str(settings.data_dir),
            "LIVESELL_PERSISTER_INTERVAL_S": str(settings.persister_interval_s),
            "LIVESELL_PERSISTER_CLAIM_IDLE_MS": str(settings.persister_claim_idle_ms),
            "LIVESELL_LOG_LEVEL": settings.log_level,
        }
        self._restart_delay_s = restart_delay_s
        self._proc: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.starts = 0

    @property
    def pid(self) -> int | None:
        """The running child's pid, if any."""
        return self._proc.pid if self._proc and self._proc.returncode is None else None

    async def _run(self) -> None:
        while True:
            # Its own session, so a terminal's Ctrl-C does not stop it behind the supervisor's
            # back; close() stops it after the server has stopped taking buys.
            self._proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "web.cli", "persist", env=self._env, start_new_session=True
            )
            self.starts += 1
            code = await self._proc.wait()
            log.error("persister process exited with %s; restarting", code)
            await asyncio.sleep(self._restart_delay_s)

    def start(self) -> None:
        """Start the child and its supervisor."""
        self._tasks.append(supervise(self._run(), "persister-process"))

    async def close(self) -> None:
        """Stop supervising, then stop the child (it stops cleanly on SIGTERM)."""
        await cancel_all(self._tasks)
        proc = self._proc
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()
