"""Group buys and coupon drops in headless Chromium: the studio offers, viewers fill and claim."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.browser.conftest import (
    DESKTOP,
    PHONE,
    SCREENSHOTS,
    Api,
    LiveServer,
    assert_fits,
    eventually,
    new_show,
    open_page,
    screenshot,
)
from tests.browser.test_room import sale_setup, text_becomes


async def studio_with_sale(browser: Any, live_server: LiveServer, host_api: Api) -> Any:
    """A show with an open sale (19.90, 5 units) and its studio, on a desktop."""
    stream_id = await new_show(host_api, "Group scarves")
    _, sale_id = await sale_setup(host_api, stream_id)
    await host_api.call("POST", f"/api/sales/{sale_id}/open")
    token = live_server.token("host", "hana", "Hana")
    studio = await open_page(
        browser, f"{live_server.url}/studio/{stream_id}#token={token}", DESKTOP
    )
    await studio.wait_for_selector("#sale-now:not([hidden])")
    studio.stream_id, studio.sale_id = stream_id, sale_id
    return studio


def viewer_url(live_server: LiveServer, path: str, user: str) -> str:
    """A room URL signed in as ``user`` (the token in the fragment, as shop links do)."""
    return f"{live_server.url}{path}#token={live_server.token('viewer', user, user.title())}"


async def test_a_group_fills_from_a_shared_link_across_three_browsers(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    studio = await studio_with_sale(browser, live_server, host_api)
    room = f"/live/{studio.stream_id}"
    amy = await open_page(browser, viewer_url(live_server, room, "amy"))
    await studio.fill("#gf-price", "15")
    await studio.fill("#gf-size", "3")
    await studio.fill("#gf-minutes", "5")
    await studio.click("#gf-go")
    await text_becomes(studio, "#gf-status", "On: groups of 3 at $15.00")

    # Viewer A sees the offer live, opens a group and gets its share link.
    await text_becomes(amy, "#groups-title", "Group buy: 3 people, $15.00 each")
    await amy.click("#group-open")
    await amy.wait_for_selector("#group-share:not([hidden])")
    link = await amy.input_value("#group-link")
    assert "?group=" in link and link.startswith(live_server.url + room)
    # Share: no share sheet on this desktop Chromium, so the link is copied.
    await amy.context.grant_permissions(["clipboard-read", "clipboard-write"])
    assert await amy.get_attribute("#group-share-go", "data-link") == link
    await amy.click("#group-share-go")
    await text_becomes(amy, "#group-note", "Link copied")
    assert await amy.evaluate("navigator.clipboard.readText()") == link
    # Where the device has a share sheet (a phone), Share opens it with the group's words.
    await amy.evaluate("navigator.share = async (d) => { window.sharedWith = d; }")
    await amy.click("#group-share-go")
    shared = await eventually(lambda: amy.evaluate("window.sharedWith || null"), what="shared")
    words = "Join my group: Silk scarf, hand-dyed at $15.00"
    assert shared == {"title": words, "text": words, "url": link}
    assert await amy.text_content("#group-list .group-line") == "1 of 3 joined"
    await amy.wait_for_selector("#reserved:not([hidden])")
    shared = link.removeprefix(live_server.url)

    # B and C open the link: the group is highlighted with a Join button.
    bob = await open_page(browser, viewer_url(live_server, shared, "bob"))
    cy = await open_page(browser, viewer_url(live_server, shared, "cy"), DESKTOP)
    for page in (bob, cy):
        await page.wait_for_selector(".group[data-highlight='1'] .group-join")
    assert await bob.text_content(".group[data-highlight='1'] .group-join") == "Join · $15.00"
    await bob.click(".group[data-highlight='1'] .group-join")
    await text_becomes(amy, "#group-list .group-line", "2 of 3 joined")
    await screenshot(amy, "room-group-open-phone")
    await cy.focus(".group[data-highlight='1'] .group-join")
    await cy.keyboard.press("Enter")  # keyboard reachable

    for page in (amy, bob, cy):
        await page.wait_for_selector(".group[data-state='filled']")
        await page.wait_for_selector("#reserved:not([hidden])")
        assert (await page.text_content("#pay-by") or "").startswith("Pay within 0")
        assert await page.text_content(".group[data-state='filled'] .group-state") == "Filled"
        assert page.errors == []
    await text_becomes(studio, "#fig-groups-filled", "1")
    await screenshot(bob, "room-group-filled-phone")
    # The card alone, small, for the README (docs/img/room-group-filled.png is a copy).
    await bob.locator("#product-card").screenshot(path=str(SCREENSHOTS / "room-group-card.png"))
    await screenshot(cy, "room-group-filled-desktop")
    await screenshot(studio, "studio-social-desktop")
    await assert_fits(bob, "#groups", "#pay")
    await bob.click("#pay")
    await text_becomes(bob, "#outcome", "Paid. Thank you!")
    # One tap joins the host's store (points accrue on paid orders from then on).
    await cy.click("#store-join")
    await text_becomes(cy, "#store-state", "Store member · 0 points")
    assert await cy.is_hidden("#store-join")
    await text_becomes(studio, "#fig-members", "1", within_s=30)  # the stats poll
    assert studio.errors == []


async def test_one_coupon_two_claimers_the_winner_pays_less(
    browser: Any, live_server: LiveServer, host_api: Api
) -> None:
    studio = await studio_with_sale(browser, live_server, host_api)
    room = f"/live/{studio.stream_id}"
    ann = await open_page(browser, viewer_url(live_server, room, "ann"))
    ben = await open_page(browser, viewer_url(live_server, f"{room}?ref=ann", "ben"), DESKTOP)
    for page in (ann, ben):
        await page.wait_for_selector("#product-card:not([hidden])")
    await studio.fill("#cf-count", "1")
    await studio.select_option("#cf-kind", "amount")
    await studio.fill("#cf-value", "5")
    await studio.fill("#cf-min", "10")
    await studio.fill("#cf-minutes", "5")
    await studio.click("#cf-go")
    await text_becomes(studio, "#cf-note", "Coupons dropped: 1")
    for page in (ann, ben):
        await page.wait_for_selector("#coupon-claim:not([hidden])")
        assert (await page.text_content("#coupon-clock") or "").startswith("Ends in 0")
    assert await ann.text_content("#coupon-text") == "Coupon: $5.00 off over $10.00 · 1 left"
    await screenshot(ann, "room-coupon-phone")
    # Both tap at once (a dispatched click: the loser's button may vanish as the news lands).
    await asyncio.gather(*(p.dispatch_event("#coupon-claim", "click") for p in (ann, ben)))

    async def settled() -> list[str]:
        states = [await p.get_attribute("#coupon", "data-state") for p in (ann, ben)]
        return sorted(states) if "open" not in states else []

    assert await eventually(settled, what="both claims answered") == ["claimed", "gone"]
    winner, loser = (
        (ann, ben) if await ann.get_attribute("#coupon", "data-state") == "claimed" else (ben, ann)
    )
    # The loser's card may turn "gone" (the room's news) before its own claim is answered;
    # the text follows that answer.
    await text_becomes(loser, "#coupon-text", "All claimed")
    assert await winner.text_content("#coupon-text") == "Coupon claimed: $5.00 off at Pay"
    await winner.click("#buy")
    await winner.wait_for_selector("#reserved:not([hidden])")
    assert await winner.text_content("#pay") == "Pay $14.90 (coupon −$5.00)"
    await winner.click("#pay")
    await text_becomes(winner, "#outcome", "Paid. Thank you!")
    await winner.wait_for_selector("#coupon[data-state='used']")
    await text_becomes(studio, "#fig-coupons-claimed", "1")
    # Ben came through Ann's link: the host's leaderboard credits her visit.
    await text_becomes(studio, "#promoters-body td:nth-child(2)", "ann", within_s=15)
    for page in (ann, ben, studio):
        assert page.errors == []
    await studio.set_viewport_size(PHONE)
    await assert_fits(studio, "#group-form", "#coupon-form", "#cf-go")
    await studio.locator("#coupon-form").scroll_into_view_if_needed()
    await screenshot(studio, "studio-social-phone")
    # The loser's page in Chinese: every string of the panel has its translation.
    await loser.select_option("#lang", "zh")
    await text_becomes(loser, "#coupon-text", "已被抢光")
