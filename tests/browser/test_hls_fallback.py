"""Viewers WebRTC cannot serve watch over HLS: turned away by a full relay (WHEP 503
stream_full) they still buy; a browser without WebRTC at all plays HLS from the start."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from tests.browser.conftest import (
    PHONE,
    Api,
    LiveServer,
    eventually,
    go_live,
    new_show,
    open_page,
    serve,
)
from tests.browser.test_room import sale_setup, sign_in_as_guest


@pytest.fixture(scope="module")
def full_server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server whose relay takes no WHEP viewer at all: every one is refused as full."""
    with serve(redis_url, tmp_path_factory.mktemp("full"), stream_max_viewers="0") as server:
        yield server


@pytest.fixture
async def full_api(full_server: LiveServer) -> AsyncIterator[Api]:
    """The full server's API as host ``hana``."""
    async with aiohttp.ClientSession() as session:
        yield Api(full_server, session, full_server.token("host", "hana", "Hana"))


@asynccontextmanager
async def h264_show(api: Api, title: str) -> AsyncIterator[str]:
    """A new show live in H.264 (so it has HLS) from an aiortc host until the block ends."""
    stream_id = await new_show(api, title)
    host = await go_live(api, stream_id, codec="video/h264")
    try:
        yield stream_id
    finally:
        await host.close()


async def test_a_viewer_refused_by_a_full_relay_plays_hls_and_buys(
    browser: Any, full_server: LiveServer, full_api: Api
) -> None:
    async with h264_show(full_api, "Overflow crowd") as stream_id:
        _, sale_id = await sale_setup(full_api, stream_id)
        page = await open_page(browser, f"{full_server.url}/live/{stream_id}")
        await page.wait_for_selector("body[data-via=hls]", timeout=15000)

        async def playhead() -> float:
            return float(await page.eval_on_selector("#video", "v => v.currentTime"))

        async def playing(beyond: float) -> bool:
            return await playhead() > beyond

        await eventually(lambda: playing(0.5), 20, "HLS playing")
        start = await playhead()
        await eventually(lambda: playing(start + 1.0), 10, "HLS advancing")

        async def shown_live() -> bool:
            # A stall of the playlist (a segment late on a loaded machine) shows "Reconnecting…"
            # for a moment; playing HLS must settle on LIVE.
            return await page.text_content("#state-text") == "LIVE"

        await eventually(shown_live, 10, "the room shows LIVE while HLS plays")
        await full_api.call("POST", f"/api/sales/{sale_id}/open", {})
        await page.wait_for_selector("#buy[data-state=open]", timeout=10000)
        await page.click("#buy")
        await sign_in_as_guest(page, "Ola")
        await page.wait_for_selector("#reserved:not([hidden])")
        assert page.errors == []


async def test_a_browser_without_webrtc_plays_hls(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    async with h264_show(host_api, "No WebRTC here") as stream_id:
        context = await browser.new_context(viewport=PHONE, locale="en-US")
        # A browser (or a locked-down webview) without WebRTC at all.
        await context.add_init_script("delete window.RTCPeerConnection;")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{live_server.url}/live/{stream_id}")
        await page.wait_for_selector("body[data-via=hls]", timeout=15000)

        async def playing() -> bool:
            return float(await page.eval_on_selector("#video", "v => v.currentTime")) > 0.5

        await eventually(playing, 20, "HLS playing")
        assert errors == []
