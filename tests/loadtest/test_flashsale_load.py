"""The flash-sale load generator against a real server (in-process app on a real port)."""

from __future__ import annotations

import asyncio
import os

import aiohttp
from aiohttp.test_utils import TestClient

from loadtest.flashsale_load import FlashsaleConfig, run_flashsale
from loadtest.flashsale_verdict import verdict
from tests.loadtest.helpers import bounce, start_server
from web.settings import Settings

REQUIRED = ("attempts", "sold", "oversold", "errors", "buys_per_s", "latency_ms", "audit_ok")


def _env(settings: Settings) -> dict[str, str]:
    # `livesell token` must sign with the server's secret; nothing else of ours leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESELL_")}
    env["LIVESELL_SECRET"] = settings.secret
    env["LIVESELL_DATA_DIR"] = str(settings.data_dir)
    return env


async def test_load_sells_exactly_the_stock(client: TestClient, settings: Settings) -> None:
    """300 attempts by 100 buyers (limit 2) for 50 units: 50 sold, none oversold, audit passes."""
    cfg = FlashsaleConfig(
        url=str(client.make_url("/")), attempts=300, users=100, stock=50, limit=2,
        connections=16, env=_env(settings),
    )  # fmt: skip
    result = await run_flashsale(cfg)
    for key in REQUIRED:
        assert key in result, key
    assert set(result["latency_ms"]) >= {"p50", "p99", "max"}
    assert result["attempts"] == 300
    assert result["sold"] == 50
    assert result["oversold"] == 0
    assert result["errors"] == 0
    assert result["audit_ok"] is True
    assert result["audit_oversold"] == 0
    assert result["sold_matches_audit"] is True
    assert result["status"] == {"201": 50, "409": 250}


async def test_open_model_hits_the_per_user_limit(client: TestClient, settings: Settings) -> None:
    """At a fixed arrival rate, 20 buyers x 3 attempts with limit 2 buy 40 units, not 60."""
    cfg = FlashsaleConfig(
        url=str(client.make_url("/")), attempts=60, users=20, stock=100, limit=2, rate=300,
        connections=8, env=_env(settings),
    )  # fmt: skip
    result = await run_flashsale(cfg)
    assert result["model"] == "open"
    assert result["sold"] == 40
    assert result["codes"] == {"limit_reached": 20}
    assert result["errors"] == 0
    assert result["audit_ok"] is True


async def test_a_server_dying_mid_rush_gives_a_verdict_not_a_traceback(
    settings: Settings,
) -> None:
    """The server goes away during the rush and comes back: every order seen is still there."""
    server = await start_server(settings)
    cfg = FlashsaleConfig(
        url=f"http://127.0.0.1:{server.port}", attempts=1500, users=1500, stock=1000, rate=300,
        connections=8, env=_env(settings), recover_s=20,
    )  # fmt: skip
    run = asyncio.create_task(run_flashsale(cfg))
    async with aiohttp.ClientSession() as s:  # close the server once the rush has begun
        for _ in range(200):
            async with s.get(f"{cfg.url}/api/sales/1") as r:
                if r.status == 200 and (await r.json())["remaining"] < 900:
                    break
            await asyncio.sleep(0.05)
    result = await bounce(server, settings, 1.0, run)
    assert result["server_unreachable"] is True, result["status"]
    assert result["orders"] == len(result["orders_seen"]) > 0
    assert result["audit_ok"] is True and result["lost"] == 0, result.get("audit_error")
    code, reason = verdict(result)
    assert code == 1 and "stopped answering" in reason
