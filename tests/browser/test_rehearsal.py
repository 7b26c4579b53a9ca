"""A host's rehearsal in Chromium: the studio's checkbox and badge, the report link, the room."""

from __future__ import annotations

import uuid
from typing import Any

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    Api,
    LiveServer,
    eventually,
    open_page,
    screenshot,
)

#: A report that tries to script the page: served sandboxed, its script must never run.
REPORT_HTML = (
    "<!doctype html><html><head><title>Show report</title><style>h1{color:#0a0}</style></head>"
    "<body><h1>Show report</h1><script>document.title = 'scripted'</script></body></html>"
)


async def test_the_studio_marks_a_rehearsal_and_links_its_reports(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    token = live_server.token("host", "hana", "Hana")
    studio = await open_page(browser, f"{live_server.url}/studio#token={token}", DESKTOP)
    await studio.wait_for_selector("#view-create:not([hidden])")
    await studio.fill("#create-title", f"Practice {uuid.uuid4().hex[:4]}")
    await studio.check("#create-rehearsal")
    stream_id = await studio.input_value("#create-id")
    await studio.click("#create-form button[type=submit]")
    await studio.wait_for_url(f"**/studio/{stream_id}")
    assert (await host_api.call("GET", f"/api/streams/{stream_id}"))["rehearsal"] is True
    badge = studio.locator("#rehearsal-badge")
    await badge.wait_for(state="visible")
    assert (await badge.inner_text()).strip() == "REHEARSAL"
    assert await studio.is_checked("#rehearsal-toggle")
    assert f"--rehearse {stream_id}" in await studio.inner_text("#rehearsal-command")
    await studio.wait_for_selector("#rehearsal-none:not([hidden])")

    # The load tool posts its report; the studio links it once the page looks again.
    body = {"report": {"valid": True, "exit": {"code": 0, "reason": "ok"},
                       "counts": {"orders": 12}}, "html": REPORT_HTML}  # fmt: skip
    made = await host_api.call(
        "POST", f"/api/streams/{stream_id}/rehearsal-report", body, status=201
    )
    await studio.reload()
    link = studio.locator("#rehearsal-reports a.report-link")
    await link.wait_for(state="visible")
    assert "12 orders, passed" in await link.inner_text()
    assert await link.get_attribute("href") == made["html_url"]
    await studio.locator(".rehearsal-panel").scroll_into_view_if_needed()
    await screenshot(studio, "studio-rehearsal-desktop")
    async with studio.context.expect_page() as opened:
        await link.click()
    report = await opened.value
    await report.wait_for_load_state()
    assert await report.inner_text("h1") == "Show report"
    assert await report.title() == "Show report"  # the sandbox kept its script from running
    assert studio.errors == []

    # Switching it to a real show takes the badge away; switching back brings it again.
    await studio.uncheck("#rehearsal-toggle")
    await badge.wait_for(state="hidden")
    assert (await host_api.call("GET", f"/api/streams/{stream_id}"))["rehearsal"] is False
    await studio.check("#rehearsal-toggle")
    await badge.wait_for(state="visible")

    # A viewer in the room sees that this is a rehearsal.
    room = await open_page(browser, f"{live_server.url}/live/{stream_id}", PHONE)
    room_badge = room.locator("#rehearsal-badge")
    await room_badge.wait_for(state="visible")
    assert (await room_badge.inner_text()).strip() == "REHEARSAL"
    await screenshot(room, "room-rehearsal-phone")

    # The landing page does not list it, even to its host.
    landing = await open_page(browser, f"{live_server.url}/#token={token}", DESKTOP)

    async def listed() -> bool:
        return await landing.locator("#live-list, #upcoming-list").count() > 0

    await eventually(listed, what="the landing lists")
    assert await landing.locator(f"a[href='/live/{stream_id}']").count() == 0
