"""The landing page, the host studio and the ops dashboard in headless Chromium.

The host signs in with the link `livesell serve` printed and broadcasts from Chromium's fake
camera; a viewer page plays it; the host sells and moderates from the studio; the operator runs
the sale's audit from /ops. Screenshots go to var/screenshots/.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiohttp

from chat.protocol import decode, encode
from tests.browser.conftest import (
    CHROMIUM_ARGS,
    DESKTOP,
    PHONE,
    Api,
    LiveServer,
    assert_fits,
    chromium_or_skip,
    eventually,
    go_live,
    new_show,
    open_page,
    screenshot,
)


async def text_of(page: Any, selector: str) -> str:
    """The element's text, stripped ('' when absent)."""
    return ((await page.text_content(selector)) or "").strip()


async def text_becomes(page: Any, selector: str, want: str, within_s: float = 10) -> None:
    """Wait until ``selector`` shows exactly ``want``."""

    seen: list[str] = []

    async def check() -> bool:
        seen.append(await text_of(page, selector))
        return seen[-1] == want

    try:
        await eventually(check, within_s, f"{selector} shows {want!r}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; it showed {seen[-1]!r}") from None


async def video_playing(page: Any, selector: str) -> dict[str, float]:
    """Wait until the video has frames and its time moves on; returns its size and time."""

    async def probe() -> Any:
        p = await page.evaluate(
            f"() => {{ const v = document.querySelector('{selector}');"
            " return {t: v.currentTime, w: v.videoWidth, h: v.videoHeight}; }"
        )
        return p if p["w"] > 0 and p["t"] > 0 else None

    first = await eventually(probe, 20, f"{selector} plays")

    async def advanced() -> Any:
        p = await probe()
        return p if p and p["t"] > first["t"] + 0.5 else None

    return dict(await eventually(advanced, 10, f"{selector} currentTime advances"))


