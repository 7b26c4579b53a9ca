"""The naive SQL flash sale many shops run: lock the product row, decrement, insert the order.

Each purchase is one transaction: ``SELECT stock ... FOR UPDATE``, then ``UPDATE`` and
``INSERT``, from ``tasks`` concurrent connections on one hot row. PostgreSQL (asyncpg) in a
temporary database of our own, or SQLite (``BEGIN IMMEDIATE``, which has no row locks) when
PostgreSQL is absent.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from pathlib import Path
from typing import Any

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
STOCK = 10_000_000  # never runs out: every attempt in the window is a purchase

_SCHEMA = (
    "CREATE TABLE products (id INTEGER PRIMARY KEY, stock INTEGER NOT NULL)",
    "CREATE TABLE orders (id BIGSERIAL PRIMARY KEY, product_id INTEGER NOT NULL,"
    " user_id TEXT NOT NULL, qty INTEGER NOT NULL, created_at TIMESTAMPTZ DEFAULT now())",
)


async def pg_reachable(admin_url: str = PG_ADMIN_URL) -> bool:
    """True when PostgreSQL answers on ``admin_url`` within 3 s."""
    import asyncpg

    try:
        conn = await asyncio.wait_for(asyncpg.connect(admin_url), 3)
    except Exception:
        return False
    await conn.close()
    return True


class PgBaseline:
    """A temporary PostgreSQL database with one hot product; dropped by ``close``."""

    engine = "postgresql"

    def __init__(self, admin_url: str = PG_ADMIN_URL) -> None:
        self._admin_url = admin_url
        self._name = f"livesell_bench_{secrets.token_hex(5)}"
        self._url = f"{admin_url.rsplit('/', 1)[0]}/{self._name}"

    async def _admin(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self._admin_url)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def open(self) -> None:
        """Create the database and its tables."""
        import asyncpg

        await self._admin(f'CREATE DATABASE "{self._name}"')
        conn = await asyncpg.connect(self._url)
        try:
            for stmt in _SCHEMA:
                await conn.execute(stmt)
        finally:
            await conn.close()

    async def run(self, tasks: int, seconds: float) -> dict[str, Any]:
        """Buy as fast as ``tasks`` connections can for ``seconds``; returns rate and checks."""
        import asyncpg

        setup = await asyncpg.connect(self._url)
        await setup.execute("TRUNCATE orders")
        await setup.execute(
            "INSERT INTO products VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET stock = $1", STOCK
        )
        conns = [await asyncpg.connect(self._url) for _ in range(tasks)]
        deadline = time.perf_counter() + seconds

        async def buyer(conn: Any, who: int) -> int:
            n = 0
            while time.perf_counter() < deadline:
                async with conn.transaction():
                    stock = await conn.fetchval(
                        "SELECT stock FROM products WHERE id = 1 FOR UPDATE"
                    )
                    if stock < 1:
                        break
                    await conn.execute("UPDATE products SET stock = stock - 1 WHERE id = 1")
                    await conn.execute(
                        "INSERT INTO orders (product_id, user_id, qty) VALUES (1, $1, 1)", f"u{who}"
                    )
                n += 1
            return n

        bought, elapsed = await _race(conns, buyer)
        orders = await setup.fetchval("SELECT count(*) FROM orders")
        left = await setup.fetchval("SELECT stock FROM products WHERE id = 1")
        await setup.close()
        return _figures(bought, elapsed, int(orders), int(left))

    async def close(self) -> None:
        """Drop the temporary database."""
        await self._admin(f'DROP DATABASE IF EXISTS "{self._name}" WITH (FORCE)')


class SqliteBaseline:
    """The same on SQLite: ``BEGIN IMMEDIATE`` takes the write lock that FOR UPDATE would."""

    engine = "sqlite"

    def __init__(self, directory: Path) -> None:
        self._path = directory / "baseline.db"

    async def open(self) -> None:
        """Create the tables."""
        import aiosqlite

        async with aiosqlite.connect(self._path) as db:
            await db.execute("CREATE TABLE products (id INTEGER PRIMARY KEY, stock INTEGER)")
            await db.execute(
                "CREATE TABLE orders (id INTEGER PRIMARY KEY AUTOINCREMENT, product_id INTEGER,"
                " user_id TEXT, qty INTEGER, created_at TEXT DEFAULT CURRENT_TIMESTAMP)"
            )
            await db.commit()

    async def run(self, tasks: int, seconds: float) -> dict[str, Any]:
        """Buy as fast as ``tasks`` connections can for ``seconds``."""
        import aiosqlite

        async with aiosqlite.connect(self._path) as db:
            await db.execute("DELETE FROM orders")
            await db.execute("INSERT OR REPLACE INTO products VALUES (1, ?)", (STOCK,))
            await db.commit()
        conns = [
            await aiosqlite.connect(self._path, timeout=30, isolation_level=None)
            for _ in range(tasks)
        ]
        deadline = time.perf_counter() + seconds

        async def buyer(db: Any, who: int) -> int:
            n = 0
            while time.perf_counter() < deadline:
                await db.execute("BEGIN IMMEDIATE")
                cur = await db.execute("SELECT stock FROM products WHERE id = 1")
                row = await cur.fetchone()
                if row is None or row[0] < 1:
                    await db.execute("ROLLBACK")
                    break
                await db.execute("UPDATE products SET stock = stock - 1 WHERE id = 1")
                await db.execute(
                    "INSERT INTO orders (product_id, user_id, qty) VALUES (1, ?, 1)", (f"u{who}",)
                )
                await db.execute("COMMIT")
                n += 1
            return n

        bought, elapsed = await _race(conns, buyer)
        async with aiosqlite.connect(self._path) as db:
            orders = await _scalar(db, "SELECT count(*) FROM orders")
            left = await _scalar(db, "SELECT stock FROM products")
        return _figures(bought, elapsed, int(orders), int(left))

    async def close(self) -> None:
        """Nothing to drop: the file lives in the bench's temporary directory."""


async def _race(conns: list[Any], buyer: Any) -> tuple[int, float]:
    """Run one buyer per connection at once, then close them: units bought and wall time."""
    start = time.perf_counter()
    counts = await asyncio.gather(*(buyer(c, i) for i, c in enumerate(conns)))
    elapsed = time.perf_counter() - start
    for c in conns:
        await c.close()
    return sum(counts), elapsed


async def _scalar(db: Any, sql: str) -> int:
    row = await (await db.execute(sql)).fetchone()
    return int(row[0]) if row is not None else 0


def _figures(bought: int, elapsed: float, orders: int, left: int) -> dict[str, Any]:
    # Oversold: orders beyond the units the stock column gave up (or stock gone negative).
    oversold = max(0, orders - (STOCK - left)) + max(0, -left)
    return {
        "buys_per_s": round(bought / elapsed, 1),
        "purchases": bought,
        "orders": orders,
        "oversold": oversold,
        "seconds": round(elapsed, 3),
    }
