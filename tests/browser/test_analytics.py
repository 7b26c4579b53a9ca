"""A finished show's analytics in the studio (charts, totals) and reviews + "Your data" in the room.

A host broadcasts from aiortc; viewers chat, react, buy and pay over the real server; the show
ends; the studio at 1280x800 shows its analytics (screenshot under var/screenshots/).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp

from chat.protocol import encode
from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    Api,
    LiveServer,
    eventually,
    go_live,
    new_show,
    open_page,
    screenshot,
)


async def _scripted_show(live_server: LiveServer, http: aiohttp.ClientSession, host: Api) -> str:
    """A live show with viewers, chat, reactions and paid orders, then ended; its id."""
    stream_id = await new_show(host, "Ceramics night")
    admin = Api(live_server, http, live_server.token("admin", "ops"))
    products = []
    for name, price in (("Celadon bowl", 4800), ("Tea cup", 1900)):
        products.append(
            await admin.call("POST", "/api/products", {"name": name, "price_cents": price}, 201)
        )
    sales = []
    for p in products:
        body = {"product_id": p["id"], "quantity": 50, "per_user_limit": 2, "stream_id": stream_id}
        sale = await admin.call("POST", "/api/sales", body, 201)
        await admin.call("POST", f"/api/sales/{sale['id']}/open")
        sales.append(sale)
    peer = await go_live(host, stream_id)
    ws_url = live_server.url.replace("http", "ws") + f"/ws/rooms/{stream_id}"
    viewers = []
    for i in range(6):
        ws = await http.ws_connect(ws_url)
        await ws.send_bytes(encode({"type": "auth", "token": live_server.token("viewer", f"v{i}")}))
        viewers.append(ws)
    for i, ws in enumerate(viewers):
        await ws.send_bytes(encode({"type": "chat", "text": f"hello {i}"}))
        await ws.send_bytes(encode({"type": "react", "kind": "like", "count": 3 + i}))
    seen = {"card_view": [s["id"] for s in sales], "card_click": [sales[0]["id"]]}
    await http.post(f"{live_server.url}/api/streams/{stream_id}/beacon", json=seen)
    for i in range(4):
        buyer = Api(live_server, http, live_server.token("viewer", f"v{i}"))
        sale = sales[i % 2]
        buyer.headers["Idempotency-Key"] = f"k{i}"
        res = await buyer.call("POST", f"/api/sales/{sale['id']}/buy", {"qty": 1}, 201)
        if i < 3:
            await buyer.call("POST", f"/api/orders/{res['order']['id']}/pay")
    await asyncio.sleep(6)  # one viewer sample at least (the roll-up samples every 5 s)
    async with http.delete(live_server.url + peer.session_id, headers=host.headers) as r:
        assert r.status in (200, 204), await r.text()
    await peer.close()
    for ws in viewers:
        await ws.close()
    return stream_id


async def test_the_studio_shows_a_finished_shows_analytics(
    browser: Any, live_server: LiveServer, http: aiohttp.ClientSession, host_api: Api
) -> None:
    stream_id = await _scripted_show(live_server, http, host_api)

    async def ended() -> bool:
        s = await host_api.call("GET", f"/api/streams/{stream_id}")
        return s["status"] == "ended"

    await eventually(ended, what="the show ended")
    report = await host_api.call("GET", f"/api/streams/{stream_id}/analytics")
    assert report["totals"]["chat_messages"] == 6 and report["totals"]["paid_orders"] >= 0
    token = live_server.token("host", "hana", "Hana")
    page = await open_page(browser, f"{live_server.url}/studio/{stream_id}#token={token}", DESKTOP)
    await page.wait_for_selector("#analytics:not([hidden]) .an-tile")
    tiles = await page.locator("#an-totals dd").all_text_contents()
    assert "6" in tiles  # the chat messages
    assert await page.locator("#an-charts canvas").count() == 4
    assert "Celadon bowl" in await page.locator("#an-products").inner_text()
    await page.locator("#analytics").scroll_into_view_if_needed()
    await page.evaluate("document.getElementById('analytics').scrollIntoView()")
    await screenshot(page, "studio-analytics-desktop")


async def test_the_room_shows_reviews_and_your_data(
    browser: Any, live_server: LiveServer, http: aiohttp.ClientSession, host_api: Api
) -> None:
    stream_id = await new_show(host_api, f"Reviews {uuid.uuid4().hex[:4]}")
    admin = Api(live_server, http, live_server.token("admin", "ops"))
    product = await admin.call(
        "POST", "/api/products", {"name": "Linen scarf", "price_cents": 2500}, 201
    )
    body = {"product_id": product["id"], "quantity": 5, "per_user_limit": 1, "stream_id": stream_id}
    sale = await admin.call("POST", "/api/sales", body, 201)
    await admin.call("POST", f"/api/sales/{sale['id']}/open")
    buyer = Api(live_server, http, live_server.token("viewer", "rita", "Rita"))
    buyer.headers["Idempotency-Key"] = "r1"
    order = (await buyer.call("POST", f"/api/sales/{sale['id']}/buy", {}, 201))["order"]
    await buyer.call("POST", f"/api/orders/{order['id']}/pay")
    text = "<img src=x onerror=alert(1)> So soft"
    await buyer.call("POST", f"/api/orders/{order['id']}/review", {"rating": 5, "text": text}, 201)
    viewer = live_server.token("viewer", "sam", "Sam")
    page = await open_page(browser, f"{live_server.url}/live/{stream_id}#token={viewer}", PHONE)
    await page.wait_for_selector("#product-reviews:not([hidden]) .review")
    assert await page.locator(".review-text").inner_text() == text  # text, never markup
    assert await page.locator("#product-reviews img").count() == 0
    assert await page.locator("#mydata").count() == 1
    assert not await page.locator("#mydata").get_attribute("hidden")
    await screenshot(page, "room-reviews-phone")
