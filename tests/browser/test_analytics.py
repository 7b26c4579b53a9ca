"""A finished show's analytics in the studio (charts, totals) and reviews + "Your data" in the room.

A host broadcasts from aiortc; viewers chat, react, buy and pay over the real server; the show
ends; the studio at 1280x800 shows its analytics (screenshot under var/screenshots/).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
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
    open_sale,
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
    # Each chart's bitmap is as wide as the chart on screen: a wider one is squeezed to fit,
    # squashing its "max" caption.
    sizes = await page.eval_on_selector_all(
        "#an-charts canvas",
        "cs => cs.map(c => [c.width, Math.round(c.clientWidth * devicePixelRatio)])",
    )
    assert all(drawn == shown for drawn, shown in sizes), sizes
    assert "Celadon bowl" in await page.locator("#an-products").inner_text()
    await page.locator("#analytics").scroll_into_view_if_needed()
    await page.evaluate("document.getElementById('analytics').scrollIntoView()")
    await screenshot(page, "studio-analytics-desktop")


async def test_the_studio_shows_the_analytics_as_soon_as_the_show_ends(
    browser: Any, live_server: LiveServer, http: aiohttp.ClientSession, host_api: Api
) -> None:
    """Ending the show brings up its analytics in the open studio, without a reload."""
    stream_id = await new_show(host_api, "Short show")
    peer = await go_live(host_api, stream_id)
    token = live_server.token("host", "hana", "Hana")
    page = await open_page(browser, f"{live_server.url}/studio/{stream_id}#token={token}", DESKTOP)
    await page.wait_for_selector("#view-console:not([hidden])")
    assert await page.is_hidden("#analytics")
    async with http.delete(live_server.url + peer.session_id, headers=host_api.headers) as r:
        assert r.status in (200, 204), await r.text()
    await peer.close()
    await page.wait_for_selector("#analytics:not([hidden]) .an-tile", timeout=10000)
    assert page.errors == []


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


async def _lot_won_and_paid(admin: Api, buyer: Api, stream_id: str, product_id: int) -> None:
    """A one-second lot of the show that ``buyer`` wins at 1500 and pays."""
    body = {"product_id": product_id, "start_cents": 1500, "increment_cents": 100,
            "duration_s": 1, "window_s": 0, "stream_id": stream_id}  # fmt: skip
    lot = await admin.call("POST", "/api/lots", body, 201)
    await admin.call("POST", f"/api/lots/{lot['id']}/open")
    buyer.headers["Idempotency-Key"] = "lot"
    await buyer.call("POST", f"/api/lots/{lot['id']}/bids", {"amount_cents": 1500}, 201)

    async def won() -> Any:
        now = await buyer.call("GET", f"/api/lots/{lot['id']}")
        return now["order_id"] if now["state"] == "won" else None

    order_id = await eventually(won, what="the lot closed")
    await buyer.call("POST", f"/api/orders/{order_id}/pay")


async def test_the_ops_page_charts_a_shows_analytics(
    browser: Any, live_server: LiveServer, http: aiohttp.ClientSession, host_api: Api
) -> None:
    """Picked on the ops page, a show with orders (a lot's among them) gets totals and charts."""
    stream_id = await new_show(host_api, f"Ops chart {uuid.uuid4().hex[:4]}")
    admin = Api(live_server, http, live_server.token("admin", "ops"))
    sale = await open_sale(admin, stream_id, "Jug", 2000, per_user_limit=1)
    for user in ("oa", "ob"):
        buyer = Api(live_server, http, live_server.token("viewer", user))
        buyer.headers["Idempotency-Key"] = "k"
        order = (await buyer.call("POST", f"/api/sales/{sale['id']}/buy", {}, 201))["order"]
        if user == "oa":
            await buyer.call("POST", f"/api/orders/{order['id']}/pay")
    await _lot_won_and_paid(admin, buyer, stream_id, sale["product_id"])

    async def persisted() -> bool:
        report = await admin.call("GET", f"/api/streams/{stream_id}/analytics")
        return report["totals"]["paid_orders"] == 2

    await eventually(persisted, what="the orders reached SQL")
    token = live_server.token("admin", "ops")
    page = await open_page(browser, f"{live_server.url}/ops#token={token}", DESKTOP,
                           accept_downloads=True)  # fmt: skip
    await page.wait_for_selector(f'#an-stream option[value="{stream_id}"]', state="attached")
    await page.select_option("#an-stream", stream_id)
    await page.wait_for_selector('#an-totals dd[data-key="orders"]')
    totals = {
        key: await page.locator(f'#an-totals dd[data-key="{key}"]').inner_text()
        for key in ("orders", "paid_orders", "gmv_cents")
    }
    assert totals == {"orders": "3", "paid_orders": "2", "gmv_cents": "$55.00"}
    for key in ("orders", "gmv_cents"):
        canvas = page.locator(f'#an-charts canvas[data-key="{key}"]')
        assert int(await canvas.get_attribute("data-points") or 0) >= 1, key
    # The orders line is really drawn: pixels of its colour (#ff5a36) on the canvas.
    drawn = await page.evaluate("""() => {
        const c = document.querySelector('#an-charts canvas[data-key="orders"]');
        const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 240 && Math.abs(d[i + 1] - 90) < 12
            && Math.abs(d[i + 2] - 54) < 12 && d[i + 3] > 240) n++;
        return n;
    }""")
    assert drawn > 10
    assert await page.is_visible("#an-csv")
    async with page.expect_download() as download:
        await page.click("#an-csv")
    saved = Path(await (await download.value).path())
    csv_text = await asyncio.to_thread(saved.read_text)
    assert csv_text.startswith("minute_ms,")
    assert sum(int(row.split(",")[-1]) for row in csv_text.splitlines()[1:]) == 5500  # GMV
    await page.locator("#show-analytics").scroll_into_view_if_needed()
    await screenshot(page, "ops-analytics-desktop")
    assert page.errors == []
