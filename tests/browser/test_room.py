"""The viewer room in headless Chromium: video, chat, moderation, sales, reconnects, safety."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from loadtest.bench_pages import PUBLISH
from tests.browser.conftest import (
    DESKTOP,
    Api,
    LiveServer,
    RoomClient,
    assert_fits,
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
    browser: Any, live_server: LiveServer, live_show: tuple[str, Any]
) -> None:
    stream_id, _ = live_show
    page = await open_page(browser, f"{live_server.url}/live/{stream_id}")

    async def playing() -> Any:
        p = await video_progress(page)
        return p if p["w"] > 0 and p["t"] > 0 else None

    first = await eventually(playing, 15, "the video plays")
    await eventually(lambda: _advanced(page, first["t"] + 0.5), 10, "currentTime advances")
    assert (await video_progress(page))["state"] == "live"
    assert await page.text_content("#state-text") == "LIVE"
    assert page.errors == []


async def _advanced(page: Any, beyond: float) -> bool:
    return bool((await video_progress(page))["t"] > beyond)


async def sale_setup(
    api: Api, stream_id: str, quantity: int = 5, name: str = "Silk scarf, hand-dyed"
) -> tuple[int, int]:
    """A pinned product and a sale of it in the stream; returns (product_id, sale_id)."""
    product = await api.call(
        "POST",
        "/api/products",
        {"name": name, "price_cents": 2990, "currency": "USD"},
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
    browser: Any, live_server: LiveServer, host_api: Api, show_room: tuple[str, RoomClient]
) -> None:
    stream_id, host = show_room
    # A browser publishing its fake camera, as a host's studio does.
    studio = await open_page(browser, f"{live_server.url}/healthz")
    await studio.evaluate(PUBLISH, [stream_id, host_api.headers["Authorization"][7:]])
    await host.request(type="announce", text="Free shipping on every order tonight")
    await host.request(type="chat", text="Welcome in! The scarves drop in a minute")
    fan = await RoomClient.join(
        Api(live_server, host_api.session, live_server.token("viewer", "zoe", "Zoe")), stream_id
    )
    await fan.request(type="chat", text="the rust one please 😍")
    await fan.request(type="chat", text="how long is it?")
    await host.request(type="chat", text="Hand-dyed silk, 180 × 90 cm")
    await fan.close()
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
    for page in (buyer, other):
        await page.wait_for_selector("body[data-state=live]", timeout=15000)
    await screenshot(buyer, "room-sale-phone")
    await screenshot(other, "room-sale-desktop")
    assert await other.text_content("#shelf .shelf-name") == "Silk scarf, hand-dyed"
    assert await other.text_content("#shelf .shelf-tag") == "Flash sale now"
    await buyer.click("#orders-btn")  # on a phone the bag opens the shop sheet
    await buyer.wait_for_selector("#shelf-list .shelf-item", state="visible")
    await screenshot(buyer, "room-shop-sheet-phone")
    await buyer.click("#orders-close")
    # Under the pointer (where "Buy now" was tapped) Pay keeps its green, so its dark text reads.
    await buyer.hover("#pay")
    await buyer.wait_for_timeout(400)  # past the buttons' background transition
    bg = await buyer.eval_on_selector("#pay", "b => getComputedStyle(b).backgroundColor")
    assert bg == "rgb(47, 191, 113)", f"the hovered Pay button is {bg}, not the success green"
    await buyer.click("#pay")
    await buyer.wait_for_selector("#buy[data-state=limit]")
    assert await buyer.text_content("#outcome") == "Paid. Thank you!"
    assert await buyer.text_content("#order-list .order-state") == "Paid"
    assert buyer.errors == [] and other.errors == []


async def chat_texts(page: Any) -> list[str]:
    return list(
        await page.eval_on_selector_all(
            "#chat .msg:not(.system) .text", "els => els.map(e => e.textContent)"
        )
    )


async def say(page: Any, text: str) -> None:
    await page.fill("#chat-input", text)
    await page.press("#chat-input", "Enter")


@pytest.fixture
async def live_show(host_api: Api) -> AsyncIterator[tuple[str, Any]]:
    """A fresh show with an aiortc host publishing counter video into it."""
    stream_id = await new_show(host_api, "Scarves, live from the studio")
    host = await go_live(host_api, stream_id)
    yield stream_id, host
    await host.close()


@pytest.fixture
async def show_room(host_api: Api) -> AsyncIterator[tuple[str, RoomClient]]:
    """A fresh show whose host sits in the room on a Python websocket."""
    stream_id = await new_show(host_api)
    host = await RoomClient.join(host_api, stream_id)
    yield stream_id, host
    await host.close()


async def test_guest_chats_host_sees_and_deletes_it(
    browser: Any, live_server: LiveServer, host_api: Api, show_room: tuple[str, RoomClient]
) -> None:
    stream_id, host = show_room
    viewer = await open_page(browser, f"{live_server.url}/live/{stream_id}")
    other = await open_page(browser, f"{live_server.url}/live/{stream_id}", DESKTOP)
    await viewer.click("#chat-input")
    await viewer.keyboard.type("h")  # the first keystroke asks for a name
    await sign_in_as_guest(viewer, "Lena")
    await say(viewer, "is the blue one still there?")

    async def posted() -> Any:
        return next((e for e in host.chat() if e["text"] == "is the blue one still there?"), None)

    msg = await eventually(posted, 10, "the host receives the chat")
    assert msg["name"] == "Lena" and msg["role"] == "viewer"
    await text_in_chat(other, "is the blue one still there?")
    await host_api.room(stream_id, "delete", seq=msg["seq"])
    for page in (viewer, other):
        await eventually(
            lambda p=page: _gone(p, "is the blue one still there?"), 10, "deleted message goes"
        )
    assert viewer.errors == [] and other.errors == []


async def text_in_chat(page: Any, text: str) -> None:
    async def shown() -> bool:
        return text in await chat_texts(page)

    await eventually(shown, 10, f"chat shows {text!r}")


async def _gone(page: Any, text: str) -> bool:
    return text not in await chat_texts(page)


async def test_network_drop_resumes_chat_with_nothing_lost_or_doubled(
    browser: Any,
    live_server: LiveServer,
    host_api: Api,
    show_room: tuple[str, RoomClient],
) -> None:
    stream_id, host = show_room
    _, sale_id = await sale_setup(host_api, stream_id)
    viewer = await open_page(browser, f"{live_server.url}/live/{stream_id}")
    for i in range(3):
        await host.request(type="chat", text=f"before {i}")
    await text_in_chat(viewer, "before 2")
    await viewer.wait_for_selector("#buy[data-state=notopen]")
    await viewer.context.set_offline(True)
    await viewer.wait_for_selector("body[data-state=reconnecting]")
    for i in range(5):
        await host.request(type="chat", text=f"while offline {i}")
    await host.request(type="announce", text="Sale is on")
    await host_api.call("POST", f"/api/sales/{sale_id}/open", {"countdown_s": 0})
    await viewer.context.set_offline(False)
    await viewer.wait_for_selector("#buy[data-state=open]")  # the sale event was not lost
    assert await viewer.text_content("#announcement-text") == "Sale is on"
    await text_in_chat(viewer, "while offline 4")
    await host.request(type="chat", text="after")
    await text_in_chat(viewer, "after")
    expected = [f"before {i}" for i in range(3)]
    expected += [f"while offline {i}" for i in range(5)] + ["after"]
    assert await chat_texts(viewer) == expected
    assert viewer.errors == []


async def test_markup_in_chat_and_names_is_shown_as_text(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    evil = "<img src=x onerror=alert(1)>"
    stream_id = await new_show(host_api)
    url = f"{live_server.url}/live/{stream_id}"
    writer = await open_page(browser, url)
    reader = await open_page(browser, url, DESKTOP)
    await writer.click("#chat-input")
    await writer.keyboard.type("x")
    await sign_in_as_guest(writer, evil)
    await say(writer, evil)
    await text_in_chat(reader, evil)
    for page in (writer, reader):
        await text_in_chat(page, evil)
        assert await page.eval_on_selector_all(
            "#chat .name", "els => els.map(e => e.textContent)"
        ) == [evil]
        assert await page.query_selector_all("#chat img") == []
        assert await page.query_selector_all("img[src=x]") == []
    await writer.wait_for_timeout(300)
    assert writer.dialogs == [] and reader.dialogs == []
    assert "Signed in as <img" in (await writer.text_content("#signed-in") or "")


async def test_viewer_sees_the_show_end(
    browser: Any, live_server: LiveServer, host_api: Api, live_show: tuple[str, Any]
) -> None:
    stream_id, host = live_show
    viewer = await open_page(browser, f"{live_server.url}/live/{stream_id}")
    await viewer.wait_for_selector("body[data-state=live]", timeout=15000)
    await host_api.call("DELETE", host.session_id)  # the host ends the show
    await viewer.wait_for_selector("body[data-state=ended]", timeout=10000)
    await viewer.wait_for_selector("#end-card:not([hidden])")
    assert await viewer.text_content("#end-card h1") == "This show has ended"
    assert await viewer.text_content("#state-text") == "Ended"
    assert viewer.errors == []


async def test_shop_token_in_the_fragment_signs_in_and_language_switch_sticks(
    browser: Any, live_server: LiveServer, show_room: tuple[str, RoomClient]
) -> None:
    stream_id, host = show_room
    token = live_server.token("viewer", "shop-ann", "Ann from the shop")
    page = await open_page(browser, f"{live_server.url}/live/{stream_id}#token={token}")
    await page.wait_for_selector("body[data-state=waiting]")
    assert "token" not in page.url
    assert await page.evaluate("() => sessionStorage.getItem('livesell.token')") == token
    await say(page, "hello from the shop")
    assert await page.is_hidden("#guest-sheet")

    async def posted() -> Any:
        return next((e for e in host.chat() if e["text"] == "hello from the shop"), None)

    msg = await eventually(posted, 10, "the shop user's message")
    assert (msg["user_id"], msg["name"]) == ("shop-ann", "Ann from the shop")

    await page.select_option("#lang", "zh")
    assert await page.get_attribute("#chat-input", "placeholder") == "说点什么…"
    await page.reload()
    await page.wait_for_selector("body[data-state=waiting]")
    assert await page.get_attribute("#chat-input", "placeholder") == "说点什么…"
    assert await page.text_content("#state-text") == "尚未开始"
    assert await page.evaluate("() => document.documentElement.lang") == "zh-CN"
    await screenshot(page, "room-waiting-zh-phone")


async def test_sold_out_and_ended_are_said_in_words(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api)
    _, sale_id = await sale_setup(host_api, stream_id, quantity=1)
    await host_api.call("POST", f"/api/sales/{sale_id}/open", {"countdown_s": 0})
    url = f"{live_server.url}/live/{stream_id}"
    first = await open_page(browser, url)
    second = await open_page(browser, url)
    await first.click("#buy[data-state=open]")
    await sign_in_as_guest(first, "Quick")
    await first.wait_for_selector("#reserved:not([hidden])")
    await second.wait_for_selector("#buy[data-state=soldout]")
    assert await second.text_content("#buy") == "Sold out"
    assert await second.is_disabled("#buy")
    await host_api.call("POST", f"/api/sales/{sale_id}/close")
    await second.wait_for_selector("#buy[data-state=ended]")
    assert await second.text_content("#buy") == "Sale ended"
    await first.click("#cancel")  # the hold outlives the sale; cancelling still works
    await first.wait_for_selector("#buy[data-state=ended]")
    assert await first.text_content("#outcome") == "Reservation cancelled"
    assert first.errors == [] and second.errors == []


async def test_every_room_control_is_reachable_by_keyboard_and_labelled(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api)
    _, sale_id = await sale_setup(host_api, stream_id)
    await host_api.call("POST", f"/api/sales/{sale_id}/open", {"countdown_s": 0})
    page = await open_page(browser, f"{live_server.url}/live/{stream_id}")
    await page.wait_for_selector("#buy[data-state=open]")
    reached = set()
    for _ in range(12):
        await page.keyboard.press("Tab")
        reached.add(await page.evaluate("() => document.activeElement.id"))
    assert {"lang", "buy", "chat-input", "send", "like"} <= reached, reached
    unlabelled = await page.evaluate(
        """() => [...document.querySelectorAll('button, input, select')]
             .filter((e) => e.offsetParent !== null)
             .filter((e) => !(e.getAttribute('aria-label') || e.textContent.trim()
                              || e.labels?.length))
             .map((e) => e.id)"""
    )
    assert unlabelled == []
    await page.focus("#buy")
    await page.keyboard.press("Enter")  # Buy from the keyboard asks for a name first
    await page.wait_for_selector("#guest-sheet:not([hidden])")
    assert await page.evaluate("() => document.activeElement.id") == "guest-name"
    await page.keyboard.press("Escape")
    await page.wait_for_selector("#guest-sheet", state="hidden")
    assert await page.evaluate("() => document.activeElement.id") == "buy"


async def test_a_room_for_no_show_says_so(browser: Any, live_server: LiveServer) -> None:
    page = await open_page(browser, f"{live_server.url}/live/no-such-show")
    await page.wait_for_selector("body[data-state=notfound]")
    assert await page.text_content("#end-title") == "There is no show here."
    assert await page.is_hidden("#end-text")


async def test_a_long_product_name_keeps_the_buy_button_on_a_phone(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api)
    name = "Handmade stoneware coffee mug, 350 ml"
    _, sale_id = await sale_setup(host_api, stream_id, name=name)
    await host_api.call("POST", f"/api/sales/{sale_id}/open", {"countdown_s": 0})
    page = await open_page(browser, f"{live_server.url}/live/{stream_id}")  # 390 px wide
    await page.wait_for_selector("#buy[data-state=open]")
    assert await page.text_content("#product-name") == name  # cut short on screen, not in text
    await assert_fits(page, "#product-card", "#buy", "#product-name")
    await screenshot(page, "room-long-name-phone")


async def test_the_sale_strip_never_breaks_a_label_on_a_phone(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    """'FLASH SALE', the clock and '5,000 of 5,000 left' each stay on one line at 390 px (the
    strip wraps between them when it must, never inside one)."""
    stream_id = await new_show(host_api)
    _, sale_id = await sale_setup(host_api, stream_id, quantity=5000)
    await host_api.call("POST", f"/api/sales/{sale_id}/open", {"countdown_s": 0})
    page = await open_page(browser, f"{live_server.url}/live/{stream_id}")  # 390 px wide
    await page.wait_for_selector("#buy[data-state=open]")
    await text_becomes(page, "#sale-left", "5,000 of 5,000 left")
    heights = await page.eval_on_selector_all(
        ".sale-strip > *", "els => els.map(e => [e.textContent.trim(), e.offsetHeight])"
    )
    assert all(height < 26 for _, height in heights), heights  # two lines would be ~36 px
    await assert_fits(page, "#product-card", "#sale-left")
    await screenshot(page, "room-sale-strip-phone")


async def test_chinese_page_says_server_errors_and_badges_in_chinese(
    browser: Any, live_server: LiveServer, host_api: Api, show_room: tuple[str, RoomClient]
) -> None:
    stream_id, host = show_room
    _, sale_id = await sale_setup(host_api, stream_id)
    await host_api.call("POST", f"/api/sales/{sale_id}/open", {"countdown_s": 0})
    token = live_server.token("viewer", "ann", "Ann")
    page = await open_page(browser, f"{live_server.url}/live/{stream_id}#token={token}")
    await host.request(type="chat", text="Welcome!")
    await page.wait_for_selector("#chat .role-host")
    assert await page.text_content("#chat .role-host") == "Host"
    await page.select_option("#lang", "zh")
    assert await page.text_content("#chat .role-host") == "主播"  # badges already on screen too
    await page.click("#buy[data-state=open]")
    await page.wait_for_selector("#reserved:not([hidden])")
    [order] = await page.evaluate(
        "() => JSON.parse(sessionStorage.getItem('livesell.orders.ann')).map((o) => o.id)"
    )
    # The order is cancelled elsewhere (another tab): paying it here is refused (409 order_state).
    ann = Api(live_server, host_api.session, token)
    await ann.call("POST", f"/api/orders/{order}/cancel")
    await page.click("#pay")
    await text_becomes(page, "#outcome", "出错了：该订单已无法更改")
    assert page.errors == []
