"""A group's share link unfurls: the room page carries the group's card, every value escaped."""

from __future__ import annotations

import re
from html.parser import HTMLParser

from aiohttp.test_utils import TestClient

from flashsale.group import GroupView
from inventory.catalog import ProductView
from tests.flashsale.helpers import Auth
from web.sharecard import group_card

NAME = """Scarf "Red" <script>alert('x')</script> & co"""
IMAGE = 'https://img.example/scarf.png?w=1&h="2"'


class Meta(HTMLParser):
    """The page's meta tags by property or name, as a link preview reads them."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.tags: dict[str, str] = {}
        self.scripts = 0
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Collect meta tags and count script elements."""
        a = dict(attrs)
        self.scripts += tag == "script"
        if tag == "meta" and (a.get("property") or a.get("name")):
            self.tags[str(a.get("property") or a.get("name"))] = a.get("content") or ""


async def test_a_group_link_unfurls_into_its_escaped_card(client: TestClient, auth: Auth) -> None:
    host = auth("host", "hana")
    assert (await client.post("/api/streams", json={"id": "show1"}, headers=host)).status == 201
    body = {"name": NAME, "price_cents": 1999, "image_url": IMAGE}
    product = await (await client.post("/api/products", json=body, headers=host)).json()
    r = await client.post("/api/sales", headers=host, json={
        "product_id": product["id"], "quantity": 5, "per_user_limit": 1, "stream_id": "show1",
    })  # fmt: skip
    sid = (await r.json())["id"]
    await client.post(f"/api/sales/{sid}/open", headers=host)
    offer = {"price_cents": 1500, "size": 3, "ttl_s": 600}
    assert (await client.post(f"/api/sales/{sid}/group-offer", json=offer, headers=host)).ok
    r = await client.post(f"/api/sales/{sid}/groups",
                          headers={**auth("viewer", "amy"), "Idempotency-Key": "g1"})  # fmt: skip
    gid = (await r.json())["group"]["id"]

    plain = await (await client.get("/live/show1")).text()
    r = await client.get(f"/live/show1?group={gid}")
    page = await r.text()
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    meta = Meta(page)
    origin = str(client.make_url("/")).rstrip("/")
    assert meta.tags["og:title"] == f"Join my group: {NAME} at $15.00"
    # The group's deadline: its 10 minutes, or the sale's end if sooner.
    assert re.fullmatch(
        r"A group of 3 at \$15\.00 each: 1 joined, 2 more to go, (10|[1-9]) min left\.",
        meta.tags["og:description"],
    ), meta.tags["og:description"]
    assert meta.tags["og:url"] == f"{origin}/live/show1?group={gid}"
    assert meta.tags["og:image"] == meta.tags["twitter:image"] == IMAGE
    assert meta.tags["twitter:card"] == "summary_large_image"
    # The name's markup stays text: no new element, nothing unescaped in the page's source.
    assert meta.scripts == Meta(plain).scripts and "<script>alert" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page and "&quot;Red&quot;" in page

    # No card without a group of this show: the plain room page.
    for path in ("/live/show1", "/live/other?group=" + gid, "/live/show1?group=nope",
                 f"/live/show1?group={sid}-g99"):  # fmt: skip
        r = await client.get(path)
        assert r.status == 200 and "og:title" not in Meta(await r.text()).tags, path


def test_a_card_shows_only_web_images_and_an_ended_group() -> None:
    group = GroupView("7-g1", 7, "expired", 3, 1_000, 1500, (("amy", "7-1"),))
    site = "https://shop.example"
    for image, shown in (("javascript:alert(1)", ""), ("//evil/x.png", ""),
                         ("/static/img/scarf.png", f"{site}/static/img/scarf.png")):  # fmt: skip
        product = ProductView(1, "Scarf", "", 1999, "EUR", image)
        card = group_card(group, product, site, "show1", now_ms=2_000)
        assert card.image == shown
        assert card.description == "A group of 3 at €15.00 each: 1 joined, this group has ended."
        assert ("og:image" in card.meta_tags()) == bool(shown)
