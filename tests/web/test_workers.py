"""``livesell serve --workers N``: one port, several processes, one audit-clean sale."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from tests.conftest import TEST_SECRET
from tests.stream.peers import HostPeer, ViewerPeer
from tests.web.helpers import open_sale
from web.auth import Role, TokenSigner

SDP = {"Content-Type": "application/sdp"}


def free_run(n: int) -> int:
    """A port p such that p .. p+n-1 are all free on loopback."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = int(s.getsockname()[1])
        if base + n > 65535:
            continue
        try:
            socks = []
            for p in range(base, base + n):
                t = socket.socket()
                socks.append(t)
                t.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for t in socks:
                t.close()
    raise RuntimeError("no free run of ports")


def serve_env(data_dir: Path, redis_url: str) -> dict[str, str]:
    """The environment of a `livesell serve` child with its own data dir and key prefix."""
    return {
        **os.environ,
        "LIVESELL_REDIS_URL": redis_url,
        "LIVESELL_REDIS_PREFIX": f"w{uuid.uuid4().hex[:6]}",
        "LIVESELL_DATA_DIR": str(data_dir),
        "LIVESELL_SECRET": TEST_SECRET,
        "LIVESELL_LOG_LEVEL": "WARNING",
    }


async def _get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as s, s.get(url, headers={"Connection": "close"}) as r:
        return await r.json()


async def test_workers_share_a_port_and_sell_exactly_once(tmp_path: Path, redis_url: str) -> None:
    port = free_run(3)
    env = serve_env(tmp_path, redis_url)
    argv = [sys.executable, "-m", "web.cli", "serve", "--port", str(port), "--workers", "2"]
    parent = await asyncio.create_subprocess_exec(*argv, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        own: list[int] = []
        for _ in range(200):  # until both workers answer on their own ports
            try:
                own = [
                    (await _get_json(f"http://127.0.0.1:{port + 1 + i}/healthz"))["pid"]
                    for i in (0, 1)
                ]
                break
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
        assert len(set(own)) == 2, own
        pids = Counter([(await _get_json(f"{url}/healthz"))["pid"] for _ in range(40)])
        assert len(pids) == 2, pids  # the kernel spreads connections over both workers
        assert set(own) == set(pids)

        signer = TokenSigner(TEST_SECRET)
        admin = {"Authorization": f"Bearer {signer.mint('ops', Role.ADMIN)}"}
        async with aiohttp.ClientSession() as s:
            sale_id = await open_sale(s, url, admin, 100)

            async def buy(i: int) -> int:
                h = {
                    "Authorization": f"Bearer {signer.mint(f'u{i}', Role.VIEWER)}",
                    "Idempotency-Key": "k",
                    "Connection": "close",  # new connections: both workers take buys
                }
                async with s.post(f"{url}/api/sales/{sale_id}/buy", headers=h) as resp:
                    return resp.status

            statuses = Counter(await asyncio.gather(*[buy(i) for i in range(300)]))
            assert statuses == {201: 100, 409: 200}, statuses
            r = await s.get(f"{url}/api/sales/{sale_id}/audit", headers=admin)
            report = await r.json()
            assert r.status == 200 and report["figures"]["sql_orders"] == 100, report

            # A viewer who reaches the worker without the publisher is sent to the one with it.
            r = await s.post(
                f"{url}/api/streams", json={"id": "show", "host_id": "hana"}, headers=admin
            )
            assert r.status == 201
            host, viewer = HostPeer(), ViewerPeer()
            try:
                whip = {**SDP, "Authorization": f"Bearer {signer.mint('hana', Role.HOST)}"}
                first = f"http://127.0.0.1:{port + 1}"
                r = await s.post(f"{first}/whip/show", data=await host.offer(), headers=whip)
                assert r.status == 201, await r.text()
                # The session's address is its worker's own, not the shared port.
                assert r.headers["Location"].startswith(f"{first}/whip/show/")
                await host.accept(await r.text())
                r = await s.post(
                    f"http://127.0.0.1:{port + 2}/whep/show",
                    data=await viewer.offer(),
                    headers=SDP,
                    allow_redirects=False,
                )
                assert r.status == 307 and r.headers["Location"] == f"{first}/whep/show"
                r = await s.post(r.headers["Location"], data=await viewer.offer(), headers=SDP)
                assert r.status == 201, await r.text()
                session = r.headers["Location"]
                assert session.startswith(f"{first}/whep/show/")
                await viewer.accept(await r.text())
                await viewer.wait_frames(5, within_s=10)
                async with s.delete(session) as r:  # reaches the worker holding the session
                    assert r.status == 200
            finally:
                await viewer.close()
                await host.close()

        # A worker that dies is replaced.
        os.kill(own[0], signal.SIGKILL)
        for _ in range(100):
            await asyncio.sleep(0.1)
            try:
                again = (await _get_json(f"http://127.0.0.1:{port + 1}/healthz"))["pid"]
            except aiohttp.ClientError:
                continue
            if again != own[0]:
                break
        assert again != own[0]
        children = psutil.Process(parent.pid).children()
    finally:
        parent.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(parent.wait(), 40)
    assert code == 0
    assert not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
