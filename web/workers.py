"""``livesell serve --workers N``: several server processes on one port, supervised.

The parent owns what must exist once (the private Redis, the migrated database, the token
secret, the order persister) and N worker processes that each run the whole app. Workers share
the public port through SO_REUSEPORT, so the kernel spreads connections over them; each also
listens on a private port (public port + 1 + index) that it advertises, so a WHEP viewer who
reaches a worker without the publisher can be redirected to the one that has it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from inventory.database import Database
from web.metrics import prepare_metrics_dir, worker_exited
from web.redisproc import RedisProcess, stop_process
from web.resources import redis_url_file
from web.settings import Settings

log = logging.getLogger("livesell.workers")


def private_port(port: int, index: int) -> int:
    """The port worker ``index`` alone listens on (and advertises)."""
    return port + 1 + index


class Supervisor:
    """Starts the shared pieces and N workers; restarts a worker that dies; stops in order."""

    def __init__(self, settings: Settings, host: str, port: int, workers: int) -> None:
        self._settings = settings
        self._host = host
        self._port = port
        self._n = workers
        self._stop = False
        self._redis: RedisProcess | None = None
        self._env: dict[str, str] = {}
        self._workers: dict[int, subprocess.Popen[bytes]] = {}
        self._persister: subprocess.Popen[bytes] | None = None

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping workers", signum)
        self._stop = True

    def _prepare(self) -> None:
        s = self._settings
        url = s.redis_url
        if not url:
            self._redis = RedisProcess(s.data_dir / "redis")
            self._redis.start_sync()
            url = self._redis.url
            redis_url_file(s.data_dir).write_text(url)
        secret = s.resolved_secret()  # created once here, not raced by the workers
        db_url = s.resolved_database_url()

        async def migrate() -> None:
            db = Database(db_url)
            try:
                await db.open()
            finally:
                await db.close()

        asyncio.run(migrate())
        self._env = {
            **os.environ,
            "LIVESELL_REDIS_URL": url,
            "LIVESELL_DATABASE_URL": db_url,
            "LIVESELL_SECRET": secret,
            "LIVESELL_DATA_DIR": str(s.data_dir),
            "LIVESELL_PERSISTER": "off",
            "LIVESELL_WORKERS": "1",
            **prepare_metrics_dir(s.data_dir),  # before any worker starts writing series
        }

    def _spawn_worker(self, i: int) -> subprocess.Popen[bytes]:
        env = {
            **self._env,
            "LIVESELL_ADVERTISE_URL": f"http://{self._host}:{private_port(self._port, i)}",
        }
        argv = [
            sys.executable, "-m", "web.cli", "serve", "--host", self._host,
            "--port", str(self._port), "--worker-index", str(i),
        ]  # fmt: skip
        # Own sessions: a terminal's Ctrl-C reaches the supervisor, which stops them in order.
        return subprocess.Popen(argv, env=env, start_new_session=True)

    def _spawn_persister(self) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "web.cli", "persist"]
        return subprocess.Popen(argv, env=self._env, start_new_session=True)

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit status."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        self._prepare()
        try:
            self._persister = self._spawn_persister()
            for i in range(self._n):
                self._workers[i] = self._spawn_worker(i)
            log.info("serving on http://%s:%d with %d workers", self._host, self._port, self._n)
            while not self._stop:
                time.sleep(0.2)
                for i, proc in list(self._workers.items()):
                    if proc.poll() is not None and not self._stop:
                        log.error("worker %d exited with %s; restarting", i, proc.returncode)
                        worker_exited(self._settings.data_dir, proc.pid)
                        self._workers[i] = self._spawn_worker(i)
                if self._persister.poll() is not None and not self._stop:
                    log.error("persister exited with %s; restarting", self._persister.returncode)
                    self._persister = self._spawn_persister()
        finally:
            self._shutdown()
        return 0

    def _shutdown(self) -> None:
        # Workers first (they drain their sockets), then the persister (it writes what they
        # sold), then Redis.
        for proc in self._workers.values():
            stop_process(proc, 15)
            worker_exited(self._settings.data_dir, proc.pid)
        if self._persister is not None:
            stop_process(self._persister, 10)
        if self._redis is not None:
            self._redis.stop_sync()
            redis_url_file(self._settings.data_dir).unlink(missing_ok=True)
