"""Graceful drain: a real `livesell serve` gets SIGTERM in the middle of a rush of buys."""

from __future__ import annotations

import asyncio
import signal
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import pytest

from chat.protocol import CLOSE_GOING_AWAY, RESTART_RETRY_MS
from flashsale.audit import audit_sale
from flashsale.persister import Persister
from inventory.database import Database
from inventory.ledger import Ledger
from tests.conftest import TEST_SECRET
from tests.web.helpers import Rush, open_sale
from tests.web.test_processes import _serve, _serve_env
from web.auth import Role, TokenSigner
from web.process import free_port
from web.resources import make_redis
from web.settings import Settings

DRAIN_S = 6


async def _watch_room(s: aiohttp.ClientSession, url: str, joined: asyncio.Event) -> dict[str, Any]:
    """Join a room; collect its events until the server closes the socket."""
    seen: list[dict[str, Any]] = []
    async with s.ws_connect(url) as ws:
        async for msg in ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            ev = msgpack.unpackb(msg.data)
            seen += ev["events"] if ev["type"] == "batch" else [ev]
            if ev["type"] == "snapshot":
                joined.set()
        return {"code": ws.close_code, "events": seen}


async def _stuck_request(port: int, token: str) -> asyncio.StreamWriter:
    """A buy whose body never arrives: in flight until the drain gives up on it."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /api/sales/1/buy HTTP/1.1\r\nHost: x\r\nIdempotency-Key: k\r\n"
        b"Authorization: Bearer " + token.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
    )
    await writer.drain()
    return writer


@pytest.mark.parametrize("workers", [1, 2])
async def test_sigterm_mid_rush_loses_no_order_and_tells_every_room(
    tmp_path: Path, redis_url: str, workers: int
) -> None:
    port = free_port()
    prefix = f"drain{uuid.uuid4().hex[:6]}"
    env = _serve_env(tmp_path, port) | {
        "LIVESELL_REDIS_URL": redis_url,  # outlives the server: its stream is checked after
        "LIVESELL_REDIS_PREFIX": prefix,
        "LIVESELL_DRAIN_S": str(DRAIN_S),
        "LIVESELL_WORKERS": str(workers),  # 2: the supervisor stops workers that each drain
    }
    url = f"http://127.0.0.1:{port}"
    signer = TokenSigner(TEST_SECRET)
    admin = {"Authorization": f"Bearer {signer.mint('ops', Role.ADMIN)}"}
    proc = await _serve(env)
    try:
        async with aiohttp.ClientSession() as s:
            r = await s.post(f"{url}/api/streams", json={"id": "show", "title": "t"}, headers=admin)
            assert r.status == 201, await r.text()
            sale_id = await open_sale(s, url, admin, 50_000)
            joined = [asyncio.Event() for _ in range(3)]
            rooms = [
                asyncio.create_task(_watch_room(s, f"ws://127.0.0.1:{port}/ws/rooms/show", j))
                for j in joined
            ]  # with 2 workers the kernel spreads them over both
            await asyncio.wait_for(asyncio.gather(*(j.wait() for j in joined)), 30)
            stuck = await _stuck_request(port, signer.mint("slow", Role.VIEWER))

            rush = Rush(url, sale_id, signer, enough_at=200)
            rush.start()
            await asyncio.wait_for(rush.enough.wait(), 60)
            proc.send_signal(signal.SIGTERM)
            # 0: the drain ended by itself; the deadline would have cut it with status 3.
            assert await asyncio.wait_for(proc.wait(), DRAIN_S + 30) == 0
            await rush.ended()
            closed = await asyncio.wait_for(asyncio.gather(*rooms), 30)
            stuck.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()

    assert set(rush.refused) <= {503}, rush.refused  # draining: nothing else is refused
    confirmed = rush.confirmed
    for room in closed:
        assert room["code"] == CLOSE_GOING_AWAY, room["code"]
        last = room["events"][-1]
        assert last["type"] == "server_restarting", last
        assert RESTART_RETRY_MS[0] <= last["retry_after_ms"] <= RESTART_RETRY_MS[1]

    # Another consumer takes what the stopped persister left pending: no 201 without its order.
    redis = make_redis(redis_url, 4)
    db = Database(Settings.from_env(env).resolved_database_url())
    try:
        await db.open()
        ledger = Ledger(db)
        await Persister(redis, ledger, prefix, consumer="next").drain(sale_id)
        in_sql = {o.id for o in await ledger.orders_for_sale(sale_id)}
        assert len(confirmed) >= 200 and set(confirmed) <= in_sql, set(confirmed) - in_sql
        report = await audit_sale(redis, ledger, prefix, sale_id)
        assert report.ok, report.to_json()
        assert report.figures["reserved"] == len(in_sql)
    finally:
        await redis.aclose()
        await db.close()