async def test_landing_lists_a_live_show_and_its_link_opens_the_room(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    title = f"Vintage cameras {uuid.uuid4().hex[:4]}"
    stream_id = await new_show(host_api, title)
    later = await new_show(host_api, "Sunday flea market")
    host = await go_live(host_api, stream_id)
    try:
        page = await open_page(browser, live_server.url + "/")
        card = f'#live-list a[href="/live/{stream_id}"]'
        await page.wait_for_selector(card)
        # Live shows come first; one not started yet waits under "Coming up".
        await page.wait_for_selector(f'#upcoming-list a[href="/live/{later}"]')
        assert await page.is_visible("#upcoming")
        assert await text_of(page, f"{card} .title") == title
        assert await text_of(page, f"{card} .host") == "with hana"
        assert await text_of(page, f"{card} .badge-live") == "● LIVE"
        assert (await text_of(page, f"{card} .thumb-viewers")).endswith("watching")
        await screenshot(page, "landing-phone")
        await page.set_viewport_size(DESKTOP)
        await screenshot(page, "landing-desktop")
        # The language switch: every string of the page, and the choice sticks.
        await page.select_option("#lang", "zh")
        await text_becomes(page, "h1", "正在直播，马上抢")
        assert await text_of(page, f"{card} .badge-live") == "● 直播中"
        await page.reload()
        await text_becomes(page, f"{card} .host", "主播 hana")
        await page.select_option("#lang", "en")
        await page.click(card)
        await page.wait_for_url(f"**/live/{stream_id}")
        await video_playing(page, "#video")
        assert page.errors == []
    finally:
        await host.close()


async def viewer_chat(server: LiveServer, stream_id: str, text: str, name: str) -> int:
    """Post one chat message as a signed-in viewer over the room socket; returns its seq."""
    url = server.url.replace("http", "ws") + f"/ws/rooms/{stream_id}"
    token = server.token("viewer", name.lower(), name)
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_bytes(encode({"type": "auth", "token": token}))
        await ws.send_bytes(encode({"type": "chat", "text": text, "ref": "c1"}))
        while True:
            msg = decode(await ws.receive_bytes(timeout=10))
            events = msg["events"] if msg["type"] == "batch" else [msg]
            for ev in events:
                if ev.get("type") == "ack" and ev.get("ref") == "c1":
                    return int(ev["seq"])
                assert ev.get("type") != "error", ev


async def test_host_goes_live_sells_and_moderates_from_the_studio_then_ops_audits(
    browser: Any, live_server: LiveServer, http: Any
) -> None:
    links = live_server.links()
    # The host follows the studio link printed at start-up; the code leaves the address bar.
    studio = await open_page(browser, links["studio"], DESKTOP)
    await studio.wait_for_selector("#view-create:not([hidden])")
    assert "code=" not in studio.url
    title = f"Ceramics night {uuid.uuid4().hex[:4]}"
    await studio.fill("#create-title", title)
    await screenshot(studio, "studio-create-desktop")
    stream_id = await studio.input_value("#create-id")
    await studio.click("#create-form button[type=submit]")
    await studio.wait_for_url(f"**/studio/{stream_id}")
    assert await text_of(studio, "#show-title") == title

    # Go live from the fake camera.
    await studio.wait_for_selector("#golive:not([disabled])", timeout=15000)
    await studio.click("#golive")
    await text_becomes(studio, "#golive", "End show", 20)
    assert await studio.is_visible("#onair")

    # A viewer in another context sees the video playing.
    viewer = await open_page(browser, f"{live_server.url}/live/{stream_id}", PHONE)
    played = await video_playing(viewer, "#video")
    assert played["w"] > 0
    # The room counts its audience: the viewer's socket, not the studio's own.
    await text_becomes(studio, "#st-viewers", "1", 10)
    # The studio prefers H.264, so the show is recorded and in HLS without transcoding; the
    # recording places audio and video by Chromium's RTCP sender reports.
    admin = {"Authorization": f"Bearer {live_server.token('admin', 'root')}"}

    async def recording() -> dict[str, Any] | None:
        url = f"{live_server.url}/api/streams/{stream_id}/metrics"
        async with http.get(url, headers=admin) as resp:
            metrics = await resp.json()
        assert metrics["codecs"]["video"] == "video/H264", metrics["codecs"]
        rec: dict[str, Any] = metrics.get("recording") or {}
        return rec if rec.get("frames_written") else None

    rec = await eventually(recording, 10, "the recording written")
    assert rec["hls"] and rec["sync"] == "sender_reports", rec

    # A product, pinned, and a sale started with a countdown.
    await studio.click("#new-product")
    await studio.fill("#pf-name", "Stoneware mug, speckled")
    await studio.fill("#pf-price", "24.00")
    await studio.click("#product-form button[type=submit]")
    await studio.wait_for_selector("#products .product")
    await studio.click("#products .product button")
    await studio.wait_for_selector("#products .product.is-pinned")
    await studio.fill("#sf-price", "18.00")
    await studio.fill("#sf-qty", "5")
    await studio.fill("#sf-countdown", "3")
    await studio.click("#sf-start")
    await text_becomes(studio, "#sale-state", "Countdown", 5)
    assert (await text_of(studio, "#sale-clock")).startswith("Opens in 00:0")
    await text_becomes(studio, "#sale-state", "Open", 10)
    await text_becomes(studio, "#sale-left", "5")

    # The viewer buys from the room (signing in as a guest on the way); the studio sees the
    # stock drop and the reservation, then the payment.
    sale_id = int((await studio.get_attribute("#sale-now", "data-sale")) or 0)
    await viewer.wait_for_selector("#buy[data-state=open]", timeout=10000)
    await viewer.click("#buy")
    await viewer.wait_for_selector("#guest-sheet:not([hidden])")
    await viewer.fill("#guest-name", "Bea")
    await viewer.click("#guest-go")
    await viewer.wait_for_selector("#reserved:not([hidden])", timeout=10000)
    await text_becomes(studio, "#sale-left", "4", 5)
    await text_becomes(studio, "#sale-reserved", "1", 5)
    await text_becomes(studio, "#st-orders", "1", 5)
    await viewer.click("#pay")
    await text_becomes(studio, "#sale-paid", "1", 5)
    await text_becomes(studio, "#sale-reserved", "0", 5)
    assert await text_of(studio, "#st-gmv") == "$18.00"

    # Viewers' chat reaches the studio; the host replies, and deletes a message from there.
    kept = await viewer_chat(live_server, stream_id, "is the mug dishwasher safe?", "Vic")
    spam = await viewer_chat(live_server, stream_id, "cheap followers at spam.example", "Bot")
    row = f'#chat li[data-seq="{spam}"]'
    await studio.wait_for_selector(row)
    assert await text_of(studio, f"{row} .msg-name") == "Bot"
    await studio.click(f"{row} summary")
    await studio.click(f"{row} .menu button:has-text('Delete message')")
    await studio.wait_for_selector(row, state="detached")
    assert await text_of(studio, f'#chat li[data-seq="{kept}"] .msg-text') == (
        "is the mug dishwasher safe?"
    )
    await studio.fill("#chat-input", "Yes, and microwave safe too!")
    await studio.press("#chat-input", "Enter")
    await studio.wait_for_selector("#chat li.role-host")

    await screenshot(studio, "studio-live-sale-desktop")
    await studio.set_viewport_size(PHONE)
    await studio.locator("#sale-now").scroll_into_view_if_needed()
    await screenshot(studio, "studio-live-sale-phone")
    assert studio.errors == []

    # The operator follows the ops link and runs the sale's audit from the page.
    ops = await open_page(browser, links["ops"], DESKTOP)
    sale_row = f'#sales tr[data-sale="{sale_id}"]'
    await ops.wait_for_selector(sale_row)
    await ops.click(f"{sale_row} .audit button")
    await text_becomes(ops, f"{sale_row} .audit-ok", "✔ passed", 15)
    await ops.wait_for_selector(f'#streams a[href="/live/{stream_id}"]')
    await screenshot(ops, "ops-desktop")
    await ops.set_viewport_size(PHONE)
    await screenshot(ops, "ops-phone")
    assert ops.errors == []

    # The host ends the show, with a confirmation.
    await studio.set_viewport_size(DESKTOP)
    await studio.click("#golive")
    assert "sale closes" in await text_of(studio, "#end-dialog p")
    await studio.click("#end-confirm")
    await text_becomes(studio, "#golive", "Go live again", 10)
    await viewer.wait_for_selector("body[data-state=ended]", timeout=10000)
    # Ending the show closed its sale: nobody buys from a show that is over.
    await viewer.wait_for_selector("#buy[data-state=ended]", state="attached", timeout=10000)


async def test_studio_says_when_the_show_is_already_live_elsewhere(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "Live in another tab")
    host = await go_live(host_api, stream_id)
    try:
        # A shop hands its own token over in the fragment, as the README describes.
        token = live_server.token("host", "hana", "Hana")
        url = f"{live_server.url}/studio/{stream_id}#token={token}"
        studio = await open_page(browser, url, DESKTOP)
        await studio.wait_for_selector("#golive:not([disabled])", timeout=15000)
        assert "#token" not in studio.url
        await screenshot(studio, "studio-ready-desktop")
        await text_becomes(studio, "#live-msg", "This show is live from another tab or device.")
        await studio.click("#golive")

        async def refused() -> bool:
            return (await text_of(studio, "#live-msg")).startswith("This show is already live")

        await eventually(refused, 15, "the 409 is explained")
        assert await text_of(studio, "#golive") == "Go live"
        assert studio.errors == []
    finally:
        await host.close()


async def test_studio_explains_a_blocked_camera(live_server: LiveServer, host_api: Api) -> None:
    from playwright.async_api import async_playwright

    stream_id = await new_show(host_api, "Camera says no")
    token = live_server.token("host", "hana", "Hana")
    # A browser that asks before sharing the camera (no fake-UI flag), and a visitor who has
    # not allowed it: Playwright answers every permission prompt with "deny".
    args = [a for a in CHROMIUM_ARGS if a != "--use-fake-ui-for-media-stream"]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium_or_skip(), args=args)
        try:
            page = await open_page(
                browser, f"{live_server.url}/studio/{stream_id}#token={token}", DESKTOP
            )
            await page.wait_for_selector("#cam-state:not([hidden])", timeout=10000)
            assert await text_of(page, "#cam-state-title") == "Camera access is blocked"
            assert "allow the camera" in await text_of(page, "#cam-state-body")
            assert await page.is_disabled("#golive")
            await screenshot(page, "studio-camera-blocked-desktop")
            assert page.errors == []
        finally:
            await browser.close()


