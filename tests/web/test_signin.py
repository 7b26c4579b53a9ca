"""Sign-in codes, guest tokens and the pages' headers, over the real app."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

from aiohttp.test_utils import TestClient

from tests.conftest import TEST_SECRET
from web.app import create_app
from web.auth import Role, TokenSigner
from web.keys import SIGNER
from web.pages import page_headers
from web.resources import make_redis
from web.settings import Settings
from web.signin import LoginCodes, login_codes


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
    # Loopback is exempt by default; the proxy in front (loopback, trusted) names the client.
    xff = {"X-Forwarded-For": "203.0.113.1"}
    codes = [
        (await client.post("/api/guest", json={"name": "x"}, headers=xff)).status for _ in range(5)
    ]
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


async def test_every_page_names_an_inline_icon(client: TestClient) -> None:
    # Without one the browser asks for /favicon.ico and logs a 404 on every page.
    for path in ("/", "/live/some-show", "/studio", "/studio/some-show", "/ops"):
        page = await client.get(path)
        assert page.status == 200
        assert '<link rel="icon" href="data:,">' in await page.text(), path


def test_login_link_prints_a_fresh_code_the_server_accepts(redis_url: str, tmp_path: Path) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    env = {
        **os.environ,
        "LIVESELL_REDIS_URL": redis_url,
        "LIVESELL_REDIS_PREFIX": prefix,
        "LIVESELL_SECRET": TEST_SECRET,
        "LIVESELL_DATA_DIR": str(tmp_path),
        "LIVESELL_ADVERTISE_URL": "https://shop.example",
    }
    out = subprocess.run(
        [sys.executable, "-m", "web.cli", "login-link", "--role", "host", "--user", "alice"],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    match = re.fullmatch(r"studio: https://shop\.example/studio\?code=(\S+)\n", out)
    assert match, out

    async def redeem() -> tuple[str, dict[str, str]]:
        redis = make_redis(redis_url, 2)
        try:
            return await LoginCodes(redis, prefix, TokenSigner(TEST_SECRET)).redeem(match[1])
        finally:
            await redis.aclose()

    token, who = asyncio.run(redeem())
    assert who == {"user": "alice", "role": "host", "name": "alice"}
    assert TokenSigner(TEST_SECRET).verify(token).role == Role.HOST


def test_make_login_link_runs_the_venvs_cli(redis_url: str, tmp_path: Path) -> None:
    # After `make serve` the CLI lives in .venv/bin, not on PATH: the README points at this target.
    env = {
        **os.environ,
        "LIVESELL_REDIS_URL": redis_url,
        "LIVESELL_REDIS_PREFIX": f"t{uuid.uuid4().hex[:8]}",
        "LIVESELL_SECRET": TEST_SECRET,
        "LIVESELL_DATA_DIR": str(tmp_path),
    }
    root = Path(__file__).resolve().parents[2]
    bin_dir = Path(sys.executable).parent  # the venv running the tests; -o: never reinstall
    out = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "login-link", f"BIN={bin_dir}",
         "ARGS=--role host --user alice"],
        cwd=root, env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert re.fullmatch(r"studio: http://\S+/studio\?code=\S+\n", out), out


def test_pages_may_follow_a_whep_redirect_to_another_worker() -> None:
    alone = page_headers(Settings())["Content-Security-Policy"]
    assert "connect-src 'self';" in alone + ";"
    worker = Settings(advertise_url="http://10.0.0.5:8082")
    csp = page_headers(worker)["Content-Security-Policy"]
    assert "connect-src 'self' http://10.0.0.5:*" in csp and "script-src 'self'" in csp
