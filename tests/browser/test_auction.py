"""The room's auction lot card in headless Chromium: two viewers bid, the winner gets an order."""

from __future__ import annotations

from typing import Any

from tests.browser.conftest import (
    DESKTOP,
    Api,
    LiveServer,
    eventually,
    new_show,
    open_page,
    screenshot,
)


async def studio_desk(browser: Any, live_server: LiveServer, stream_id: str, desk: str,
                      form: str, fields: dict[str, Any]) -> Any:  # fmt: skip
    """The host's studio with its ``desk`` (lot or draw) form filled with ``fields`` and sent."""
    token = live_server.token("host", "hana", "Hana")
    studio = await open_page(
        browser, f"{live_server.url}/studio/{stream_id}#token={token}", DESKTOP
    )
    await studio.click(f"#{desk}-desk summary")
    for name, value in fields.items():
        if name == "product":  # picked by the name the host sees: the studio shows no ids
            await studio.select_option(f"#{form}-product", label=value)
        else:
            await studio.fill(f"#{form}-{name}", str(value))
    await studio.click(f"#{form}-create")
    return studio


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
    # Ann's "your bid leads" gives way to the news that she was outbid.
    assert await text_of(ann, "#lot-outcome") == "You were outbid: the bid is now $11.00"

    async def ben_leads() -> bool:
        return await text_of(ben, "#lot-outcome") == "Your bid of $11.00 leads"

    await eventually(ben_leads, 10, "Ben is told his bid leads")

    async def ticking() -> bool:
        return await text_of(ann, "#lot-clock") != first_clock

    await eventually(ticking, 5, "the timer runs")

    async def ben_won() -> bool:
        return (await text_of(ben, "#lot-outcome")).startswith("You won at $11.00")

    await eventually(ben_won, 20, "Ben is told he won")
    assert (await text_of(ann, "#lot-outcome")) == "Sold for $11.00"
    # A closed lot has a final bid and no leader.
    assert (await text_of(ann, "#lot-bid"), await text_of(ann, "#lot-leader")) == (
        "Final bid $11.00", "",
    )  # fmt: skip
    ben_api = Api(live_server, host_api.session, live_server.token("viewer", "ben", "Ben"))
    won = await ben_api.call("GET", f"/api/lots/{lot['id']}")
    order = await ben_api.call("GET", f"/api/orders/{won['order_id']}")
    assert (order["state"], order["unit_price_cents"]) == ("reserved", 1100)
    # The won lot is in Ben's orders, named by its product, payable there.
    await ben.click("#orders-btn")
    await ben.wait_for_selector("#order-list .order-pay", timeout=10000)

    async def named() -> str:
        line = await text_of(ben, "#order-list li span")
        return line if "Vase" in line else ""

    await eventually(named, 10, "the won order is named by its product, not #<sale id>")
    await ben.click("#order-list .order-pay")
    await ben.wait_for_selector("#order-list li[data-state=paid]", timeout=10000)
    paid = await ben_api.call("GET", f"/api/orders/{won['order_id']}")
    assert paid["state"] == "paid"
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
        return await text_of(cy, "#draw-outcome") == "You won! Pay from Your orders."

    await eventually(won, 15, "the viewer learns they won")
    assert cy.errors == []


