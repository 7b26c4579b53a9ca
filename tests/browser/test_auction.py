"""The room's auction lot card in headless Chromium: two viewers bid, the winner gets an order."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import Api, LiveServer, eventually, new_show, open_page


async def text_of(page: Any, selector: str) -> str:
    """The element's text (empty when missing)."""
    return (await page.text_content(selector)) or ""


async def test_two_viewers_bid_the_leader_and_timer_update_the_winner_has_an_order(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "Auction night")
    product = await host_api.call(
        "POST", "/api/products", {"name": "Vase", "price_cents": 900}, status=201
    )
    ann = await open_page(browser, f"{live_server.url}/live/{stream_id}#token="
                          + live_server.token("viewer", "ann", "Ann"))  # fmt: skip
    ben = await open_page(browser, f"{live_server.url}/live/{stream_id}#token="
                          + live_server.token("viewer", "ben", "Ben"))  # fmt: skip
    for page in (ann, ben):
        await page.wait_for_selector("body[data-state=waiting]")
    body = {"product_id": product["id"], "start_cents": 1000, "increment_cents": 100,
            "duration_s": 6, "window_s": 2, "extend_s": 3, "stream_id": stream_id}  # fmt: skip
    lot = await host_api.call("POST", "/api/lots", body, status=201)
    await host_api.call("POST", f"/api/lots/{lot['id']}/open")
    for page in (ann, ben):
        await page.wait_for_selector("#lot-bid-btn:not([hidden])")
    assert await text_of(ann, "#lot-bid-btn") == "Bid $10.00"
    first_clock = await text_of(ann, "#lot-clock")
    assert first_clock.startswith("Ends in")

    await ann.click("#lot-bid-btn")

    async def ben_sees_ann() -> bool:
        return await text_of(ben, "#lot-bid") == "Current bid $10.00"

    await eventually(ben_sees_ann, 10, "Ben sees Ann's bid")
    assert await text_of(ben, "#lot-bid-btn") == "Bid $11.00"
    await ben.click("#lot-bid-btn")

    async def ann_sees_ben() -> bool:
        return await text_of(ann, "#lot-bid") == "Current bid $11.00"

    await eventually(ann_sees_ben, 10, "Ann sees Ben's bid")

    async def ticking() -> bool:
        return await text_of(ann, "#lot-clock") != first_clock

    await eventually(ticking, 5, "the timer runs")

    async def ben_won() -> bool:
        return (await text_of(ben, "#lot-outcome")).startswith("You won at $11.00")

    await eventually(ben_won, 20, "Ben is told he won")
    assert (await text_of(ann, "#lot-outcome")) == "Sold for $11.00"
    ben_api = Api(live_server, host_api.session, live_server.token("viewer", "ben", "Ben"))
    won = await ben_api.call("GET", f"/api/lots/{lot['id']}")
    order = await ben_api.call("GET", f"/api/orders/{won['order_id']}")
    assert (order["state"], order["unit_price_cents"]) == ("reserved", 1100)
    assert ann.errors == [] and ben.errors == []


async def test_a_viewer_enters_a_fair_draw_from_the_room_and_wins(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "Sneaker drop")
    product = await host_api.call(
        "POST", "/api/products", {"name": "Sneaker", "price_cents": 9900}, status=201
    )
    sale = await host_api.call("POST", "/api/sales", {
        "product_id": product["id"], "stream_id": stream_id, "quantity": 1, "per_user_limit": 1,
    }, status=201)  # fmt: skip
    draw = await host_api.call("POST", f"/api/sales/{sale['id']}/draw", {"window_s": 600},
                               status=201)  # fmt: skip
    cy = await open_page(browser, f"{live_server.url}/live/{stream_id}#token="
                         + live_server.token("viewer", "cy", "Cy"))  # fmt: skip
    await cy.wait_for_selector("#draw-enter:not([hidden])")
    assert draw["commitment"][:16] in await text_of(cy, "#draw-commit")
    await cy.click("#draw-enter")

    async def entered() -> bool:
        return (await text_of(cy, "#draw-outcome")).startswith("You're in")

    await eventually(entered, 10, "the entry is confirmed")
    await host_api.call("POST", f"/api/sales/{sale['id']}/draw/close", {"now": True})

    async def won() -> bool:
        return await text_of(cy, "#draw-outcome") == "You won! Pay from My orders."

    await eventually(won, 15, "the viewer learns they won")
    assert cy.errors == []
