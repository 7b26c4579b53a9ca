"""Room-socket steps of ``python -m loadtest.bench flashsale``: (e), (f), joins, a bare ceiling.

(e) ``socket``: buys over open room sockets at the maximum rate: every socket sends its
    buys at once (within the room's per-socket frame burst), timed to the last answer;
(f) ``burst``: N connected viewers tap buy once, all at once, for half as many units: the
    time from the first tap until every one has its answer, and its p99;
``joins``: N viewers arriving at R per second (open model): join-to-snapshot p50/p99 from
    each join's intended time, and the server's CPU per join;
``bare``: ``GET /healthz`` at the maximum rate with the same HTTP client as (c), so
    ``http_vs_bare`` says how close the buy is to what the server does for an empty endpoint.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import msgpack
import psutil
from hdrh.histogram import HdrHistogram
from prometheus_client.parser import text_string_to_metric_families

from loadtest.benchprocs import Server
from loadtest.chat_load import WsClient, open_sockets
from loadtest.flashsale_load import livesell_command, mint_tokens
from loadtest.rawhttp import RawPool


def _pid(server: Server) -> int:
    assert server.proc is not None, "the server is not running"
    return server.proc.pid


def _hist() -> HdrHistogram:
    return HdrHistogram(1, 600_000_000, 3)


def _ms(h: HdrHistogram) -> dict[str, float]:
    return {
        "p50": h.get_value_at_percentile(50) / 1000,
        "p99": h.get_value_at_percentile(99) / 1000,
        "max": h.get_max_value() / 1000,
    }


class _Cpu:
    """CPU seconds of the server process (and its children) over a window."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.start = self._now()

    def _now(self) -> float:
        return float(sum(self.proc.cpu_times()[:2]))

    def used(self) -> float:
        """Seconds of CPU since the start."""
        return self._now() - self.start


async def _sale(server: Server, admin: str, stock: int, limit: int) -> tuple[str, int]:
    """A stream with an open sale of ``stock`` units in it."""
    hdr = {"Authorization": f"Bearer {admin}"}
    sid = f"bench-{uuid.uuid4().hex[:8]}"
    async with aiohttp.ClientSession(headers=hdr) as s:
        await (await s.post(f"{server.url}/api/streams", json={"id": sid})).read()
        r = await s.post(f"{server.url}/api/products", json={"name": "Lamp", "price_cents": 1})
        product = await r.json()
        body = {"product_id": product["id"], "quantity": stock, "per_user_limit": limit,
                "stream_id": sid, "hold_s": 3600, "duration_s": 3600}  # fmt: skip
        sale = await (await s.post(f"{server.url}/api/sales", json=body)).json()
        r = await s.post(f"{server.url}/api/sales/{sale['id']}/open")
        if r.status != 200:
            raise SystemExit(f"open sale: {r.status} {await r.text()}")
    return sid, int(sale["id"])


