"""``livesell-loadtest show --rehearse``: a synthetic audience in a host's practice, as ops run it.

The CLI runs in a process of its own (it installs uvloop and runs its own loop); the test plays
the host in the real server: it opens a sale by hand once the audience is in.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from inventory.ledger import Ledger
from inventory.rehearsal import is_rehearsal_sale
from tests.flashsale.helpers import Auth
from tests.loadtest.test_flashsale_load import _env
from web.keys import DATABASE
from web.settings import Settings

HOST = ("host", "hana")


async def _cli(client: TestClient, settings: Settings, *args: str) -> asyncio.subprocess.Process:
    argv = [sys.executable, "-m", "loadtest.cli", "show", "--url", str(client.make_url("/")),
            "--viewers", "8", "--duration", "5", "--ramp", "1", "--churn", "0",
            "--chat-rate", "4", "--buy-share", "1", "--recover", "10", "--hold", "1",
            # The server shares this machine's cores with the generator: a loose lag bound.
            "--max-lag", "1000", *args]  # fmt: skip
    return await asyncio.create_subprocess_exec(
        *argv, env=_env(settings), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


async def _stream(client: TestClient, auth: Auth, sid: str, rehearsal: bool) -> None:
    body = {"id": sid, "title": "Practice", "rehearsal": rehearsal}
    r = await client.post("/api/streams", json=body, headers=auth(*HOST))
    assert r.status == 201, await r.text()


async def _host_sells(client: TestClient, auth: Auth, sid: str, viewers: int) -> dict[str, Any]:
    """Once the audience is in the room, the host makes and opens a sale of 4 units."""
    host = auth(*HOST)
    for _ in range(300):
        stats = await (await client.get(f"/api/streams/{sid}/stats", headers=host)).json()
        if stats["viewers"] >= viewers:
            break
        await asyncio.sleep(0.1)
    r = await client.post("/api/products", json={"name": "Mug", "price_cents": 500}, headers=host)
    product = await r.json()
    body = {"product_id": product["id"], "quantity": 4, "stream_id": sid, "hold_s": 1}
    sale = await (await client.post("/api/sales", json=body, headers=host)).json()
    r = await client.post(f"/api/sales/{sale['id']}/open", headers=host)
    assert r.status == 200, await r.text()
    return dict(sale)


async def test_a_rehearsal_run_flags_its_orders_and_posts_its_report(
    client: TestClient, settings: Settings, auth: Auth, tmp_path: Path
) -> None:
    """The audience buys in the host's sale; orders are flagged; the studio lists the report."""
    sid = "practice"
    await _stream(client, auth, sid, True)
    host_token = auth(*HOST)["Authorization"].removeprefix("Bearer ")
    out = tmp_path / "show.json"
    proc = await _cli(client, settings, "--rehearse", sid, "--token", host_token,
                      "--json", str(out), "--html", str(tmp_path / "show.html"))  # fmt: skip
    sale = await _host_sells(client, auth, sid, 8)
    stdout, stderr = await asyncio.wait_for(proc.communicate(), 120)
    text = stdout.decode() + stderr.decode()
    assert proc.returncode == 0, text[-3000:]
    assert "Traceback" not in text
    report = json.loads(out.read_text())
    assert report["counts"]["orders"] >= 4
    assert {o["sale"] for o in report["orders"].values()} == {sale["id"]}
    assert report["audit"]["ok"] is True and report["audit"]["oversold"] == 0
    posted = report["rehearsal_report"]
    assert re.search(rf"rehearsal report: http://\S+/api/streams/{sid}/rehearsal-reports/", text)
    # Every order the audience got is a rehearsal's, and the show's figures leave them out.
    ledger, db = Ledger(client.app[DATABASE]), client.app[DATABASE]
    for oid in report["orders"]:
        for _ in range(100):
            order = await ledger.get_order(oid)
            if order is not None:
                break
            await asyncio.sleep(0.05)
        assert order is not None and await is_rehearsal_sale(db, order.sale_id)
    # The generator brought only the audience: the host's sale is the stream's one sale.
    assert [s.id for s in await ledger.recent_sales(stream_id=sid)] == [sale["id"]]
    host = auth(*HOST)
    analytics = await (await client.get(f"/api/streams/{sid}/analytics", headers=host)).json()
    assert analytics["totals"]["orders"] == 0 and analytics["totals"]["gmv_cents"] == 0
    stats = await (await client.get(f"/api/streams/{sid}/stats", headers=host)).json()
    # The practice's own studio still shows every one of them (one unit each).
    units = sum(stats[f"{k}_units"] for k in ("reserved", "paid", "cancelled", "expired"))
    assert units == len(report["orders"])
    # The studio's list links the uploaded report, served sandboxed.
    r = await client.get(f"/api/streams/{sid}/rehearsal-reports", headers=host)
    (listed,) = (await r.json())["reports"]
    assert listed["id"] == posted["id"] and listed["orders"] == report["counts"]["orders"]
    r = await client.get(listed["html_url"])
    assert r.status == 200 and "<svg" in await r.text()
    assert r.headers["Content-Security-Policy"].startswith("sandbox;")


async def test_a_run_refuses_a_stream_that_is_no_rehearsal(
    client: TestClient, settings: Settings, auth: Auth
) -> None:
    """A real show is never sent a synthetic audience: one line, exit 1, nobody joined."""
    await _stream(client, auth, "real", False)
    proc = await _cli(client, settings, "--rehearse", "real")
    _, stderr = await asyncio.wait_for(proc.communicate(), 120)
    err = stderr.decode()
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert err.startswith("show: stream real is not a rehearsal"), err
    stats = await (await client.get("/api/streams/real/stats", headers=auth(*HOST))).json()
    assert stats["viewers"] == 0
