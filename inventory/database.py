"""Async engine and sessions; Alembic migrations applied at start-up."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

log = logging.getLogger("livesell.inventory")

MIGRATIONS = Path(__file__).parent / "migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run beside the persister's writes; busy_timeout waits instead of failing.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()
    # The driver's own implicit BEGIN is deferred; _sqlite_begin emits ours instead.
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Any) -> None:
    # A deferred transaction that reads, then writes, fails at once with "database is locked"
    # when another process (the persister) committed in between: SQLite cannot upgrade a stale
    # read snapshot, and busy_timeout does not apply. Write transactions therefore take the
    # write lock up front (BEGIN IMMEDIATE, which does wait busy_timeout); reads stay deferred
    # so they never block a writer under WAL.
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class Database:
    """Owns the engine; ``open()`` migrates, ``close()`` disposes."""

    def __init__(self, url: str, pool_size: int = 10, timeout_s: float = 30.0) -> None:
        self.url = url
        self.is_sqlite = url.startswith("sqlite")
        kwargs: dict[str, Any] = {}
        if not self.is_sqlite:
            kwargs = {"pool_size": pool_size, "max_overflow": pool_size, "pool_pre_ping": True}
            if url.startswith("postgresql+asyncpg"):
                # A database host that vanishes without a RST would otherwise hang a connect
                # or a query (and the persister with it) for as long as TCP keeps trying.
                kwargs["connect_args"] = {"timeout": timeout_s, "command_timeout": timeout_s}
        if self.is_sqlite and ":///" in url:
            Path(url.split(":///", 1)[1]).parent.mkdir(parents=True, exist_ok=True)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "begin", _sqlite_begin)
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)
        self._writers = async_sessionmaker(
            self.engine.execution_options(sqlite_immediate=True), expire_on_commit=False
        )
        # SQLite has one writer: in-process writers queue here rather than each holding a pooled
        # connection while SQLite's busy handler polls (which exhausted the pool under a rush).
        self._write_lock: asyncio.Lock | None = asyncio.Lock() if self.is_sqlite else None

    @property
    def dialect(self) -> str:
        """The SQL dialect name (``sqlite`` or ``postgresql``)."""
        return self.engine.dialect.name

    async def open(self) -> None:
        """Apply migrations up to head."""
        async with self.engine.begin() as conn:
            await conn.run_sync(self._upgrade)
        log.info("database ready (%s)", self.dialect)

    @staticmethod
    def _upgrade(sync_conn: Any) -> None:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "head")

    async def ping(self) -> None:
        """Run a trivial query; raises when the database is unreachable."""
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    def session(self) -> AsyncSession:
        """A new session for reads (use as ``async with``)."""
        return self.sessions()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session inside one write transaction, committed on exit, rolled back on error."""
        if self._write_lock is None:
            async with self.sessions() as s, s.begin():
                yield s
            return
        async with self._write_lock, self._writers() as s, s.begin():
            yield s

    async def close(self) -> None:
        """Dispose the connection pool."""
        await self.engine.dispose()