async def room_events(server: LiveServer, stream_id: str, want: int) -> list[dict[str, Any]]:
    """The first ``want`` sequenced events of a room, read as a fresh viewer from seq 0."""
    url = server.url.replace("http", "ws") + f"/ws/rooms/{stream_id}?since=0"
    out: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        while len(out) < want:
            msg = decode(await ws.receive_bytes())
            events = msg["events"] if msg["type"] == "batch" else [msg]
            out += [e for e in events if e.get("seq") and e["type"] not in ("resumed", "snapshot")]
    return out


async def test_studio_moderation_controls_reach_the_room(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "House rules")
    token = live_server.token("host", "hana", "Hana")
    studio = await open_page(
        browser, f"{live_server.url}/studio/{stream_id}#token={token}", DESKTOP
    )
    await studio.wait_for_selector("#chat-empty:not([hidden])")
    # Words first: every process applies them from the room's channel, in order, so once the
    # later events are seen the words hold everywhere.
    await studio.fill("#words-input", "spam\ncheap followers")
    await studio.click("#words-form button[type=submit]")
    await text_becomes(studio, "#words-saved", "2 words saved")
    await studio.select_option("#slow-mode", "10")
    await studio.fill("#announce-input", "Free shipping tonight only")
    await studio.click("#announce-form button[type=submit]")
    events = await asyncio.wait_for(room_events(live_server, stream_id, 2), 10)
    assert [(e["type"], e.get("seconds"), e.get("text")) for e in events] == [
        ("slow_mode", 10, None),
        ("announcement", None, "Free shipping tonight only"),
    ]
    # The banned words hold for viewers.
    url = live_server.url.replace("http", "ws") + f"/ws/rooms/{stream_id}"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_bytes(encode({"type": "auth", "token": live_server.token("viewer", "zed")}))
        await ws.send_bytes(encode({"type": "chat", "text": "Cheap followers here", "ref": "x"}))
        while True:
            msg = decode(await ws.receive_bytes(timeout=10))
            events = msg["events"] if msg["type"] == "batch" else [msg]
            answer = [e for e in events if e.get("ref") == "x"]
            if answer:
                assert (answer[0]["type"], answer[0].get("code")) == ("error", "banned_word")
                break
    assert await text_of(studio, "#mod-error") == ""
    assert studio.errors == []
    # Back on the landing page, a signed-in host is offered "Start a show".
    await studio.click(".brand")
    await studio.wait_for_selector("#start-show:not([hidden])")
    assert await studio.is_hidden("#ops-link")  # the dashboard is for admins


