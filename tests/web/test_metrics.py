"""GET /metrics during a real sale: the series add up to what the clients saw."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.chat.test_room_ws import connect, make_stream, token
from tests.flashsale.helpers import make_sale
from tests.web.test_workers import free_run, serve_env
from web.auth import TokenSigner

Auth = Callable[..., dict[str, str]]
BUY_ROUTE = "/api/sales/{sale_id}/buy"
Series = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Series:
    """Every sample of an exposition, by name and labels."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(series: Series, name: str, **labels: str) -> float:
    """One sample (0 when absent)."""
    return series.get((name, frozenset(labels.items())), 0.0)


def total(series: Series, name: str, **labels: str) -> float:
    """The sum over every sample of ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in series.items() if n == name and want <= ls)


async def scrape_text(url: str) -> str:
    """GET /metrics over a connection of its own."""
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=")
        return await r.text()


async def buy_rush(url: str, auth: Auth, sale_id: int, buyers: int) -> Counter[int]:
    """``buyers`` users buy once each over HTTP, on fresh connections; their statuses."""
    return Counter(await buy_rush_by_user(url, auth, sale_id, buyers))


async def buy_rush_by_user(url: str, auth: Auth, sale_id: int, buyers: int) -> list[int]:
    """Like ``buy_rush``, with user ``u{i}``'s status at index i."""
    async with aiohttp.ClientSession() as s:

        async def one(i: int) -> int:
            h = {**auth("viewer", f"u{i}"), "Idempotency-Key": "k", "Connection": "close"}
            async with s.post(f"{url}/api/sales/{sale_id}/buy", headers=h) as r:
                return r.status

        return await asyncio.gather(*[one(i) for i in range(buyers)])


async def test_metrics_add_up_during_a_sale(client: TestClient, auth: Auth) -> None:
    sid = await make_stream(client, auth)
    watchers = [await connect(client, f"/ws/rooms/{sid}") for _ in range(2)]
    sale = await make_sale(client, auth, quantity=30, stream_id=sid)
    url = str(client.make_url("")).rstrip("/")

    before = parse(await scrape_text(url))
    rush = asyncio.create_task(buy_rush_by_user(url, auth, sale["id"], 80))
    during = parse(await scrape_text(url))  # a scrape in the middle of the rush answers
    by_user = await rush
    statuses = Counter(by_user)
    assert statuses == {201: 30, 409: 50}, statuses
    # A retry of a bought order (whoever won one in the rush) is a duplicate, counted as one.
    winner = f"u{by_user.index(201)}"
    r = await client.post(
        f"/api/sales/{sale['id']}/buy", headers={**auth("viewer", winner), "Idempotency-Key": "k"}
    )
    assert r.status == 201 and r.headers["Idempotent-Replayed"] == "true"
    await watchers[0].until(lambda e: e.get("type") == "stock" and e.get("remaining") == 0)

    after = parse(await scrape_text(url))
    assert value(after, "livesell_buys_total", outcome="reserved") == 30
    assert value(after, "livesell_buys_total", outcome="sold_out") == 50
    assert value(after, "livesell_buys_total", outcome="duplicate") == 1
    assert total(during, "livesell_buys_total") <= 81
    # Every buy went through buy.lua (coalesced into fewer calls).
    assert value(after, "livesell_buy_lua_buyers_total") == 81
    calls = value(after, "livesell_buy_lua_call_seconds_count")
    assert 1 <= calls <= 81
    # HTTP by route pattern (not the raw URL) and status.
    http = "livesell_http_request_duration_seconds_count"
    assert value(after, http, route=BUY_ROUTE, method="POST", status="201") == 31
    assert value(after, http, route=BUY_ROUTE, method="POST", status="409") == 50
    assert not any(f"/api/sales/{sale['id']}/buy" in dict(ls).get("route", "") for _, ls in after)
    assert value(before, http, route="/metrics", method="GET", status="200") == 0
    assert value(after, http, route="/metrics", method="GET", status="200") == 2
    # The room: two sockets, and the stock events fanned out to them.
    assert value(after, "livesell_room_sockets") == 2
    assert value(after, "livesell_rooms") == 1
    assert value(after, "livesell_room_deliveries_total") >= 2
    assert value(after, "livesell_room_frames_total") >= 1
    # 30 unpaid reservations hold stock until paid or expired.
    assert value(after, "livesell_sale_holds") == 30
    assert value(after, "livesell_active_sales") == 1
    assert value(after, "livesell_relay_publishers") == 0
    for _ in range(100):  # the in-process persister catches up
        lag = value(parse(await scrape_text(url)), "livesell_persister_lag_events")
        if lag == 0:
            break
        await asyncio.sleep(0.05)
    assert lag == 0
    for _ in range(50):  # the sampler's first tick (every 0.5 s) measures the loop's lag
        series = parse(await scrape_text(url))
        if value(series, "livesell_event_loop_lag_seconds_count") >= 1:
            break
        await asyncio.sleep(0.1)
    assert value(series, "livesell_event_loop_lag_seconds_count") >= 1
    assert value(series, "process_cpu_seconds_total") > 0
    for w in watchers:
        await w.ws.close()


