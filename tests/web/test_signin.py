"""Sign-in codes, guest tokens and the pages' headers, over the real app."""

from __future__ import annotations

import dataclasses

from aiohttp.test_utils import TestClient

from web.app import create_app
from web.auth import Role
from web.keys import SIGNER
from web.settings import Settings
from web.signin import login_codes


async def test_login_code_works_once(client: TestClient) -> None:
    code = await login_codes(client.app).issue(Role.HOST, "alice", "Alice")
    resp = await client.post("/api/login", json={"code": code})
    assert resp.status == 200
    body = await resp.json()
    who = client.app[SIGNER].verify(body["token"])
    assert (who.user_id, who.role, who.name) == ("alice", Role.HOST, "Alice")
    again = await client.post("/api/login", json={"code": code})
    assert again.status == 401
    assert (await again.json())["error"] == "unauthorized"
    bad = await client.post("/api/login", json={"code": 7})
    assert bad.status == 400


async def test_guest_gets_a_viewer_token_with_a_clean_name(client: TestClient) -> None:
    resp = await client.post("/api/guest", json={"name": "  Ann\u202e\u200b  Lee\x07 "})
    assert resp.status == 201
    body = await resp.json()
    who = client.app[SIGNER].verify(body["token"])
    assert who.role == Role.VIEWER and who.name == "Ann Lee" and who.user_id.startswith("g-")
    for name in ("", "\u200b\u200b", " "):
        bad = await client.post("/api/guest", json={"name": name})
        assert bad.status == 400, name


async def test_guest_sign_in_is_rate_limited_per_ip(aiohttp_client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(dataclasses.replace(settings, guest_logins_per_min=3)))
    codes = [(await client.post("/api/guest", json={"name": "x"})).status for _ in range(5)]
    assert codes == [201, 201, 201, 429, 429]


async def test_guest_sign_in_can_be_turned_off(aiohttp_client, settings: Settings) -> None:  # type: ignore[no-untyped-def]
    client = await aiohttp_client(create_app(dataclasses.replace(settings, guest_login=False)))
    resp = await client.post("/api/guest", json={"name": "x"})
    assert resp.status == 403
    assert (await resp.json())["error"] == "guest_login_off"
    assert Settings.from_env({"LIVESELL_GUEST_LOGIN": "0"}).guest_login is False


async def test_pages_carry_security_headers_and_static_types(client: TestClient) -> None:
    page = await client.get("/live/some-show")
    assert page.status == 200
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    js = await client.get("/static/js/roomsocket.js")
    assert js.status == 200 and js.content_type == "text/javascript"
    vendor = await client.get("/static/vendor/msgpack.mjs")
    assert vendor.content_type == "text/javascript" and "max-age" in vendor.headers["Cache-Control"]
    bad = ("/static/../pages.py", "/static/%2e%2e/pages.py", "/static/vendor/msgpack.LICENSE")
    for path in bad:
        assert (await client.get(path)).status == 404, path