async def test_studio_links_ops_for_admins_and_names_the_command_for_new_links(
    browser: Any, live_server: LiveServer
) -> None:
    # A used or stale code: the message names a command that works after `make serve`.
    page = await open_page(browser, f"{live_server.url}/studio?code=used-up", DESKTOP)
    await page.wait_for_selector("#view-signin:not([hidden])")
    assert "make login-link" in await text_of(page, "#signin-error")
    admin = live_server.token("admin", "root", "Operator")
    page = await open_page(browser, f"{live_server.url}/studio#token={admin}", DESKTOP)
    await page.wait_for_selector("#view-create:not([hidden])")
    assert await page.is_visible("#ops-link")
    await page.click("#ops-link")
    await page.wait_for_url("**/ops")
    await page.wait_for_selector("#view-ops:not([hidden])")  # same tab: still signed in
    host = live_server.token("host", "hana", "Hana")
    page = await open_page(browser, f"{live_server.url}/studio#token={host}", DESKTOP)
    await page.wait_for_selector("#view-create:not([hidden])")
    assert not await page.is_visible("#ops-link")


async def test_a_studio_link_to_no_show_offers_to_create_it_instead_of_a_dead_console(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    """/studio/<unknown>: the banner, no camera or sale controls, and the create form with
    that link name, which creates the show."""
    wanted = f"gone-{uuid.uuid4().hex[:6]}"
    host = live_server.token("host", "hana", "Hana")
    page = await open_page(browser, f"{live_server.url}/studio/{wanted}#token={host}", DESKTOP)
    await page.wait_for_selector("#banner:not([hidden])")
    assert "no show with this link" in await text_of(page, "#banner")
    await page.wait_for_selector("#view-create:not([hidden])")
    assert await page.is_hidden("#golive") and await page.is_hidden("#sale-form")
    assert await page.input_value("#create-id") == wanted
    await page.fill("#create-title", "Back again")
    await page.click("#create-form button[type=submit]")
    await page.wait_for_selector("#view-console .col-stage:not([hidden])")
    assert (await host_api.call("GET", f"/api/streams/{wanted}"))["title"] == "Back again"
    assert page.errors == []


async def test_long_names_fit_the_studio_and_the_landing_on_a_phone(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    title = "Handmade stoneware and porcelain evening with the whole workshop, live from Jingdezhen"
    stream_id = await new_show(host_api, title)
    product = {"name": "Handmade stoneware coffee mug, 350 ml", "price_cents": 2400}
    await host_api.call("POST", "/api/products", product, status=201)
    # An admin: the header also carries the Ops link (the show's title is hidden on a phone).
    token = live_server.token("admin", "root", "Operator")
    studio = await open_page(browser, f"{live_server.url}/studio/{stream_id}#token={token}", PHONE)
    await studio.wait_for_selector("#products .product")
    await assert_fits(studio, "#products .product", "#golive", "#ops-link", "#lang")
    await screenshot(studio, "studio-long-names-phone")
    publisher = await go_live(host_api, stream_id)
    try:
        landing = await open_page(browser, f"{live_server.url}/", PHONE)
        await landing.wait_for_selector(f"a[href='/live/{stream_id}']")
        await assert_fits(landing, f"a[href='/live/{stream_id}']")
        await screenshot(landing, "landing-long-title-phone")
    finally:
        await publisher.close()


async def test_studio_in_chinese_says_a_refused_product_in_chinese(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    stream_id = await new_show(host_api, "价格太高")
    token = live_server.token("host", "hana", "Hana")
    url = f"{live_server.url}/studio/{stream_id}#token={token}"
    studio = await open_page(browser, url, DESKTOP, locale="zh-CN")
    await studio.click("#new-product")
    await studio.fill("#pf-name", "金杯")
    await studio.fill("#pf-price", "20000000000")  # over the server's limit: 400 bad_request
    await studio.click("#product-form button[type=submit]")
    # Said in Chinese, under the price it is about.
    note = studio.locator("#product-form .field-error")
    await note.wait_for()
    assert await note.text_content() == "请输入 0 到 10,000,000,000 之间的价格"
    assert await studio.locator("#pf-price").get_attribute("aria-invalid") == "true"
    assert studio.errors == []