async def test_room_delivery_lag_is_measured_once_per_event(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    url = str(client.make_url("")).rstrip("/")
    viewers = [await connect(client, f"/ws/rooms/{sid}") for _ in range(3)]
    host = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'hostess', 'host')}")
    lag = "livesell_room_delivery_lag_seconds"
    before = parse(await scrape_text(url))
    await host.send("chat", text="hello")
    for v in viewers:  # the stamp is stripped: every viewer decodes the same chat event
        ev = await v.until(lambda e: e["type"] == "chat")
        assert ev["text"] == "hello" and set(ev) >= {"seq", "role", "user_id"}
    after = parse(await scrape_text(url))
    # One observation for the event on this worker, however many sockets it was written to.
    assert value(after, f"{lag}_count") - value(before, f"{lag}_count") == 1
    assert value(after, f"{lag}_bucket", le="+Inf") == value(after, f"{lag}_count")
    assert value(after, f"{lag}_sum") >= value(before, f"{lag}_sum")
    for s in (*viewers, host):
        await s.ws.close()


async def test_holds_expire_and_unmatched_routes(client: TestClient, auth: Auth) -> None:
    sale = await make_sale(client, auth, quantity=5, hold_s=1)
    url = str(client.make_url("")).rstrip("/")
    assert (await buy_rush(url, auth, sale["id"], 3)) == {201: 3}
    r = await client.get("/no/such/page/12345")
    assert r.status == 404
    # A scrape is no snapshot: the holds gauge is read from Redis before the reaper's count
    # of the same expiry may land, so wait for both.
    for _ in range(100):
        series = parse(await scrape_text(url))
        if value(series, "livesell_holds_expired_total") == 3:
            if value(series, "livesell_sale_holds") == 0:
                break
        await asyncio.sleep(0.1)
    assert value(series, "livesell_holds_expired_total") == 3
    assert value(series, "livesell_sale_holds") == 0
    http = "livesell_http_request_duration_seconds_count"
    assert value(series, http, route="unmatched", method="GET", status="404") == 1


