"""A new show's analytics on the ops page: one minute of data and all-zero series read honestly.

A show that has sold once (not live: no viewers, no chat) has one minute of figures. Its orders
and GMV charts draw that minute as a visible bar labelled with its value; its viewers and chat
charts, all zeros, draw a flat baseline captioned "No … yet" instead of a scale of 0.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp

from tests.browser.conftest import (
    DESKTOP,
    Api,
    LiveServer,
    eventually,
    new_show,
    open_page,
    open_sale,
    screenshot,
)

#: What a chart tells a test: its caption, points, and where its colour's pixels are: the
#: tallest vertical run (a bar's height) and how many columns hold any (a line's width).
CHART_STATE = """([key, hex]) => {
    const c = document.querySelector(`#an-charts canvas[data-key="${key}"]`);
    const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
    let tallest = 0, columns = 0;
    for (let x = 0; x < c.width; x++) {
        let run = 0, any = false;
        for (let y = 0; y < c.height; y++) {
            const i = (y * c.width + x) * 4;
            const hit = Math.abs(d[i] - r) < 16 && Math.abs(d[i + 1] - g) < 16
                && Math.abs(d[i + 2] - b) < 16 && d[i + 3] > 240;
            run = hit ? run + 1 : 0;
            any = any || hit;
            tallest = Math.max(tallest, run);
        }
        if (any) columns++;
    }
    return { caption: c.dataset.caption, points: Number(c.dataset.points), tallest,
             wide: columns / c.width, height: c.height / devicePixelRatio,
             label: c.getAttribute("aria-label") };
}"""
#: Each analytics chart's colour (web/static/js/analytics.js).
COLORS = {"orders": "#ff5a36", "gmv_cents": "#f5a524", "viewers_peak": "#4f8cff",
          "chat_messages": "#2bb673"}  # fmt: skip


async def test_a_shows_first_minute_and_its_zero_series_read_honestly(
    browser: Any, live_server: LiveServer, http: aiohttp.ClientSession, host_api: Api
) -> None:
    stream_id = await new_show(host_api, f"First minute {uuid.uuid4().hex[:4]}")
    admin = Api(live_server, http, live_server.token("admin", "ops"))
    sale = await open_sale(admin, stream_id, "Vase", 3000)
    buyer = Api(live_server, http, live_server.token("viewer", "fm"))
    buyer.headers["Idempotency-Key"] = "k"
    await buyer.call("POST", f"/api/sales/{sale['id']}/buy", {}, 201)

    async def one_minute() -> Any:
        report = await admin.call("GET", f"/api/streams/{stream_id}/analytics")
        return report if report["totals"]["orders"] == 1 else None

    report = await eventually(one_minute, what="the order reached SQL")
    assert len(report["by_minute"]) == 1  # one minute of figures, the case a new show has

    token = live_server.token("admin", "ops")
    page = await open_page(browser, f"{live_server.url}/ops#token={token}", DESKTOP)
    await page.wait_for_selector(f'#an-stream option[value="{stream_id}"]', state="attached")
    await page.select_option("#an-stream", stream_id)
    await page.wait_for_selector('#an-charts canvas[data-key="orders"][data-caption]')
    await page.locator("#show-analytics").scroll_into_view_if_needed()
    await screenshot(page, "ops-analytics-first-minute-desktop")
    charts = {key: await page.evaluate(CHART_STATE, [key, color])
              for key, color in COLORS.items()}  # fmt: skip
    # One minute of figures: a bar most of the chart's height tall, its value in the caption.
    for key, caption in (("orders", "1 in the first minute"),
                         ("gmv_cents", "$30.00 in the first minute")):  # fmt: skip
        chart = charts[key]
        assert chart["tallest"] > chart["height"] * 0.5, chart  # device pixels: at least that
        assert chart["points"] == 1 and chart["caption"] == caption, chart
        assert chart["label"] == f"{'Orders' if key == 'orders' else 'GMV'}: {caption}"
    # All zeros: a flat line of the series' colour across the chart, and words, not "max 0".
    for key, caption in (("viewers_peak", "No viewers yet"), ("chat_messages", "No chat yet")):
        chart = charts[key]
        assert chart["caption"] == caption, chart
        assert chart["wide"] > 0.9 and 0 < chart["tallest"] <= 6, chart
    assert page.errors == []
