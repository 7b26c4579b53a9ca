"""The share card of a group link: Open Graph and Twitter tags on ``/live/{stream}?group=ID``.

Chat apps and social sites unfurl a link from the page's meta tags and run no script, so the
room page opened with ``?group=`` gets the group's card in its ``<head>``: what, at what price,
how many joined and how long is left, and the product's image. It is the only user text that
reaches a page from the server; every value goes through ``html.escape`` (quotes included).
Anything missing or unknown (no such group, another show's group, Redis away) serves the plain
page: the room still works without a card.
"""

from __future__ import annotations

import html
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from flashsale.group import GroupView
from inventory.catalog import ProductView
from inventory.errors import DomainError
from web.keys import CATALOG, GROUP_BUYS, SALES, SETTINGS

log = logging.getLogger("livesell.sharecard")

#: Currencies shown with a symbol; others as "15.00 CHF" (a card has no browser locale).
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£"}


def money(cents: int, currency: str) -> str:
    """A price as the card shows it: $15.00, €15.00, or 15.00 CHF."""
    amount = f"{cents // 100:,}.{cents % 100:02d}"
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{amount} {currency}"


def time_left(ms: int) -> str:
    """A coarse countdown for a card read later than it was made: minutes, or hours."""
    minutes = max(1, math.ceil(ms / 60_000))
    return f"{minutes} min left" if minutes < 120 else f"{minutes // 60} h left"


@dataclass(frozen=True, slots=True)
class ShareCard:
    """What a link preview shows. Plain text: escaped only when written into the page."""

    title: str
    description: str
    url: str
    image: str = ""  # an absolute http(s) URL, or "" for none
    kind: str = "website"  # og:type

    def meta_tags(self) -> str:
        """The Open Graph and Twitter tags, every value escaped."""
        tags = [
            ("property", "og:type", self.kind),
            ("property", "og:title", self.title),
            ("property", "og:description", self.description),
            ("property", "og:url", self.url),
            ("name", "twitter:card", "summary_large_image" if self.image else "summary"),
            ("name", "twitter:title", self.title),
            ("name", "twitter:description", self.description),
        ]
        if self.image:
            tags += [("property", "og:image", self.image), ("name", "twitter:image", self.image)]
        return "".join(
            f'<meta {attr}="{name}" content="{html.escape(value, quote=True)}">\n'
            for attr, name, value in tags
        )

    def into(self, page: str) -> str:
        """``page`` with the tags at the end of its head."""
        head, sep, rest = page.partition("</head>")
        return f"{head}{self.meta_tags()}{sep}{rest}" if sep else page


def group_card(
    group: GroupView, product: ProductView, base_url: str, stream_id: str, now_ms: int
) -> ShareCard:
    """The card of one group of a show."""
    price = money(group.price_cents, product.currency)
    joined = len(group.members)
    if group.state == "open" and group.deadline_ms > now_ms:
        left = time_left(group.deadline_ms - now_ms)
        places = group.size - joined
        status = f"{places} more to go, {left}" if places > 0 else left
    else:
        status = "this group has filled" if group.state == "filled" else "this group has ended"
    description = f"A group of {group.size} at {price} each: {joined} joined, {status}."
    return ShareCard(
        title=f"Join my group: {product.name} at {price}",
        description=description,
        url=f"{base_url}/live/{stream_id}?group={group.id}",
        image=_absolute(product.image_url, base_url),
    )


def _absolute(image_url: str, base_url: str) -> str:
    # Only web images: a stored "javascript:" or "data:" URL is not a picture to unfurl.
    if image_url.startswith(("https://", "http://")):
        return image_url
    if image_url.startswith("/") and not image_url.startswith("//"):
        return base_url + image_url
    return ""


def base_url(request: web.Request) -> str:
    """The site's public origin: ``advertise_url`` when set, else the request's own."""
    advertised = request.app[SETTINGS].advertise_url
    return advertised.rstrip("/") if advertised else str(request.url.origin())


async def card_for(request: web.Request, stream_id: str, group_id: str) -> ShareCard | None:
    """The card of ``group_id`` if it is a group of this show, else None."""
    groups, sales, catalog = (
        request.app.get(GROUP_BUYS),
        request.app.get(SALES),
        request.app.get(CATALOG),
    )
    if groups is None or sales is None or catalog is None:  # an app built without them
        return None
    try:
        group = await groups.get_group(group_id)
        sale = await sales.get_sale(group.sale_id)
        if sale.stream_id != stream_id:
            return None
        product = await catalog.get_product(sale.product_id)
    except DomainError:  # no such group, sale or product; Redis unavailable
        return None
    return group_card(group, product, base_url(request), stream_id, int(time.time() * 1000))


def room_page(
    path: Path, headers: dict[str, str]
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """The room page's handler: the file as it is, with a group's card when linked to one."""
    page = path.read_text(encoding="utf-8")

    async def handler(request: web.Request) -> web.StreamResponse:
        group_id = request.query.get("group", "")
        card = None
        if group_id:
            card = await card_for(request, request.match_info["stream_id"], group_id)
        if card is None:
            return web.FileResponse(path, headers=headers)
        return web.Response(body=card.into(page).encode(), headers=headers)

    return handler
