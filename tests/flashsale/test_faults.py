"""Faults: Redis stopped mid-sale, a persister process killed mid-stream, the audit command."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
from aiohttp.test_utils import TestClient

from flashsale.audit import audit_sale
from inventory.database import Database
from inventory.ledger import Ledger
from tests.conftest import TEST_SECRET
from tests.flashsale.conftest import Core
from tests.flashsale.helpers import Auth, buy, make_sale
from web.app import create_app
from web.process import free_port
from web.redisproc import RedisProcess
from web.settings import Settings


def _env(settings: Settings) -> dict[str, str]:
    return {
        **os.environ,
        "LIVESELL_REDIS_URL": settings.redis_url,
        "LIVESELL_DATABASE_URL": settings.resolved_database_url(),
        "LIVESELL_REDIS_PREFIX": settings.redis_prefix,
        "LIVESELL_SECRET": TEST_SECRET,
        "LIVESELL_DATA_DIR": str(settings.data_dir),
        "LIVESELL_PERSISTER_CLAIM_IDLE_MS": "300",
    }


async def test_redis_stopped_mid_sale_gives_503_then_recovers(
    aiohttp_client, tmp_path: Path, auth: Auth, database_url: str
) -> None:  # type: ignore[no-untyped-def]
    redis = RedisProcess(tmp_path / "redis", port=free_port(), appendfsync="always")
    await redis.start()
    settings = Settings(
        redis_url=redis.url, database_url=database_url, secret=TEST_SECRET, data_dir=tmp_path,
        redis_prefix="fault", reaper_interval_s=0.1, persister_interval_s=0.02,
        persister="inprocess",
    )  # fmt: skip
    client: TestClient = await aiohttp_client(create_app(settings))
    try:
        sale = await make_sale(client, auth, quantity=50, limit=1)
        sid = sale["id"]
        before = [await buy(client, auth, sid, f"a{i}", "k") for i in range(10)]
        assert all(s == 201 for s, _ in before)

        await redis.stop()
        during = await asyncio.gather(*[buy(client, auth, sid, f"b{i}", "k") for i in range(20)])
        assert {s for s, _ in during} == {503}
        assert {b["error"] for _, b in during} == {"unavailable"}
        r = await client.post(
            f"/api/orders/{before[0][1]['order']['id']}/pay", headers=auth("viewer", "a0")
        )
        assert r.status == 503
        r = await client.get("/readyz")
        assert r.status == 503 and (await r.json())["checks"]["redis"].startswith("down")

        await redis.start()  # same port and data dir: the AOF brings the sale back
        after = [await buy(client, auth, sid, f"b{i}", "k") for i in range(20)]
        assert Counter(s for s, _ in after) == {201: 20}
        assert after[-1][1]["remaining"] == 50 - 30
        r = await client.get(f"/api/sales/{sid}/audit", headers=auth("admin", "ops"))
        report = await r.json()
        assert r.status == 200 and report["ok"], report
        assert report["figures"]["reserved"] == 30 and report["figures"]["sql_orders"] == 30
    finally:
        await client.close()
        await redis.stop()


async def test_persister_process_killed_and_restarted(core: Core, settings: Settings) -> None:
    sale = await core.sale(quantity=3000, limit=1)
    env = _env(settings)
    cmd = [sys.executable, "-m", "web.cli", "persist"]
    first = await asyncio.create_subprocess_exec(*cmd, env=env)
    sold = 0

    async def buyers(lo: int, hi: int) -> None:
        nonlocal sold
        for i in range(lo, hi, 50):
            await asyncio.gather(*[core.sales.buy(sale.id, f"u{j}", "k") for j in range(i, i + 50)])
            sold = i + 50
            await asyncio.sleep(0.02)

    try:
        flow = asyncio.create_task(buyers(0, 2000))
        for _ in range(300):  # wait until the first persister is visibly mid-stream
            if len(await core.ledger.orders_for_sale(sale.id)) >= 100:
                break
            await asyncio.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # no chance to ack or clean up
        await first.wait()
        at_kill = len(await core.ledger.orders_for_sale(sale.id))
        assert 100 <= at_kill < 2000, at_kill
        await flow
        second = await asyncio.create_subprocess_exec(*cmd, env=env)
        try:
            await buyers(2000, 2500)
            for _ in range(200):
                if len(await core.ledger.orders_for_sale(sale.id)) == 2500:
                    break
                await asyncio.sleep(0.1)
        finally:
            second.terminate()
            await asyncio.wait_for(second.wait(), 10)
    finally:
        if first.returncode is None:
            first.kill()
            await first.wait()
    rows = await core.ledger.orders_for_sale(sale.id)
    assert len(rows) == 2500 and len({r.id for r in rows}) == 2500
    assert {r.state for r in rows} == {"reserved"}
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id, sync=False)
    assert report.ok, report.to_json()


async def test_audit_command_prints_json_and_exits_1_on_failure(
    core: Core, settings: Settings
) -> None:
    sale = await core.sale(quantity=5, limit=2)
    await core.sales.buy(sale.id, "amy", "k")
    cmd = [sys.executable, "-m", "web.cli", "audit", "--sale", str(sale.id)]
    ok = await asyncio.to_thread(subprocess.run, cmd, env=_env(settings), capture_output=True)
    assert ok.returncode == 0, ok.stderr
    body = json.loads(ok.stdout)
    assert body["ok"] and body["figures"]["reserved"] == 1 and body["figures"]["remaining"] == 4
    await core.redis.hset(core.sales.keys(sale.id).meta, "remaining", "9")  # oversell by 5
    bad = await asyncio.to_thread(subprocess.run, cmd, env=_env(settings), capture_output=True)
    assert bad.returncode == 1
    assert json.loads(bad.stdout)["checks"]["stock_conserved"] is False


async def test_persister_child_process_is_restarted_when_it_dies(
    aiohttp_client, settings: Settings, auth: Auth
) -> None:  # type: ignore[no-untyped-def]
    settings = dataclasses.replace(settings, persister="process")
    client: TestClient = await aiohttp_client(create_app(settings))
    db = Database(settings.resolved_database_url())
    ledger = Ledger(db)

    async def persisted(sale_id: int, want: int) -> int:
        for _ in range(150):
            n = len(await ledger.orders_for_sale(sale_id))
            if n >= want:
                return n
            await asyncio.sleep(0.1)
        return n

    def child() -> psutil.Process:
        kids = [p for p in psutil.Process().children() if "persist" in p.cmdline()]
        assert len(kids) == 1, kids
        return kids[0]

    try:
        sale = await make_sale(client, auth, quantity=100, limit=1)
        for i in range(40):
            assert (await buy(client, auth, sale["id"], f"a{i}", "k"))[0] == 201
        assert await persisted(sale["id"], 40) == 40  # written by the child, not the server
        first = child()
        first.kill()
        for i in range(40):
            assert (await buy(client, auth, sale["id"], f"b{i}", "k"))[0] == 201
        assert await persisted(sale["id"], 80) == 80
        assert child().pid != first.pid
    finally:
        await client.close()
        await db.close()
