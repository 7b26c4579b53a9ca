"""Fault: a worker SIGKILLed with viewers connected, and the persister killed with it.

`livesell serve --workers 2`, real processes. The killed worker's viewers reconnect through the
public port (to whichever process is alive) with `since` and miss no chat message; buys retried
with their Idempotency-Key get their order; the persister killed while holding read-but-unacked
events is replaced, and its successor claims them (XAUTOCLAIM), so every order reaches SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import msgpack
import psutil
from redis.asyncio import Redis

from flashsale.keys import SaleKeys
from flashsale.persister import GROUP
from tests.conftest import TEST_SECRET
from tests.web.helpers import open_sale
from tests.web.test_workers import free_run, serve_env
from web.auth import Role, TokenSigner

SIGNER = TokenSigner(TEST_SECRET)


def _bearer(user: str, role: Role = Role.VIEWER) -> dict[str, str]:
    return {"Authorization": f"Bearer {SIGNER.mint(user, role)}"}


class Watcher:
    """A room socket that records every chat seq it gets and reconnects with ``since``."""

    def __init__(self, http: aiohttp.ClientSession, url: str, again: str = "") -> None:
        self._http = http
        self.url = url
        self.again = again or url  # where to reconnect
        self.seq = 0
        self.chats: list[int] = []
        self.firsts: list[str] = []  # the first event of each connection
        self.drops = 0
        self.misordered: list[tuple[int, int]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Connect (and reconnect after a drop) in the background."""
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            url = f"{self.again}?since={self.seq}" if self.firsts else self.url
            try:
                async with self._http.ws_connect(url, heartbeat=None) as ws:
                    async for msg in ws:
                        if msg.type != aiohttp.WSMsgType.BINARY:
                            break
                        self._take(msgpack.unpackb(msg.data))
            except aiohttp.ClientError:
                await asyncio.sleep(0.2)  # the worker is gone: nobody listens there yet
                continue
            self.drops += 1

    def _take(self, msg: dict[str, Any]) -> None:
        for ev in msg["events"] if msg["type"] == "batch" else [msg]:
            if len(self.firsts) <= self.drops:
                self.firsts.append(ev["type"])
            if ev["type"] == "chat":
                if ev["seq"] <= self.seq:  # must come in order, each once
                    self.misordered.append((ev["seq"], self.seq))
                self.chats.append(ev["seq"])
            if isinstance(ev.get("seq"), int) and ev["type"] != "resumed":
                self.seq = max(self.seq, ev["seq"])

    async def close(self) -> None:
        """Stop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def _pid(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(f"{url}/healthz", headers={"Connection": "close"}) as r:
        return int((await r.json())["pid"])


async def _buy(http: aiohttp.ClientSession, url: str, sale_id: int, user: str) -> str:
    """Buy until answered (a dead worker's connection error is retried with the same key)."""
    h = {**_bearer(user), "Idempotency-Key": f"k-{user}", "Connection": "close"}
    for _ in range(100):
        try:
            async with http.post(f"{url}/api/sales/{sale_id}/buy", headers=h) as r:
                if r.status == 201:
                    return str((await r.json())["order"]["id"])
                assert r.status in (502, 503), await r.text()
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{user} never got an answer")


async def test_worker_killed_with_viewers_they_resume_and_nothing_is_lost(
    tmp_path: Path, redis_url: str
) -> None:
    port = free_run(3)
    env = serve_env(tmp_path, redis_url) | {
        "LIVESELL_PERSISTER_CLAIM_IDLE_MS": "300",
        "LIVESELL_ROOM_CHAT_BURST": "1000",
        "LIVESELL_ROOM_CHAT_PER_S": "1000",
    }
    prefix = env["LIVESELL_REDIS_PREFIX"]
    argv = [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--workers", "2"]
    parent = await asyncio.create_subprocess_exec(*argv, env=env)
    url = f"http://127.0.0.1:{port}"
    own = [f"http://127.0.0.1:{port + 1 + i}" for i in (0, 1)]
    redis = Redis.from_url(redis_url)
    watchers: list[Watcher] = []
    lock: sqlite3.Connection | None = None
    try:
        async with aiohttp.ClientSession() as http:
            pids: list[int] = []
            deadline = time.monotonic() + 120  # workers import aiortc & co: slow when busy
            while len(pids) < 2 and time.monotonic() < deadline:
                try:
                    pids = [await _pid(http, u) for u in own]
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
            assert len(set(pids)) == 2, "workers not up"
            admin = _bearer("ops", Role.ADMIN)
            r = await http.post(f"{url}/api/streams", json={"id": "show", "host_id": "hana"},
                                headers=admin)  # fmt: skip
            assert r.status == 201, await r.text()
            sale_id = await open_sale(http, url, admin, 500)

            room = "/ws/rooms/show"
            doomed = [Watcher(http, own[0] + room, again=url + room) for _ in range(3)]
            control = Watcher(http, f"{own[1]}/ws/rooms/show")
            watchers = [*doomed, control]
            for w in watchers:
                w.start()
            chatter = await http.ws_connect(f"{own[1]}/ws/rooms/show", headers=_bearer("cara"))
            sent = 0

            async def chat(n: int) -> None:
                nonlocal sent
                for _ in range(n):
                    await chatter.send_bytes(msgpack.packb({"type": "chat", "text": f"m{sent}"}))
                    sent += 1
                    await asyncio.sleep(0.02)

            for _ in range(400):
                if all(w.firsts for w in watchers):
                    break
                await asyncio.sleep(0.05)
            await chat(20)
            first = [_buy(http, url, sale_id, f"a{i}") for i in range(40)]
            orders = set(await asyncio.gather(*first))

            # SQL is locked by another process: the persister reads the next events and holds
            # them, unacked, while its write waits. Kill it then, with worker 0 and its viewers.
            lock = sqlite3.connect(tmp_path / "livesell.db", isolation_level=None)
            lock.execute("BEGIN EXCLUSIVE")
            rush = asyncio.gather(*[_buy(http, url, sale_id, f"b{i}") for i in range(60)])
            events = SaleKeys.of(prefix, sale_id).events
            dead_consumer = ""
            for _ in range(200):
                with contextlib.suppress(Exception):
                    for c in await redis.xinfo_consumers(events, GROUP):
                        if c["pending"]:
                            dead_consumer = c["name"].decode()
                if dead_consumer:
                    break
                await asyncio.sleep(0.05)
            assert dead_consumer, "the persister never held events"
            kids = psutil.Process(parent.pid).children()
            persister = [p for p in kids if "persist" in p.cmdline()]
            assert len(persister) == 1
            chatting = asyncio.create_task(chat(40))  # the room goes on meanwhile
            persister[0].kill()
            os.kill(pids[0], signal.SIGKILL)
            lock.execute("ROLLBACK")
            lock.close()
            lock = None
            orders |= set(await rush)
            late = [_buy(http, url, sale_id, f"c{i}") for i in range(20)]
            orders |= set(await asyncio.gather(*late))
            await chatting

            # Every viewer has every message, once and in order; the dropped ones resumed.
            for _ in range(200):
                if all(len(w.chats) == sent for w in watchers):
                    break
                await asyncio.sleep(0.05)
            for w in watchers:
                assert not w.misordered, w.misordered
                assert w.chats == control.chats and len(w.chats) == sent, (w.firsts, len(w.chats))
            for w in doomed:
                assert w.drops >= 1 and w.firsts[1] == "resumed", w.firsts

            # Every order reaches SQL, the dead consumer's pending events were claimed.
            assert len(orders) == 120
            report: dict[str, Any] = {}
            for _ in range(200):
                r = await http.get(f"{url}/api/sales/{sale_id}/audit", headers=admin)
                report = await r.json()
                if report.get("ok") and report["figures"]["sql_orders"] == 120:
                    break
                await asyncio.sleep(0.1)
            assert report.get("ok") and report["figures"]["sql_orders"] == 120, report
            consumers = await redis.xinfo_consumers(events, GROUP)
            left = {c["name"].decode(): c["pending"] for c in consumers}
            assert left.get(dead_consumer, 0) == 0, left
            assert (await redis.xpending(events, GROUP))["pending"] == 0
            assert await _pid(http, own[1]) == pids[1]  # the other worker never stopped
            await chatter.close()
    finally:
        if lock is not None:
            lock.close()
        for w in watchers:
            await w.close()
        await redis.aclose()
        parent.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(parent.wait(), 40)
    assert code == 0
