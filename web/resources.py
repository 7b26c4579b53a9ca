"""cleanup_ctx generators for the app's resources: Redis, the database, the sale workers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from redis.asyncio import Redis

from flashsale.persister import Persister
from flashsale.reaper import Reaper
from flashsale.reconciler import Reconciler
from inventory.catalog import Catalog
from inventory.database import Database
from inventory.errors import DomainError
from inventory.redisclient import close as close_redis
from inventory.redisclient import connect
from web.keys import CATALOG, DATABASE, LEDGER, REDIS, REDIS_URL, SALES, SETTINGS
from web.process import ChildProcess
from web.redisproc import RedisProcess
from web.webhooks import WebhookDelivery

log = logging.getLogger("livesell.app")


def redis_url_file(data_dir: Path) -> Path:
    """Where a server with a private Redis writes its URL, so `livesell audit` can find it."""
    return data_dir / "redis.url"


def make_redis(url: str, pool_size: int) -> Redis:
    """A client for ``url``: one Redis or a Cluster (``inventory/redisclient.py``)."""
    return connect(url, pool_size)


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
        await close_redis(client)
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


async def _reconcile_lost_sales(app: web.Application) -> None:
    """Rebuild from SQL the running sales Redis lost (before the reaper or a buyer looks)."""
    reconciler = Reconciler(app[REDIS], app[LEDGER], app[CATALOG], app[SETTINGS].redis_prefix)
    try:
        rebuilt = await reconciler.reconcile_missing()
    except DomainError as exc:  # Redis unreachable: start anyway; `livesell reconcile` later
        log.error("start-up reconcile skipped: %s", exc)
        return
    for r in rebuilt:
        log.warning("sale %d was missing in Redis: rebuilt from SQL", r.sale_id)


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
    if settings.reconcile_on_start:
        await _reconcile_lost_sales(app)
    # Webhooks go out from the process that persists (and so writes the outbox).
    webhooks = None
    if settings.persister == "inprocess" and settings.webhooks_on:
        webhooks = WebhookDelivery(settings, app[DATABASE])
    reaper.start()
    if webhooks is not None:
        webhooks.start()
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
        if webhooks is not None:
            await webhooks.close()
        await persister.close()
        if child is not None:
            await child.close()
