"""The room with simulated pay off (production): it waits for the payment provider's webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest

from flashsale import signature
from tests.browser.conftest import Api, LiveServer, new_show, open_page, screenshot, serve
from tests.browser.test_room import sale_setup, sign_in_as_guest, text_becomes

PROVIDER_SECRET = "provider-secret-for-the-browser-test"


@pytest.fixture(scope="module")
def shop_server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`livesell serve` configured as in production: payments come from the provider only."""
    with serve(
        redis_url,
        tmp_path_factory.mktemp("shop"),
        simulated_pay="0",
        payment_webhook_secret=PROVIDER_SECRET,
    ) as server:
        yield server


async def test_the_room_waits_for_payment_until_the_provider_confirms_it(
    browser: Any, shop_server: LiveServer, http: aiohttp.ClientSession
) -> None:
    host = Api(shop_server, http, shop_server.token("host", "hana", "Hana"))
    stream_id = await new_show(host)
    _, sale_id = await sale_setup(host, stream_id)
    await host.call("POST", f"/api/sales/{sale_id}/open", {"countdown_s": 0})
    page = await open_page(browser, f"{shop_server.url}/live/{stream_id}")
    await page.click("#buy[data-state=open]")
    await sign_in_as_guest(page, "Mia")
    await page.wait_for_selector("#reserved:not([hidden])")
    await page.wait_for_selector("#product-card[data-payment=provider]")
    assert (await page.text_content("#pay-by") or "").startswith("Waiting for payment")
    assert await page.is_hidden("#pay")
    assert await page.is_visible("#cancel")
    await screenshot(page, "room-waiting-for-payment-phone")
    stored = await page.evaluate(
        "() => Object.keys(sessionStorage).filter((k) => k.startsWith('livesell.orders.'))"
        ".map((k) => sessionStorage.getItem(k))"
    )
    order = json.loads(stored[0])[0]
    body = json.dumps(
        {"id": "evt_browser_1", "type": "payment.succeeded", "order_id": order["id"]}
    ).encode()
    headers = {signature.HEADER: signature.sign(PROVIDER_SECRET.encode(), body, int(time.time()))}
    async with http.post(
        f"{shop_server.url}/api/payments/webhook", data=body, headers=headers
    ) as resp:
        assert resp.status == 200, await resp.text()
    await text_becomes(page, "#order-list .order-state", "Paid")
    await page.wait_for_selector("#buy[data-state=limit]")
    assert page.errors == []
