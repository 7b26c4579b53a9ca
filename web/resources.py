"""cleanup_ctx generators for the app's resources: Redis, the database, the sale workers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis

from flashsale.persister import Persister
from flashsale.reaper import Reaper
from inventory.catalog import Catalog
from inventory.database import Database
from web.keys import CATALOG, DATABASE, LEDGER, REDIS, REDIS_URL, SALES, SETTINGS
from web.process import ChildProcess
from web.redisproc import RedisProcess

log = logging.getLogger("livesell.app")


def redis_url_file(data_dir: Path) -> Path:
    """Where a server with a private Redis writes its URL, so `livesell audit` can find it."""
    return data_dir / "redis.url"


def make_redis(url: str, pool_size: int) -> Redis:
    """A client whose pool waits for a free connection instead of failing under load."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=5,
        socket_timeout=5,
        socket_connect_timeout=1,
    )
    return Redis(connection_pool=pool)


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """Connect to ``LIVESELL_REDIS_URL``, or start and later stop a private redis-server."""
    settings = app[SETTINGS]
    proc: RedisProcess | None = None
    url = settings.redis_url
    if not url:
        proc = RedisProcess(settings.data_dir / "redis")
        await proc.start()
        url = proc.url
        redis_url_file(settings.data_dir).write_text(url)
    client = make_redis(url, settings.redis_pool_size)
    app[REDIS] = client
    app[REDIS_URL] = url
    try:
        yield
    finally:
        await client.aclose()
        if proc is not None:
            await proc.stop()
            redis_url_file(settings.data_dir).unlink(missing_ok=True)


async def database_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the database (migrating it) and the catalogue."""
    settings = app[SETTINGS]
    db = Database(settings.resolved_database_url(), timeout_s=settings.database_timeout_s)
    await db.open()
    app[DATABASE] = db
    app[CATALOG] = Catalog(db)
    try:
        yield
    finally:
        await db.close()


async def sale_workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """The sale service's reaper and persister (in this process or a child process)."""
    settings = app[SETTINGS]
    sales, ledger = app[SALES], app[LEDGER]
    reaper = Reaper(sales, settings.reaper_interval_s)
    persister = Persister(
        app[REDIS],
        ledger,
        settings.redis_prefix,
        interval_s=settings.persister_interval_s,
        claim_idle_ms=settings.persister_claim_idle_ms,
    )
    child: ChildProcess | None = None
    reaper.start()
    if settings.persister == "inprocess":
        persister.start()
    elif settings.persister == "process":
        # Only the process that owns the data directory supervises the persister: a worker
        # (persister=off) must not touch its pid file.
        env = settings.to_env(
            redis_url=app[REDIS_URL], database_url=settings.resolved_database_url()
        )
        child = ChildProcess("persister", ["persist"], env, settings.data_dir / "persister.pid")
        child.start()
    try:
        yield
    finally:
        await reaper.close()
        await persister.close()
        if child is not None:
            await child.close()