async def test_the_host_runs_a_fair_draw_from_the_studio_and_sees_the_proof(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "Watch drop")
    product = await host_api.call(
        "POST", "/api/products", {"name": "Watch", "price_cents": 25000}, status=201
    )
    # Dee is already in the room when the host sets the draw up: her page must find it.
    dee = await open_page(browser, f"{live_server.url}/live/{stream_id}#token="
                          + live_server.token("viewer", "dee", "Dee"))  # fmt: skip
    await dee.wait_for_selector("body[data-state=waiting]")
    fields = {"product": "Watch · $250.00", "price": 19900, "units": 1, "window": 600}
    studio = await studio_desk(browser, live_server, stream_id, "draw", "df", fields)
    await studio.wait_for_selector("#draw-now:not([hidden])")
    status = await text_of(studio, "#draw-status")
    assert "0 entered" in status and "closes in" in status, status
    sale_id = int(status.split("#")[1].split(" ")[0])
    draw = await host_api.call("GET", f"/api/sales/{sale_id}/draw")
    assert draw["commitment"] in await text_of(studio, "#draw-proof")
    assert (await host_api.call("GET", f"/api/sales/{sale_id}"))["product_id"] == product["id"]

    await dee.wait_for_selector("#draw-enter:not([hidden])", timeout=10000)
    # The draw's sale is entered, never bought: no flash-sale strip offers it.
    assert await dee.is_hidden("#sale")
    await dee.click("#draw-enter")

    async def studio_counts_the_entry() -> bool:
        return "1 entered" in await text_of(studio, "#draw-status")

    await eventually(studio_counts_the_entry, 10, "the studio counts Dee's entry")
    await studio.click("#draw-close")

    async def awarded() -> bool:
        return "1 winners with reserved orders" in await text_of(studio, "#draw-status")

    await eventually(awarded, 10, "the studio shows the drawn winner")
    await screenshot(studio, "studio-draw-awarded")
    draw = await host_api.call("GET", f"/api/sales/{sale_id}/draw")
    proof = await text_of(studio, "#draw-proof")
    assert draw["seed"] in proof and draw["entries_hash"] in proof
    assert await studio.get_attribute("#draw-entries-link", "href") == (
        f"/api/sales/{sale_id}/draw/entries"
    )

    async def dee_won() -> bool:
        return await text_of(dee, "#draw-outcome") == "You won! Pay from Your orders."

    await eventually(dee_won, 15, "Dee learns she won")
    # Her won order shows under "Your orders" (the bag shows a dot) with its own Pay button.
    await dee.wait_for_selector("#orders-dot:not([hidden])", timeout=10000)
    await dee.click("#orders-btn")
    await dee.wait_for_selector("#order-list .order-pay", timeout=10000)
    assert await text_of(dee, "#order-list .order-pay") == "Pay $199.00"
    await screenshot(dee, "room-orders-won")
    await dee.click("#order-list .order-pay")
    await dee.wait_for_selector("#order-list li[data-state=paid]", timeout=10000)
    dee_api = Api(live_server, host_api.session, live_server.token("viewer", "dee"))
    mine = await dee_api.call("GET", f"/api/me/orders?stream_id={stream_id}")
    assert [(o["sale_id"], o["unit_price_cents"], o["state"]) for o in mine["orders"]] == [
        (sale_id, 19900, "paid")
    ]
    others = await Api(live_server, host_api.session, live_server.token("viewer", "eve")).call(
        "GET", f"/api/me/orders?stream_id={stream_id}"
    )
    assert others == {"orders": []}
    assert studio.errors == [] and dee.errors == []


async def test_the_host_starts_a_lot_from_the_studio_and_sees_its_bidders(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    """The studio's auction desk creates and opens a lot, then lists bids with bidder ids."""
    stream_id = await new_show(host_api, "Lot desk")
    product = await host_api.call(
        "POST", "/api/products", {"name": "Kettle", "price_cents": 3000}, status=201
    )
    fields = {"product": "Kettle · $30.00", "start": 2500, "inc": 100, "duration": 120}
    studio = await studio_desk(browser, live_server, stream_id, "lot", "lf", fields)

    async def opened() -> str:
        return await text_of(studio, "#lot-status")

    status = await eventually(opened, 10, "the studio shows the open lot")
    # The lot's state in words, not the server's code ("open").
    assert status.endswith(" · Open · Starts at $25.00"), status
    lot_id = int(status.split("#")[1].split(" ")[0])
    lot = await host_api.call("GET", f"/api/lots/{lot_id}")
    assert (lot["state"], lot["stream_id"], lot["start_cents"], lot["product_id"]) == (
        "open", stream_id, 2500, product["id"],
    )  # fmt: skip
    bidder = Api(live_server, host_api.session, live_server.token("viewer", "ivy", "Ivy"))
    bidder.headers["Idempotency-Key"] = "b1"
    await bidder.call("POST", f"/api/lots/{lot_id}/bids", {"amount_cents": 2600}, status=201)

    async def listed() -> bool:
        return "ivy: $26.00" in await text_of(studio, "#lot-bids")

    await eventually(listed, 10, "the studio lists Ivy's bid with her id")
    assert "Current bid $26.00" in await text_of(studio, "#lot-status")
    assert studio.errors == []