async def test_two_workers_report_the_sum(tmp_path: Path, redis_url: str, auth: Auth) -> None:
    port = free_run(3)
    env = serve_env(tmp_path, redis_url)
    stale = tmp_path / "metrics" / "counter_999999.db"  # a previous run's series
    stale.parent.mkdir()
    stale.write_bytes(b"\0" * 64)
    argv = [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--workers", "2"]
    parent = await asyncio.create_subprocess_exec(*argv, env=env)
    url = f"http://127.0.0.1:{port}"
    own = [f"http://127.0.0.1:{port + 1 + i}" for i in (0, 1)]
    try:
        deadline = time.monotonic() + 120  # workers import aiortc & co: slow on a busy machine
        up: set[str] = set()
        while up != set(own) and time.monotonic() < deadline:
            for u in set(own) - up:
                try:
                    await scrape_text(u)
                    up.add(u)
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
        assert up == set(own), f"workers not up: {set(own) - up}"
        assert not stale.exists()  # cleaned before the workers started
        # A file as a worker leaves it when killed between creating and sizing it.
        (tmp_path / "metrics" / "counter_424242.db").touch()
        admin = auth("admin", "ops")
        async with aiohttp.ClientSession() as s:
            r = await s.post(f"{url}/api/products", json={"name": "Hat", "price_cents": 1},
                             headers=admin)  # fmt: skip
            product = await r.json()
            r = await s.post(f"{url}/api/sales", json={"product_id": product["id"],
                             "quantity": 40}, headers=admin)  # fmt: skip
            sale = await r.json()
            r = await s.post(f"{url}/api/sales/{sale['id']}/open", headers=admin)
            assert r.status == 200
        statuses = await buy_rush(url, auth, sale["id"], 120)
        assert statuses == {201: 40, 409: 80}, statuses
        # Whichever worker answers a scrape reports both workers' sum.
        http = "livesell_http_request_duration_seconds_count"
        for u in own:
            series = parse(await scrape_text(u))
            assert value(series, "livesell_buys_total", outcome="reserved") == 40
            assert value(series, "livesell_buys_total", outcome="sold_out") == 80
            assert value(series, "livesell_buy_lua_buyers_total") == 120
            assert value(series, http, route=BUY_ROUTE, method="POST", status="201") == 40
            assert value(series, "livesell_sale_holds") == 40
        pids = [f for f in (tmp_path / "metrics").iterdir() if f.name.startswith("counter_")]
        assert len(pids) >= 2, pids  # both workers wrote series

        # A worker that dies takes its sockets off the gauges; its counted buys stay.
        async with aiohttp.ClientSession() as s:
            r = await s.post(f"{url}/api/streams", json={"id": "show", "host_id": "hana"},
                             headers=admin)  # fmt: skip
            assert r.status == 201
            async with s.get(f"{own[0]}/healthz") as r:
                doomed = (await r.json())["pid"]
            ws = await s.ws_connect(f"{own[0]}/ws/rooms/show")
            await ws.receive(timeout=10)  # the snapshot
            series = parse(await scrape_text(own[1]))  # the other worker sums it in
            for _ in range(50):  # its sampler copies the socket count twice a second
                if value(series, "livesell_room_sockets") == 1:
                    break
                await asyncio.sleep(0.1)
                series = parse(await scrape_text(own[1]))
            assert value(series, "livesell_room_sockets") == 1
            os.kill(doomed, signal.SIGKILL)
            await ws.receive(timeout=10)
            replaced = False
            deadline = time.monotonic() + 120  # until the supervisor has replaced it
            while not replaced and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
                try:
                    async with s.get(f"{own[0]}/healthz") as r:
                        replaced = (await r.json())["pid"] != doomed
                except aiohttp.ClientError:
                    continue
            assert replaced
        series = parse(await scrape_text(own[1]))
        assert value(series, "livesell_room_sockets") == 0
        assert value(series, "livesell_buys_total", outcome="reserved") == 40
    finally:
        parent.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(parent.wait(), 40)
    assert code == 0


async def test_garbage_collector_pauses_are_timed(client: TestClient) -> None:
    url = str(client.make_url("")).rstrip("/")
    before = value(parse(await scrape_text(url)), "livesell_gc_pause_seconds_count", generation="2")
    garbage: list[list[object]] = [[i] for i in range(200_000)]
    for i in range(0, len(garbage), 2):
        garbage[i].append(garbage[i + 1])  # cycles only the collector frees
        garbage[i + 1].append(garbage[i])
    del garbage
    gc.collect(2)
    after = parse(await scrape_text(url))
    assert value(after, "livesell_gc_pause_seconds_count", generation="2") >= before + 1
    # A full pass over 200,000 cyclic lists takes measurable time.
    assert value(after, "livesell_gc_pause_seconds_sum", generation="2") > 0
    assert value(after, "livesell_gc_pause_seconds_bucket", generation="2", le="+Inf") >= 1
