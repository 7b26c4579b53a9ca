"""Member prices and points in headless Chromium: join, buy at the member price, pay with points."""

from __future__ import annotations

from typing import Any

import aiohttp

from tests.browser.conftest import DESKTOP, Api, LiveServer, eventually, new_show, open_page
from tests.browser.test_room import text_becomes
from tests.browser.test_social import viewer_url


async def test_a_viewer_joins_buys_at_the_member_price_and_pays_with_points(
    browser: Any, live_server: LiveServer, host_api: Api, http: aiohttp.ClientSession
) -> None:
    stream_id = await new_show(host_api, "Members night")
    body = {"name": "Linen shirt", "price_cents": 2990, "member_price_cents": 1500}
    product = await host_api.call("POST", "/api/products", body, status=201)
    await host_api.room(stream_id, "pin", product_id=product["id"])
    body = {"product_id": product["id"], "stream_id": stream_id, "quantity": 5,
            "per_user_limit": 2, "duration_s": 120, "hold_s": 300}  # fmt: skip
    sale = await host_api.call("POST", "/api/sales", body, status=201)
    await host_api.call("POST", f"/api/sales/{sale['id']}/open")
    url = viewer_url(live_server, f"/live/{stream_id}", "mia")
    mia = await open_page(browser, url, DESKTOP)  # the store sits in the side panel
    await mia.wait_for_selector("#buy:not([hidden])")
    await text_becomes(mia, "#product-price", "$29.90")
    await text_becomes(mia, "#member-note", "Members pay $15.00")

    await mia.click("#store-join")  # one tap reveals the member price
    await text_becomes(mia, "#product-price", "$15.00")
    assert await mia.text_content("#product-was") == "$29.90"
    assert await mia.is_hidden("#member-note")
    await mia.click("#buy")
    await mia.wait_for_selector("#reserved:not([hidden])")
    assert await mia.is_hidden("#use-points-row")  # no points yet
    await text_becomes(mia, "#pay", "Pay $15.00")
    await mia.click("#pay")
    await text_becomes(mia, "#outcome", "Paid. Thank you!")

    # The paid order earns 15 points once it reaches SQL (persister, then the accrual sweep).
    api = Api(live_server, http, live_server.token("viewer", "mia", "Mia"))

    async def points() -> bool:
        return (await api.call("GET", "/api/stores/hana/me"))["points"] == 15

    await eventually(points, within_s=20, what="15 points credited")
    await mia.reload()
    await text_becomes(mia, "#store-state", "Store member · 15 points")
    await mia.click("#buy")
    await mia.wait_for_selector("#use-points-row:not([hidden])")
    assert await mia.text_content("#use-points-label") == "Use 15 points (−$0.15)"
    await text_becomes(mia, "#pay", "Pay $15.00")
    await mia.check("#use-points")
    await text_becomes(mia, "#pay", "Pay $14.85 (points −$0.15)")
    await mia.click("#pay")
    await text_becomes(mia, "#outcome", "Paid. Thank you!")
    await text_becomes(mia, "#store-state", "Store member · 0 points")
    assert mia.errors == []