class _Answers:
    """Counts buy answers on every socket and times them from each socket's send."""

    def __init__(self, expected: int, sockets: int) -> None:
        self.expected = expected
        self.expected_sockets = sockets
        self.hist = _hist()
        self.codes: dict[str, int] = {}
        self.ok = 0
        self.got = 0
        self.last = 0
        self.sent_at: dict[int, int] = {}
        self.done = asyncio.get_running_loop().create_future()
        self.snapshots = 0
        self.joined = asyncio.get_running_loop().create_future()

    def on_frame(self, sock_id: int, payload: bytes, now: int) -> None:
        """One frame on socket ``sock_id``."""
        msg = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        for ev in msg.get("events", []) if msg.get("type") == "batch" else [msg]:
            kind = ev.get("type")
            if kind == "snapshot":
                self.snapshots += 1
                if self.snapshots >= self.expected_sockets and not self.joined.done():
                    self.joined.set_result(None)
                continue
            if kind == "buy_result":
                self.ok += 1
            elif kind == "error" and str(ev.get("ref", "")).startswith("b"):
                code = str(ev.get("code"))
                self.codes[code] = self.codes.get(code, 0) + 1
            else:
                continue
            self.got += 1
            self.last = now
            self.hist.record_value(max(1, (now - self.sent_at[sock_id]) // 1000))
            if self.got >= self.expected and not self.done.done():
                self.done.set_result(None)


async def _connect_buyers(
    server: Server, sid: str, tokens: list[str], answers: _Answers
) -> list[WsClient]:
    paths = [f"/ws/rooms/{sid}?token={t}" for t in tokens]

    def handler(i: int) -> Any:
        return lambda payload, now: answers.on_frame(i, payload, now)

    socks = await open_sockets(server.url, paths, handler, concurrency=200, per_socket=True)
    answers.expected_sockets = len(socks)
    if answers.snapshots >= len(socks) and not answers.joined.done():
        answers.joined.set_result(None)
    # Every join done before the first tap: a join still being served would be charged to the
    # buys (a fixed 1 s wait left about 4% of the buy window's samples in joins).
    await asyncio.wait_for(answers.joined, 120)
    await asyncio.sleep(0.2)
    return socks


async def socket_buys(server: Server, admin: str, viewers: int, per_socket: int) -> dict[str, Any]:
    """(e): ``viewers`` sockets each send ``per_socket`` buys at once; buys/s to the last answer."""
    sid, sale_id = await _sale(server, admin, viewers * per_socket, per_socket)
    tokens = await mint_tokens(
        livesell_command(), "viewer", f"e{uuid.uuid4().hex[:6]}", viewers, server.env
    )
    answers = _Answers(viewers * per_socket, viewers)
    socks = await _connect_buyers(server, sid, tokens, answers)
    answers.expected = len(socks) * per_socket
    cpu = _Cpu(_pid(server))
    start = time.monotonic_ns()
    for i, s in enumerate(socks):
        answers.sent_at[i] = time.monotonic_ns()
        for k in range(per_socket):
            s.send_event({"type": "buy", "sale_id": sale_id, "key": f"k{i}-{k}", "ref": f"b{k}"})
    await asyncio.wait_for(answers.done, 120)
    span = (answers.last - start) / 1e9
    server_cpu = cpu.used()
    for s in socks:
        s.close()
    return {
        "sockets": len(socks), "buys": answers.ok, "codes": answers.codes,
        "buys_per_s": round(answers.ok / span, 1), "seconds": round(span, 3),
        "latency_ms": _ms(answers.hist),
        "server_cpu_us_per_buy": round(server_cpu * 1e6 / max(1, answers.ok), 1),
    }  # fmt: skip


async def _gc_pauses(url: str) -> dict[str, tuple[float, float]]:
    """The server's garbage-collector pauses so far: generation -> (count, seconds)."""
    async with aiohttp.ClientSession() as s, s.get(f"{url}/metrics") as r:
        text = await r.text()
    out: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        if family.name != "livesell_gc_pause_seconds":
            continue
        for sample in family.samples:
            slot = {"livesell_gc_pause_seconds_count": 0, "livesell_gc_pause_seconds_sum": 1}
            if sample.name in slot:
                gen = sample.labels["generation"]
                out.setdefault(gen, [0.0, 0.0])[slot[sample.name]] += sample.value
    return {g: (c, t) for g, (c, t) in out.items()}


async def burst(server: Server, admin: str, viewers: int) -> dict[str, Any]:
    """(f): ``viewers`` connected sockets tap buy once, at once, for ``viewers // 2`` units.

    The server's garbage-collector pauses between the first tap and the last answer are
    reported too (``gc_pauses``): a full collection with 5,000 sockets open takes long enough
    to decide whether a burst is slow.
    """
    stock = viewers // 2
    sid, sale_id = await _sale(server, admin, stock, 1)
    tokens = await mint_tokens(
        livesell_command(), "viewer", f"f{uuid.uuid4().hex[:6]}", viewers, server.env
    )
    answers = _Answers(viewers, viewers)
    socks = await _connect_buyers(server, sid, tokens, answers)
    answers.expected = len(socks)
    gc_before = await _gc_pauses(server.url)
    first = time.monotonic_ns()
    for i, s in enumerate(socks):
        answers.sent_at[i] = time.monotonic_ns()
        s.send_event({"type": "buy", "sale_id": sale_id, "key": f"t{i}", "ref": "b1"})
    sent_s = (time.monotonic_ns() - first) / 1e9
    try:
        await asyncio.wait_for(answers.done, 120)
    except TimeoutError:
        pass
    gc_after = await _gc_pauses(server.url)
    gc_pauses = {
        f"gen{g}": {"count": int(c - gc_before.get(g, (0, 0))[0]),
                    "ms": round((t - gc_before.get(g, (0, 0))[1]) * 1000, 1)}
        for g, (c, t) in sorted(gc_after.items())
    }  # fmt: skip
    for s in socks:
        s.close()
    return {
        "viewers": len(socks), "stock": stock, "sold": answers.ok, "codes": answers.codes,
        "answered": answers.got, "taps_sent_within_s": round(sent_s, 3),
        "last_answer_after_first_tap_s": round((answers.last - first) / 1e9, 3),
        "latency_ms": _ms(answers.hist), "oversold": max(0, answers.ok - stock),
        "gc_pauses": gc_pauses,
    }  # fmt: skip


async def join_storm(server: Server, viewers: int, rate: float) -> dict[str, Any]:
    """N anonymous viewers arrive at ``rate``/s; join-to-snapshot latency and server CPU/join."""
    admin = (await mint_tokens(livesell_command(), "admin", "storm-host", None, server.env))[0]
    sid, _ = await _sale(server, admin, 10, 1)
    parts = urlsplit(server.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    hist = _hist()
    failed = 0
    socks: list[WsClient] = []
    cpu = _Cpu(_pid(server))
    start = time.monotonic_ns()

    async def one(i: int) -> None:
        nonlocal failed
        due = start + int(i / rate * 1e9)
        await asyncio.sleep(max(0.0, (due - time.monotonic_ns()) / 1e9))
        got = loop.create_future()

        def first(payload: bytes, now: int) -> None:
            if not got.done():
                got.set_result(now)

        try:
            _, sock = await loop.create_connection(
                lambda: WsClient(f"{host}:{port}", f"/ws/rooms/{sid}", first), host, port
            )
            socks.append(sock)
            now = await asyncio.wait_for(got, 60)
            hist.record_value(max(1, (now - due) // 1000))
        except (OSError, TimeoutError, ConnectionError):
            failed += 1

    await asyncio.gather(*(one(i) for i in range(viewers)))
    wall = (time.monotonic_ns() - start) / 1e9
    server_cpu = cpu.used()
    for s in socks:
        s.close()
    return {
        "viewers": viewers, "rate": rate, "failed": failed, "seconds": round(wall, 2),
        "snapshot_ms": _ms(hist), "server_cpu_ms_per_join": round(server_cpu * 1e3 / viewers, 3),
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
    }  # fmt: skip


async def bare(server: Server, requests: int, connections: int) -> dict[str, Any]:
    """``GET /healthz`` at the maximum rate with the HTTP client of (c)."""
    parts = urlsplit(server.url)
    data = f"GET /healthz HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode()
    ok = 0
    last = 0.0

    def on_reply(status: int, body: bytes, tag: Any, sent_at: float) -> None:
        nonlocal ok, last
        ok += status == 200
        last = time.perf_counter()

    pool = RawPool(parts.hostname or "127.0.0.1", parts.port or 80, connections, on_reply)
    await pool.open()
    start = time.perf_counter()
    try:
        for _ in range(requests):
            pool.submit(data, None)
        await asyncio.wait_for(pool.drain(), 300)
    finally:
        pool.close()
    return {"requests": ok, "requests_per_s": round(ok / max(1e-9, last - start), 1)}
