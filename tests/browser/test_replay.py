"""The shoppable replay in Chromium: an ended show plays, and a product marker seeks to it."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import (
    Api,
    LiveServer,
    RoomClient,
    eventually,
    go_live,
    new_show,
    open_page,
    screenshot,
)


async def test_replay_plays_and_jumping_to_a_product_seeks_to_it(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "Scarves, recorded")
    host = await go_live(host_api, stream_id)  # VP8, so the recording is WebM
    try:
        products = []
        for name in ("Silk scarf", "Wool hat"):
            body = {"name": name, "price_cents": 2990, "currency": "USD"}
            products.append(await host_api.call("POST", "/api/products", body, status=201))
        await asyncio.sleep(1.5)
        await host_api.room(stream_id, "pin", product_id=products[0]["id"])
        # A flash sale of the scarf opens during the show and closes after the chat.
        body = {"product_id": products[0]["id"], "stream_id": stream_id, "quantity": 3}
        body.update(price_cents=1990, duration_s=600)
        scarf_sale = await host_api.call("POST", "/api/sales", body, status=201)
        await host_api.call("POST", f"/api/sales/{scarf_sale['id']}/open", {})
        room = await RoomClient.join(host_api, stream_id)
        await asyncio.sleep(2.0)  # the chat comes well after the first pin...
        await room.request(type="chat", text="Hand-dyed silk, 180 × 90 cm")
        await room.close()
        await host_api.call("POST", f"/api/sales/{scarf_sale['id']}/close", {})
        await asyncio.sleep(2.0)  # ...and well before the second
        await host_api.room(stream_id, "pin", product_id=products[1]["id"])
        await asyncio.sleep(2.0)
        async with host_api.session.delete(
            live_server.url + host.session_id, headers=host_api.headers
        ) as resp:
            assert resp.status == 200
    finally:
        await host.close()

    async def ended_archived() -> bool:
        page = await host_api.call("GET", f"/api/streams/{stream_id}/timeline")
        return any(e["type"] == "stream" and e["status"] == "ended" for e in page["events"])

    await eventually(ended_archived, 15, "the show's end in the timeline")
    listing = await host_api.call("GET", f"/api/streams/{stream_id}/recordings")
    started = listing["recordings"][0]["started_at_ms"]
    pins = [
        e
        for e in (await host_api.call("GET", f"/api/streams/{stream_id}/timeline"))["events"]
        if e["type"] == "pinned"
    ]
    hat_at_s = (pins[1]["at_ms"] - started) / 1000

    # After the show, the host sells the hat at a replay price: a sale of the show opened now.
    sale = {"product_id": products[1]["id"], "stream_id": stream_id, "quantity": 3}
    sale.update(price_cents=1500, duration_s=600)
    hat_sale = await host_api.call("POST", "/api/sales", sale, status=201)
    await host_api.call("POST", f"/api/sales/{hat_sale['id']}/open", {})
    page = await open_page(browser, f"{live_server.url}/replay/{stream_id}")
    await page.wait_for_selector("body[data-state=ready]")
    assert await page.text_content("#title") == "Scarves, recorded"

    # It plays: the playhead moves on its own.
    async def playhead() -> float:
        return float(await page.eval_on_selector("#video", "v => v.currentTime"))

    async def shows(name: str) -> bool:
        return await page.text_content("#product-name") == name

    await eventually(lambda: _over(playhead, 0.5), 15, "the recording playing")
    markers = await page.query_selector_all(".replay-marker[data-kind=pin]")
    assert [await m.text_content() for m in markers][1].endswith("Wool hat")
    await markers[1].click()
    await eventually(lambda: shows("Wool hat"), 10, "the hat's card")
    assert abs(await playhead() - hat_at_s) < 0.75, (await playhead(), hat_at_s)
    assert await markers[1].get_attribute("aria-current") == "true"
    # The hat's sale is open now: it is bought from the replay.
    await page.wait_for_selector("#buy-area:not([hidden])")
    assert await page.text_content("#buy") == "Buy now · $15.00"
    await page.click("#buy")
    await page.fill("#guest-name", "Ola")
    await page.click("#guest-go")
    await page.wait_for_selector("#pay:not([hidden])")
    await page.click("#pay")
    await eventually(
        lambda: _text_is(page, "#buy-outcome", "Paid. Thank you!"), 10, "the order paid"
    )
    # The chat is the room's up to the playhead: the message came between the two pins.
    assert "Hand-dyed silk" in (await page.text_content("#chat") or "")
    await markers[0].click()
    await eventually(lambda: shows("Silk scarf"), 10, "the scarf's card")
    assert "Hand-dyed silk" not in (await page.text_content("#chat") or "")
    # The sale's markers: the scarf's card with the sale on, then ended.
    for phase, state in (("opened", "Flash sale on now"), ("closed", "Flash sale ended")):
        # (The hat's replay-price sale, opened after the show, may have a marker of its own.)
        marker = page.locator(f".replay-marker[data-kind={phase}]", has_text="Silk scarf")
        await marker.click()
        await eventually(lambda s=state: _text_is(page, "#sale-state", s), 10, f"sale {phase}")
        assert await page.text_content("#product-name") == "Silk scarf"
    await screenshot(page, "replay-phone")
    assert page.errors == []
    landing = await open_page(browser, f"{live_server.url}/")
    await landing.wait_for_selector(f"a[href='/replay/{stream_id}']")
    # Someone arriving at the ended show's room is offered its replay.
    room_page = await open_page(browser, f"{live_server.url}/live/{stream_id}")
    await room_page.wait_for_selector("#end-replay:not([hidden])")
    assert await room_page.get_attribute("#end-replay", "href") == f"/replay/{stream_id}"


async def _over(value: Any, floor: float) -> bool:
    """Whether the awaited ``value()`` is above ``floor``."""
    return bool(await value() > floor)


async def _text_is(page: Any, selector: str, text: str) -> bool:
    return await page.text_content(selector) == text


async def test_a_show_of_two_broadcasts_plays_on_and_seeks_into_the_second(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "Hats, twice")
    products = []
    for name in ("Straw hat", "Felt hat", "Wool cap"):
        body = {"name": name, "price_cents": 4500, "currency": "USD"}
        products.append(await host_api.call("POST", "/api/products", body, status=201))
    # The publisher's connection drops and it comes back with another codec: two files, a
    # product pinned during each and one while the camera was away.
    for codec, product in zip(("video/h264", "video/vp8"), products[:2], strict=True):
        host = await go_live(host_api, stream_id, codec=codec)
        try:
            await asyncio.sleep(1.5)
            await host_api.room(stream_id, "pin", product_id=product["id"])
            await asyncio.sleep(1.5)
        finally:
            await host.close()

        async def recorded(n: int = 1 if codec == "video/h264" else 2) -> bool:
            stream = await host_api.call("GET", f"/api/streams/{stream_id}/recordings")
            return len(stream["recordings"]) == n and stream["stream"]["status"] == "ended"

        await eventually(recorded, 15, f"the {codec} broadcast ended and recorded")
        if codec == "video/h264":  # the host pins the cap while the camera is away
            await host_api.room(stream_id, "pin", product_id=products[2]["id"])
            await asyncio.sleep(0.5)
    listing = await host_api.call("GET", f"/api/streams/{stream_id}/recordings")
    first, second = listing["recordings"]
    assert (first["type"], second["type"]) == ("video/mp4", "video/webm")
    pins = [
        e
        for e in (await host_api.call("GET", f"/api/streams/{stream_id}/timeline"))["events"]
        if e["type"] == "pinned"
    ]
    page = await open_page(browser, f"{live_server.url}/replay/{stream_id}")
    await page.wait_for_selector("body[data-state=ready]")

    async def position() -> tuple[str, float]:
        src, at = await page.eval_on_selector("#video", "v => [v.currentSrc, v.currentTime]")
        return src.rsplit("/", 1)[-1], float(at)

    async def in_file(name: str, after_s: float) -> bool:
        src, at = await position()
        return src == name and at > after_s

    async def jump(marker: int, name: str, recording: dict[str, Any]) -> None:
        await page.click(f".replay-marker[data-kind=pin] >> nth={marker}")
        await eventually(lambda: _text_is(page, "#product-name", name), 10, name)
        src, at = await position()
        assert src == recording["name"], (marker, src)
        expected = (pins[marker]["at_ms"] - recording["started_at_ms"]) / 1000
        assert abs(at - expected) < 0.75, (marker, at, expected)

    # The first file plays to its end, then the second follows on its own.
    await eventually(lambda: in_file(first["name"], 0.3), 15, "the first file playing")
    await eventually(lambda: in_file(second["name"], 0.3), 15, "the second file playing")
    # A product pinned during the first broadcast seeks back into the first file, and one
    # pinned during the second into the second.
    assert [p["product"]["name"] for p in pins] == ["Straw hat", "Wool cap", "Felt hat"]
    await jump(0, "Straw hat", first)
    await jump(2, "Felt hat", second)
    await jump(0, "Straw hat", first)
    # The cap was pinned between the two: its marker goes on to the start of the second file.
    await page.click(".replay-marker[data-kind=pin] >> nth=1")
    await eventually(lambda: _text_is(page, "#product-name", "Wool cap"), 10, "the cap's card")
    src, at = await position()
    assert src == second["name"] and at < 0.75, (src, at)
    assert page.errors == []


async def test_a_replay_of_no_show_says_so_without_an_empty_player(
    browser: Any, live_server: LiveServer
) -> None:
    page = await open_page(browser, f"{live_server.url}/replay/no-such-show")
    await page.wait_for_selector("body[data-state=error]")
    assert await page.text_content("#status") == "There is no show here."
    assert await page.is_visible(".replay-home")  # the way back to every show
    for gone in ("#video", "#markers-empty", "#chat-empty", ".replay-heading"):
        assert await page.locator(gone).first.is_hidden(), gone
    assert page.errors == []
