"""Faults: the database down for 30 s mid-sale (PostgreSQL behind a proxy), SQLite locked.

Buys only need Redis: while SQL is away, orders wait in each sale's Redis Stream, and the
persister retries with back-off, then writes every one of them, once, when SQL is back.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import sys
import time
from collections import Counter
from pathlib import Path

import msgpack
import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient

from chat.protocol import CLOSE_TRY_AGAIN
from flashsale.backlog import backlog
from flashsale.keys import SaleKeys
from flashsale.persister import GROUP
from inventory.database import Database
from inventory.ledger import Ledger
from tests.flashsale.helpers import Auth, buy, make_sale
from tests.flashsale.test_faults import _env
from tests.netfaults import TcpCut
from web.app import create_app
from web.keys import REDIS
from web.settings import Settings

OUTAGE_S = 30.0


async def _persisted(ledger: Ledger, sale_id: int, want: int, within_s: float) -> int:
    deadline = time.monotonic() + within_s
    n = 0
    while time.monotonic() < deadline:
        n = len(await ledger.orders_for_sale(sale_id))
        if n >= want:
            return n
        await asyncio.sleep(0.1)
    return n


async def _consumers(client: TestClient, events: str, want: int) -> list[dict]:  # type: ignore[type-arg]
    """The persister group's consumers of a stream, once there are ``want`` (or after 20 s)."""
    consumers: list[dict] = []  # type: ignore[type-arg]
    for _ in range(200):
        consumers = await client.app[REDIS].xinfo_consumers(events, GROUP)
        if len(consumers) >= want:
            break
        await asyncio.sleep(0.1)
    return consumers


