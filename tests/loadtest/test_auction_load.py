"""The auction load generator against a real server (in-process app, real port)."""

from __future__ import annotations

from aiohttp.test_utils import TestClient

from loadtest.auction_load import run_auction
from tests.loadtest.test_flashsale_load import _env
from web.settings import Settings


async def test_auction_load_gives_each_lot_one_winner(
    client: TestClient, settings: Settings
) -> None:
    """5 lots, 200 bids: each lot closes with one winner and audits clean; rates reported."""
    url = str(client.make_url("/"))
    result = await run_auction(url, 5, 200, 8, duration_s=3, env=_env(settings))
    for key in ("rate", "p99_ms", "lots_with_one_winner", "audit_ok"):
        assert key in result, key
    assert result["lots_with_one_winner"] == 5 and result["audit_ok"] is True, result
    assert result["unexpected_errors"] == 0 and result["accepted"] >= 5
    assert result["flashsale"]["oversold"] == 0 and result["ratio_to_flashsale"] > 0
