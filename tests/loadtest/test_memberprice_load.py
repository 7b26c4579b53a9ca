"""The member-price load generator against a real server (in-process app, real port)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from loadtest import cli
from loadtest.memberprice_load import MEMBER_PRICE, _check_prices, is_member, run_memberprice
from tests.loadtest.test_flashsale_load import _env
from web.settings import Settings


async def test_members_pay_the_member_price_and_the_rest_the_sale_price(
    client: TestClient, settings: Settings
) -> None:
    """40 buyers, half of them members, 30 units: each order at its buyer's price, none extra."""
    url = str(client.make_url("/"))
    result = await run_memberprice(url, 40, 0.5, stock=30, connections=8, rounds=1,
                                   env=_env(settings))  # fmt: skip
    for key in ("rate", "p99_ms", "oversold", "audit_ok", "ratio_to_flashsale", "prices_ok"):
        assert key in result, key
    assert result["members"] == 20 and result["oversold"] == 0 and result["audit_ok"] is True
    assert result["prices_ok"] is True and result["price_mismatches"] == 0
    # Members and others interleave, so both kinds bought before the stock ran out.
    assert result["member_orders"] + result["other_orders"] == 30
    assert result["member_orders"] >= 10 and result["other_orders"] >= 10
    (round_,) = result["rounds_detail"]
    assert round_["member_sale"]["codes"] == {"sold_out": 10}
    assert round_["flashsale"]["orders"] == 30 and round_["flashsale"]["member_orders"] == 0
    assert result["ratio_to_flashsale"] > 0


def test_the_price_check_catches_a_wrong_price() -> None:
    """A member charged the sale's price, or a stranger the member's, is a mismatch."""
    seen = {"o1": "amy", "o2": "bob"}
    right = {"o1": ("amy", MEMBER_PRICE), "o2": ("bob", 1999)}
    assert _check_prices(right, seen, {"amy"})["price_mismatches"] == 0
    assert _check_prices(right, seen, {"bob"})["price_mismatches"] == 2
    assert _check_prices({"o1": ("amy", MEMBER_PRICE)}, seen, {"amy"})["price_mismatches"] == 1
    assert [is_member(i, 0.5) for i in range(4)] == [False, True, False, True]
    assert sum(is_member(i, 0.25) for i in range(100)) == 25


def test_loadtest_help_lists_the_memberprice_options(capsys: pytest.CaptureFixture[str]) -> None:
    """``livesell-loadtest memberprice --help`` documents its options."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["memberprice", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--buyers", "--members-share", "--stock", "--json", "--url"):
        assert option in out