async def _rush(
    client: TestClient, auth: Auth, sale_id: int, users: range, pay_every: int = 0
) -> list[tuple[int, dict]]:  # type: ignore[type-arg]
    """Buy once per user (and pay every ``pay_every``-th order); the buys' replies."""
    got = await asyncio.gather(*[buy(client, auth, sale_id, f"u{i}", "k") for i in users])
    for n, (status, body) in enumerate(got):
        if pay_every and status == 201 and n % pay_every == 0:
            user = body["order"]["user_id"]
            r = await client.post(
                f"/api/orders/{body['order']['id']}/pay", headers=auth("viewer", user)
            )
            assert r.status == 200, await r.text()
    return got


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_database_down_30s_buys_go_on_and_the_persister_catches_up(
    aiohttp_client, settings: Settings, auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    real = settings.resolved_database_url()
    host_port = real.split("@", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = TcpCut(host, int(port))
    await proxy.start()
    proxied = real.replace(f"@{host_port}/", f"@127.0.0.1:{proxy.port}/")
    settings = dataclasses.replace(settings, database_url=proxied, database_timeout_s=2.0)
    client: TestClient = await aiohttp_client(create_app(settings))
    db = Database(real)  # the test's own view of SQL, around the proxy
    ledger = Ledger(db)
    caplog.set_level(logging.INFO, logger="livesell.persister")
    # Beside the in-process persister, a `livesell persist` child (the default deployment).
    cmd = [sys.executable, "-m", "web.cli", "persist"]
    env = _env(settings) | {"LIVESELL_DATABASE_TIMEOUT_S": "2"}
    first = await asyncio.create_subprocess_exec(*cmd, env=env)
    second: asyncio.subprocess.Process | None = None
    try:
        sale = await make_sale(client, auth, quantity=1000, limit=1)
        sid = sale["id"]
        r = await client.post("/api/streams", json={"id": "later", "host_id": "hana"},
                              headers=auth("admin", "ops"))  # fmt: skip
        assert r.status == 201
        before = await _rush(client, auth, sid, range(0, 50), pay_every=5)
        assert Counter(s for s, _ in before) == {201: 50}
        assert await _persisted(ledger, sid, 50, 20) == 50
        events = SaleKeys.of(settings.redis_prefix, sid).events
        assert len(await _consumers(client, events, 2)) == 2  # the child reads the stream too

        # The database's host goes silent (no RST: every call hangs until its timeout), then,
        # half-way, it is refused outright as while it restarts.
        proxy.cut("stall")
        outage_end = time.monotonic() + OUTAGE_S
        during: list[tuple[int, dict]] = []  # type: ignore[type-arg]
        wave = 0
        while time.monotonic() < outage_end:
            if wave == 2:
                # The persister child crashes, holding what it had read; its replacement
                # starts while the database is still away.
                first.kill()
                await first.wait()
                second = await asyncio.create_subprocess_exec(
                    *cmd, env=env, stderr=asyncio.subprocess.PIPE
                )
            if proxy.mode == "stall" and time.monotonic() > outage_end - OUTAGE_S / 2:
                proxy.cut("reset")
            users = range(100 + wave * 20, 120 + wave * 20)
            during += await _rush(client, auth, sid, users, pay_every=4)
            wave += 1
            await asyncio.sleep(min(1.0, max(0.0, outage_end - time.monotonic())))
        assert wave >= 6 and Counter(s for s, _ in during) == {201: len(during)}
        # They wait in the sale's Redis Stream, and a read that needs SQL says so.
        waiting = await backlog(client.app[REDIS], settings.redis_prefix)
        assert waiting.unpersisted_events >= len(during), waiting
        r = await client.get(f"/api/sales/{sid}")
        assert r.status == 503 and (await r.json())["error"] == "unavailable", await r.text()
        r = await client.get("/readyz")
        assert r.status == 503 and (await r.json())["checks"]["database"].startswith("down")
        # A room this process has not loaded yet needs SQL to join: refused in-protocol.
        async with client.ws_connect("/ws/rooms/later") as ws:
            msg = await ws.receive(timeout=10)
            assert msgpack.unpackb(msg.data)["code"] == "unavailable"
            assert (await ws.receive(timeout=10)).type == WSMsgType.CLOSE
            assert ws.close_code == CLOSE_TRY_AGAIN
        assert proxy.refused > 0  # the persisters kept trying
        assert second is not None and second.returncode is None  # it waits instead of exiting

        proxy.restore()
        after = await _rush(client, auth, sid, range(5000, 5050))
        assert Counter(s for s, _ in after) == {201: 50}
        total = len(before) + len(during) + len(after)
        assert await _persisted(ledger, sid, total, 30) == total
        rows = await ledger.orders_for_sale(sid)
        assert len({r.id for r in rows}) == total  # none lost, none twice
        bought = {b["order"]["id"] for _, b in before + during + after}
        assert {r.id for r in rows} == bought
        r = await client.get(f"/api/sales/{sid}/audit", headers=auth("admin", "ops"))
        report = await r.json()
        assert r.status == 200 and report["ok"], report
        assert report["figures"]["sql_orders"] == total
        # Retries backed off (the waits doubled up to a cap) and recovery was reported.
        waits = [
            float(rec.getMessage().split("retrying in ")[1].split(" s")[0])
            for rec in caplog.records
            if rec.name == "livesell.persister" and "retrying in" in rec.getMessage()
        ]
        assert waits[:5] == [0.25, 0.5, 1.0, 2.0, 4.0] and max(waits) == 4.0, waits
        for _ in range(100):  # it may still sleep its last back-off (others wrote the rest)
            if any("recovered" in r.getMessage() for r in caplog.records):
                break
            await asyncio.sleep(0.1)
        assert any("recovered" in r.getMessage() for r in caplog.records)
        # Nothing is left pending, the crashed child's events included: three consumers
        # (in-process, crashed, replacement), every one's events acked.
        consumers = await _consumers(client, events, 3)
        assert len(consumers) == 3 and {c["pending"] for c in consumers} == {0}, consumers
        second.terminate()
        log = (await second.stderr.read()).decode() if second.stderr else ""
        starts = [float(x.split(" s ")[0]) for x in log.split("retrying in ")[1:]]
        assert starts[:3] == [0.25, 0.5, 1.0], log
    finally:
        for child in (first, second):
            if child is not None and child.returncode is None:
                child.kill()
                await child.wait()
        await client.close()
        await db.close()
        await proxy.close()


async def test_sqlite_locked_buys_go_on_and_the_persister_catches_up(
    aiohttp_client, settings: Settings, auth: Auth, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    client: TestClient = await aiohttp_client(create_app(settings))
    db = Database(settings.resolved_database_url())
    ledger = Ledger(db)
    try:
        sale = await make_sale(client, auth, quantity=500, limit=1)
        sid = sale["id"]
        assert Counter(s for s, _ in await _rush(client, auth, sid, range(20))) == {201: 20}
        assert await _persisted(ledger, sid, 20, 20) == 20
        # Another process holds the write lock: the persister cannot write, buys go on.
        # Waits (up to 30 s) for a write the server may have under way: the persister writes the
        # orders, then attributes them and settles points in transactions of their own.
        lock = sqlite3.connect(tmp_path / "livesell.db", isolation_level=None, timeout=30)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            during = []
            for wave in range(4):
                during += await _rush(client, auth, sid, range(100 + wave * 20, 120 + wave * 20))
                await asyncio.sleep(1.0)
            assert Counter(s for s, _ in during) == {201: len(during)}
            assert len(await asyncio.to_thread(_count_orders, tmp_path, sid)) == 20
        finally:
            lock.execute("ROLLBACK")
            lock.close()
        total = 20 + len(during)
        assert await _persisted(ledger, sid, total, 30) == total
        r = await client.get(f"/api/sales/{sid}/audit", headers=auth("admin", "ops"))
        report = await r.json()
        assert r.status == 200 and report["ok"], report
    finally:
        await client.close()
        await db.close()


def _count_orders(tmp_path: Path, sale_id: int) -> list[tuple[str]]:
    # A reader is not blocked by the writer's lock in WAL mode: the persister wrote nothing.
    with sqlite3.connect(tmp_path / "livesell.db") as conn:
        return conn.execute("SELECT id FROM orders WHERE sale_id = ?", (sale_id,)).fetchall()
