"""The viewer room in headless Chromium: video, chat, moderation, sales, reconnects, safety."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import (
    DESKTOP,
    Api,
    LiveServer,
    eventually,
    go_live,
    new_show,
    open_page,
    screenshot,
)


async def text_becomes(page: Any, selector: str, text: str, within_s: float = 10) -> None:
    """Wait until ``selector``'s text is ``text`` (wait_for_function needs eval, which CSP bans)."""

    async def check() -> bool:
        return await page.text_content(selector) == text

    await eventually(check, within_s, f"{selector} shows {text!r}")


async def video_progress(page: Any) -> Any:
    return await page.evaluate(
        "() => { const v = document.getElementById('video');"
        " return {t: v.currentTime, w: v.videoWidth, state: document.body.dataset.state}; }"
    )


async def test_viewer_sees_the_video_playing(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api)
    host = await go_live(host_api, stream_id)
    try:
        page = await open_page(browser, f"{live_server.url}/live/{stream_id}")

        async def playing() -> Any:
            p = await video_progress(page)
            return p if p["w"] > 0 and p["t"] > 0 else None

        first = await eventually(playing, 15, "the video plays")
        await eventually(lambda: _advanced(page, first["t"] + 0.5), 10, "currentTime advances")
        assert (await video_progress(page))["state"] == "live"
        assert await page.text_content("#state-text") == "LIVE"
        assert page.errors == []
    finally:
        await host.close()


async def _advanced(page: Any, beyond: float) -> bool:
    return bool((await video_progress(page))["t"] > beyond)


async def sale_setup(api: Api, stream_id: str, quantity: int = 5) -> tuple[int, int]:
    """A pinned product and a sale of it in the stream; returns (product_id, sale_id)."""
    product = await api.call(
        "POST",
        "/api/products",
        {"name": "Silk scarf, hand-dyed", "price_cents": 2990, "currency": "USD"},
        status=201,
    )
    await api.room(stream_id, "pin", product_id=product["id"])
    sale = await api.call(
        "POST",
        "/api/sales",
        {
            "product_id": product["id"],
            "stream_id": stream_id,
            "quantity": quantity,
            "per_user_limit": 1,
            "price_cents": 1990,
            "duration_s": 120,
            "hold_s": 300,
        },
        status=201,
    )
    return product["id"], sale["id"]


async def sign_in_as_guest(page: Any, name: str) -> None:
    await page.wait_for_selector("#guest-sheet:not([hidden])")
    await page.fill("#guest-name", name)
    await page.click("#guest-go")
    await page.wait_for_selector("#guest-sheet", state="hidden")


async def test_sale_countdown_buy_reserve_and_pay(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "Scarves, live from the studio")
    host = await go_live(host_api, stream_id)
    try:
        _, sale_id = await sale_setup(host_api, stream_id)
        url = f"{live_server.url}/live/{stream_id}"
        buyer = await open_page(browser, url)
        other = await open_page(browser, url, DESKTOP)
        await buyer.wait_for_selector("#product-card:not([hidden])")
        await host_api.call("POST", f"/api/sales/{sale_id}/open", {"countdown_s": 4})
        await buyer.wait_for_selector("#buy[data-state=notopen]")
        assert "Starts in" in (await buyer.text_content("#sale-clock") or "")
        assert await buyer.is_disabled("#buy")
        await buyer.wait_for_selector("#buy[data-state=open]", timeout=10000)
        assert await buyer.text_content("#buy") == "Buy now"
        await buyer.click("#buy")
        await sign_in_as_guest(buyer, "Mia")
        await buyer.wait_for_selector("#reserved:not([hidden])")
        assert (await buyer.text_content("#pay-by") or "").startswith("Pay within 0")
        await text_becomes(other, "#sale-left", "4 of 5 left")
        await screenshot(buyer, "room-sale-phone")
        await screenshot(other, "room-sale-desktop")
        await buyer.click("#pay")
        await buyer.wait_for_selector("#buy[data-state=limit]")
        assert await buyer.text_content("#outcome") == "Paid. Thank you!"
        assert await buyer.text_content("#order-list .order-state") == "Paid"
        assert buyer.errors == [] and other.errors == []
    finally:
        await host.close()
