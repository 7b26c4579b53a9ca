"""A real `livesell serve` (real Redis, real SQLite) seeded with a show, sales and orders to fuzz.

The fuzz tests are synchronous (Hypothesis drives them), so the server runs in its own process
and its log goes to a file the tests read for tracebacks.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import TEST_SECRET
from web.auth import Role, TokenSigner


@dataclass
class LiveServer:
    """The running server, its log, the tokens the fuzzers use and the ids they aim at."""

    url: str
    port: int
    log: Path
    tokens: dict[str, str]
    ids: dict[str, list[str]] = field(default_factory=dict)
    sales: list[int] = field(default_factory=list)

    def auth(self, who: str) -> dict[str, str]:
        """An Authorization header for one of the minted tokens."""
        return {"Authorization": f"Bearer {self.tokens[who]}"}

    def log_text(self) -> str:
        """Everything the server logged so far."""
        return self.log.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed(live: LiveServer) -> None:
    """A show hosted by hana with open sales, orders, a lot, a draw, a coupon and a group."""
    s = requests.Session()

    def post(path: str, body: dict[str, Any], who: str = "host", status: int = 201,
             key: str | None = None) -> dict[str, Any]:  # fmt: skip
        headers = live.auth(who) | ({"Idempotency-Key": key} if key else {})
        r = s.post(live.url + path, json=body, headers=headers)
        assert r.status_code == status, (path, r.status_code, r.text)
        return r.json()  # type: ignore[no-any-return]

    product = post("/api/products", {"name": "Hat", "price_cents": 500})["id"]
    post("/api/streams", {"id": "show", "title": "Hats"})
    sales = []
    for _ in range(3):  # the fuzzer may close one; the others still sell
        sale = {"product_id": product, "quantity": 500, "per_user_limit": 50, "stream_id": "show"}
        sales.append(post("/api/sales", sale)["id"])
        post(f"/api/sales/{sales[-1]}/open", {}, status=200)
    live.sales = list(sales)
    orders = [
        post(f"/api/sales/{sales[0]}/buy", {"qty": 1}, who, key=f"seed-{i}")["order"]["id"]
        for i, who in enumerate(("viewer", "viewer", "other"))
    ]
    post(f"/api/orders/{orders[1]}/pay", {}, "viewer", status=200)
    post(f"/api/sales/{sales[1]}/group-offer", {"price_cents": 300, "size": 3})
    group = post(f"/api/sales/{sales[1]}/groups", {}, "viewer", key="seed-g")["group"]["id"]
    coupon = post(f"/api/sales/{sales[2]}/coupons", {"kind": "amount", "value": 1, "count": 50})
    lot = {"product_id": product, "start_cents": 100, "increment_cents": 10, "duration_s": 600}
    lot_id = post("/api/lots", {**lot, "stream_id": "show"})["id"]
    post(f"/api/lots/{lot_id}/open", {}, status=200)
    draw = post("/api/sales", {"product_id": product, "quantity": 5, "stream_id": "show"})["id"]
    post(f"/api/sales/{draw}/draw", {"window_s": 600})
    live.ids = {
        "sale_id": [str(i) for i in [*sales, lot_id, draw]],
        "lot_id": [str(lot_id)],
        "product_id": [str(product)],
        "stream_id": ["show"],
        "order_id": orders,
        "group_id": [group],
        "coupon_id": [coupon["id"]],
        "host_id": ["hana"],
        "action": ["pin", "announce", "slow_mode", "mute", "ban", "promote", "banned_words"],
    }


def audit_every_sale(live: LiveServer) -> int:
    """Audit every sale (the fuzzers may have made some) as admin; how many were audited."""
    audited, misses, sale_id = 0, 0, 0
    while misses < 20:  # sale ids are sequential: a run of 20 missing ones is past the last
        sale_id += 1
        r = requests.get(f"{live.url}/api/sales/{sale_id}/audit", headers=live.auth("admin"))
        if r.status_code == 404:
            misses += 1
            continue
        misses = 0
        assert r.status_code == 200 and r.json()["ok"], (sale_id, r.status_code, r.text)
        audited += 1
    assert audited >= len(live.sales)
    return audited


@pytest.fixture(scope="package")
def live_server(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Iterator[LiveServer]:
    """`livesell serve` on a free loopback port, seeded; stopped after the package's tests."""
    data = tmp_path_factory.mktemp("fuzz-server")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESELL_")}
    env.update(
        LIVESELL_REDIS_URL=redis_url,
        LIVESELL_DATABASE_URL=f"sqlite+aiosqlite:///{data / 'livesell.db'}",
        LIVESELL_SECRET=TEST_SECRET,
        LIVESELL_DATA_DIR=str(data),
        LIVESELL_REDIS_PREFIX=f"f{uuid.uuid4().hex[:8]}",
        LIVESELL_PERSISTER="inprocess",
        LIVESELL_REAPER_INTERVAL_S="0.2",
        LIVESELL_PERSISTER_INTERVAL_S="0.05",
    )
    log = data / "server.log"
    argv = [sys.executable, "-m", "web.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    signer = TokenSigner(TEST_SECRET)
    tokens = {
        "viewer": signer.mint("alice", Role.VIEWER),
        "other": signer.mint("bob", Role.VIEWER),
        "host": signer.mint("hana", Role.HOST),
        "other_host": signer.mint("kim", Role.HOST),
        "admin": signer.mint("ops", Role.ADMIN),
    }
    live = LiveServer(f"http://127.0.0.1:{port}", port, log, tokens)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, live.log_text()
            try:
                if requests.get(f"{live.url}/readyz", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, live.log_text()
            time.sleep(0.1)
        _seed(live)
        yield live
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
