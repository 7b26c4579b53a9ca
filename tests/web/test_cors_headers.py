"""CORS closed by default and opened per origin; the pages' security headers; no inline script."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from html.parser import HTMLParser
from typing import Any

from aiohttp.test_utils import TestClient

from web.app import create_app
from web.keys import RECORDINGS
from web.pages import PAGES, TEMPLATES
from web.settings import Settings

Auth = Callable[..., dict[str, str]]
EVIL, SHOP = "https://evil.example", "https://shop.example"


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
    }


async def test_the_api_is_closed_to_other_origins_by_default(
    client: TestClient, auth: Auth
) -> None:
    r = await client.options("/api/sales/1/buy", headers=preflight(EVIL))
    assert r.status == 403 and "Access-Control-Allow-Origin" not in r.headers
    assert (await r.json())["error"] == "origin_not_allowed"
    for method, path in (("POST", "/api/products"), ("GET", "/api/streams")):
        r = await client.request(
            method, path, json={}, headers={"Origin": EVIL, **auth("admin", "ops")}
        )
        assert r.status < 500
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], path


async def test_an_allowed_origin_gets_preflights_and_readable_answers(
    aiohttp_client: Any, settings: Settings, auth: Auth
) -> None:
    client = await aiohttp_client(
        create_app(dataclasses.replace(settings, cors_origins=f"{SHOP}/, https://b.example"))
    )
    r = await client.options("/api/sales/1/buy", headers=preflight(SHOP))
    assert r.status == 204
    assert r.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in r.headers["Access-Control-Allow-Methods"]
    allowed = r.headers["Access-Control-Allow-Headers"].lower()
    assert {"authorization", "content-type", "idempotency-key"} <= set(allowed.split(", "))
    assert (await client.options("/api/sales/1/buy", headers=preflight(EVIL))).status == 403
    # Errors are readable too (a page must see why), and caches keep origins apart.
    r = await client.post("/api/sales/1/buy", headers={"Origin": SHOP})
    assert r.status == 401
    assert r.headers["Access-Control-Allow-Origin"] == SHOP and "Origin" in r.headers["Vary"]
    assert "Retry-After" in r.headers["Access-Control-Expose-Headers"]
    r = await client.get("/api/streams", headers={"Origin": EVIL})
    assert r.status == 200 and "Access-Control-Allow-Origin" not in r.headers


async def test_media_edges_stay_open_to_any_player(client: TestClient) -> None:
    hls = client.app[RECORDINGS].hls_dir("show")
    hls.mkdir(parents=True)
    (hls / "index.m3u8").write_text("#EXTM3U\n")
    r = await client.get("/hls/show/index.m3u8", headers={"Origin": EVIL})
    assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == "*"
    r = await client.options("/whep/show", headers=preflight(EVIL))
    assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == "*"


async def test_every_page_carries_the_security_headers(client: TestClient) -> None:
    for path, _ in PAGES:
        r = await client.get(path.replace("{stream_id}", "show"))
        assert r.status == 200, path
        raw = r.headers["Content-Security-Policy"]
        csp = dict(d.strip().split(" ", 1) for d in raw.split(";"))
        assert csp["script-src"] == "'self'" and "unsafe" not in raw
        assert csp["frame-ancestors"] == "'none'" and csp["object-src"] == "'none'"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.headers["Referrer-Policy"] == "no-referrer"
        assert r.headers["X-Frame-Options"] == "DENY"


class InlineFinder(HTMLParser):
    """Collects whatever a CSP without 'unsafe-inline' would block in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}>")
            if name == "style":
                self.found.append(f"<{tag} style>")
            if name in ("href", "src", "action") and (value or "").strip().lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:>")
        if tag == "script":
            self._in_script = True
            if not names.get("src"):
                self.found.append("<script> without src")
        if tag == "style":
            self.found.append("<style>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.found.append("inline script text")


def test_no_page_holds_inline_script_handlers_or_styles() -> None:
    pages = sorted(TEMPLATES.glob("*.html"))
    assert len(pages) >= 5
    for page in pages:
        finder = InlineFinder()
        finder.feed(page.read_text())
        assert finder.found == [], (page.name, finder.found)
    # The finder itself catches what it must.
    probe = InlineFinder()
    probe.feed('<a href="javascript:x()" onclick="y()" style="c"><script>z()</script>')
    assert len(probe.found) == 5
