"""The group-buy and coupon load generators against a real server (in-process app, real port)."""

from __future__ import annotations

import pytest
from aiohttp.test_utils import TestClient

from loadtest import cli
from loadtest.social_load import run_coupons, run_groupbuy
from tests.loadtest.test_flashsale_load import _env
from web.settings import Settings

REQUIRED = ("rate", "p99_ms", "oversold", "audit_ok")


async def test_groupbuy_load_fills_every_group_and_audits(
    client: TestClient, settings: Settings
) -> None:
    """20 groups of 3 and 100 joiners: every group fills, 60 units sold, none oversold."""
    result = await run_groupbuy(str(client.make_url("/")), 20, 3, 100, 8, env=_env(settings))
    for key in REQUIRED:
        assert key in result, key
    assert result["sold"] == 60 and result["oversold"] == 0
    assert result["groups_filled"] == 20 and result["audit_ok"] is True
    assert result["join"]["codes"] == {"group_full": 60} and result["join"]["errors"] == 0
    assert result["flashsale"]["oversold"] == 0 and result["ratio_to_flashsale"] > 0


async def test_coupon_load_gives_exactly_the_drop(client: TestClient, settings: Settings) -> None:
    """A drop of 10 to 80 claimers: 10 claimed, none left, none extra."""
    url = str(client.make_url("/"))
    result = await run_coupons(url, 10, 80, 8, baseline=False, env=_env(settings))
    assert result["claimed"] == 10 and result["left"] == 0
    assert result["oversold"] == 0 and result["audit_ok"] is True
    assert result["claim"]["codes"] == {"coupons_gone": 70}


@pytest.mark.parametrize(
    ("cmd", "options"),
    [("groupbuy", ("--groups", "--size", "--joiners")), ("coupons", ("--coupons", "--claimers"))],
)
def test_loadtest_help_lists_the_social_options(
    capsys: pytest.CaptureFixture[str], cmd: str, options: tuple[str, ...]
) -> None:
    """``livesell-loadtest groupbuy|coupons --help`` documents the issue's options."""
    with pytest.raises(SystemExit) as exc:
        cli.main([cmd, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (*options, "--json", "--url"):
        assert option in out
