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
import signal
from functools import partial

from yarl import URL

from inventory.database import Database
from web.metrics import prepare_metrics_dir, worker_exited
from web.process import ChildProcess
from web.redisproc import RedisProcess
from web.resources import redis_url_file
from web.settings import Settings

log = logging.getLogger("livesell.workers")


def private_port(port: int, index: int) -> int:
    """The port worker ``index`` alone listens on (and advertises)."""
    return port + 1 + index


def worker_url(advertise_url: str, host: str, port: int) -> str:
    """The URL worker ``port`` advertises: the server's advertised host, else its bind host.

    Bound to every interface (``0.0.0.0`` in a container), the bind host is no address a
    viewer can be redirected to: ``LIVESELL_ADVERTISE_URL`` names the public one.
    """
    if advertise_url:
        return str(URL(advertise_url).with_port(port).origin())
    return f"http://{host}:{port}"


class Supervisor:
    """Starts the shared pieces and N workers; restarts a worker that dies; stops in order.

    Runs in the main thread (the children die with it; see ``web.process``); the caller holds
    the data directory's lock.
    """

    def __init__(self, settings: Settings, host: str, port: int, workers: int) -> None:
        self._settings = settings
        self._host = host
        self._port = port
        self._n = workers

    async def _migrate(self) -> None:
        s = self._settings
        db = Database(s.resolved_database_url(), timeout_s=s.database_timeout_s)
        try:
            await db.open()
        finally:
            await db.close()

    def run(self) -> int:
        """Run until SIGTERM or SIGINT; returns the exit status."""
        s = self._settings
        redis: RedisProcess | None = None
        url = s.redis_url
        if not url:
            redis = RedisProcess(s.data_dir / "redis")
            redis.start_sync()
            url = redis.url
            redis_url_file(s.data_dir).write_text(url)
        try:
            asyncio.run(self._serve(url))
        finally:
            if redis is not None:  # last: the children above wrote into it until they stopped
                redis.stop_sync()
                redis_url_file(s.data_dir).unlink(missing_ok=True)
        return 0

    async def _serve(self, redis_url: str) -> None:
        s = self._settings
        await self._migrate()
        shared = {
            "redis_url": redis_url,
            "database_url": s.resolved_database_url(),
            "secret": s.resolved_secret(),  # created once here, not raced by the workers
            "persister": "off",
            "workers": 1,
        }
        env = s.to_env(**shared)
        persister = ChildProcess("persister", ["persist"], env, s.data_dir / "persister.pid")
        series = prepare_metrics_dir(s.data_dir)  # emptied before any worker writes to it
        workers = []
        for i in range(self._n):
            own = worker_url(s.advertise_url, self._host, private_port(self._port, i))
            argv = ["serve", "--host", self._host, "--port", str(self._port)]
            workers.append(
                ChildProcess(
                    f"worker-{i}",
                    [*argv, "--worker-index", str(i)],
                    s.to_env(**shared, advertise_url=own) | series,
                    s.data_dir / f"worker-{i}.pid",
                    # A worker bounds its own drain; SIGKILL only past that bound.
                    stop_timeout_s=s.drain_s + 5,
                    on_exit=partial(worker_exited, s.data_dir),
                )
            )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        persister.start()
        for w in workers:
            w.start()
        log.info("serving on http://%s:%d with %d workers", self._host, self._port, self._n)
        try:
            await stop.wait()
            log.info("stopping workers")
        finally:
            # Workers first (they drain their sockets), then the persister (it writes what they
            # sold); Redis after both, in run().
            await asyncio.gather(*(w.close() for w in workers))
            await persister.close()
