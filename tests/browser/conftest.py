"""Browser tests: a real `livesell serve` and Debian's headless Chromium driven by Playwright.

The server runs as a subprocess with its own data dir, port and Redis key prefix on the test
session's private Redis. Chromium runs without any flag that disables mDNS ICE candidates, so
a viewer page connects the way a real visitor's browser does.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from loadtest.bench_pages import CHROMIUM as BENCH_CHROMIUM
from loadtest.bench_pages import CHROMIUM_ARGS
from loadtest.benchprocs import free_port
from tests.conftest import TEST_SECRET
from web.auth import Role, TokenSigner

#: The same browser and switches as `python -m loadtest.bench pages`.
CHROMIUM = os.environ.get("LIVESELL_CHROMIUM", BENCH_CHROMIUM)
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"

pytestmark = pytest.mark.browser


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser carries the ``browser`` marker."""
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


def chromium_or_skip() -> str:
    """The Chromium binary, or a skip saying why there is none."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if not path:
        pytest.skip(
            f"Chromium is not installed at {CHROMIUM} (make test runs "
            "`apt-get install -y chromium`; browser tests skipped)"
        )
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]'); browser tests skipped")
    return path


@dataclass
class LiveServer:
    """A running `livesell serve` and what it printed."""

    url: str
    proc: subprocess.Popen[bytes]
    log: Path
    signer: TokenSigner = field(default_factory=lambda: TokenSigner(TEST_SECRET))

    def output(self) -> str:
        """Everything the server printed so far."""
        return self.log.read_text(errors="replace")

    def links(self) -> dict[str, str]:
        """The sign-in links printed at start-up."""
        found = re.findall(r"^\s+(studio|ops):\s+(\S+)$", self.output(), re.M)
        return dict(found)

    def token(self, role: str = "viewer", user: str = "alice", name: str | None = None) -> str:
        """A token the server accepts."""
        return self.signer.mint(user, Role(role), name)


@pytest.fixture(scope="session")
def live_server(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """`livesell serve` on a free port, sharing the session's private Redis (own key prefix)."""
    with serve(redis_url, tmp_path_factory.mktemp("serve")) as server:
        yield server


@contextmanager
def serve(redis_url: str, data: Path, **settings: str) -> Iterator[LiveServer]:
    """Run `livesell serve` in ``data`` with the test settings plus ``settings`` (LIVESELL_*)."""
    chromium_or_skip()
    port = free_port()
    env = {
        **os.environ,
        "LIVESELL_REDIS_URL": redis_url,
        "LIVESELL_DATA_DIR": str(data),
        "LIVESELL_PORT": str(port),
        "LIVESELL_HOST": "127.0.0.1",
        "LIVESELL_SECRET": TEST_SECRET,
        "LIVESELL_REDIS_PREFIX": f"b{uuid.uuid4().hex[:8]}",
        "LIVESELL_PERSISTER": "inprocess",
        "LIVESELL_REAPER_INTERVAL_S": "0.1",
        "LIVESELL_GUEST_LOGINS_PER_MIN": "10000",
        "LIVESELL_ROOM_CHAT_BURST": "100",
        "LIVESELL_ROOM_CHAT_PER_S": "50",
        "PYTHONUNBUFFERED": "1",
        **{f"LIVESELL_{k.upper()}": v for k, v in settings.items()},
    }
    log = data / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "web.cli", "serve"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = LiveServer(f"http://127.0.0.1:{port}", proc, log)
    deadline = time.monotonic() + 30
    while "studio:" not in server.output():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"livesell serve did not start:\n{server.output()}")
        time.sleep(0.1)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
async def browser(live_server: LiveServer) -> AsyncIterator[Any]:
    """A headless Chromium of Debian's, launched for one test."""
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=chromium_or_skip(), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def open_page(browser: Any, url: str, viewport: dict[str, int] = PHONE, **kw: Any) -> Any:
    """A page in a fresh context (its own storage), with dialogs recorded on ``page.dialogs``."""
    context = await browser.new_context(viewport=viewport, locale=kw.pop("locale", "en-US"), **kw)
    page = await context.new_page()
    page.dialogs = []
    page.errors = []

    async def dialog(d: Any) -> None:
        page.dialogs.append(d.message)
        await d.dismiss()

    page.on("dialog", dialog)
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    await page.goto(url)
    return page


class Api:
    """The server's HTTP API with a token, for what a test does outside the browser."""

    def __init__(self, server: LiveServer, session: aiohttp.ClientSession, token: str) -> None:
        self.server = server
        self.session = session
        self.headers = {"Authorization": f"Bearer {token}"}

    async def call(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        """One JSON call that must answer ``status``."""
        async with self.session.request(
            method, self.server.url + path, json=body, headers=self.headers
        ) as resp:
            text = await resp.text()
            assert resp.status == status, f"{method} {path}: {resp.status} {text}"
            return await resp.json() if text else None

    async def room(self, stream_id: str, action: str, **body: Any) -> Any:
        """A host action in the room over HTTP."""
        return await self.call("POST", f"/api/streams/{stream_id}/room/{action}", body)


@pytest.fixture
async def http(live_server: LiveServer) -> AsyncIterator[aiohttp.ClientSession]:
    """An HTTP client session."""
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.fixture
def host_api(live_server: LiveServer, http: aiohttp.ClientSession) -> Api:
    """The API as host ``hana``."""
    return Api(live_server, http, live_server.token("host", "hana", "Hana"))


async def new_show(api: Api, title: str = "Spring drop") -> str:
    """A fresh stream owned by the API's host."""
    stream_id = f"s{uuid.uuid4().hex[:10]}"
    await api.call("POST", "/api/streams", {"id": stream_id, "title": title}, status=201)
    return stream_id


async def open_sale(api: Api, stream_id: str, name: str, price_cents: int, **terms: Any) -> Any:
    """A new product ``name`` of the API's caller on sale in ``stream_id`` (5 units unless
    ``terms`` say otherwise), opened; the sale."""
    product = await api.call(
        "POST", "/api/products", {"name": name, "price_cents": price_cents}, 201
    )
    body = {"product_id": product["id"], "quantity": 5, "stream_id": stream_id, **terms}
    sale = await api.call("POST", "/api/sales", body, 201)
    await api.call("POST", f"/api/sales/{sale['id']}/open")
    return sale


async def go_live(api: Api, stream_id: str, codec: str | None = None) -> Any:
    """Publish counter video (VP8 unless ``codec``) from an aiortc host over WHIP; returns the
    peer (close it).

    Its ``session_id`` is the WHIP session URL: DELETE it to end the show.
    """
    from tests.stream.peers import HostPeer

    host = HostPeer(codec=codec)
    headers = {**api.headers, "Content-Type": "application/sdp"}
    async with api.session.post(
        f"{api.server.url}/whip/{stream_id}", data=await host.offer(), headers=headers
    ) as resp:
        assert resp.status == 201, await resp.text()
        await host.accept(await resp.text())
        host.session_id = resp.headers["Location"]
    return host


async def eventually(check: Any, within_s: float = 10.0, what: str = "") -> Any:
    """Poll an async ``check`` until it returns something truthy."""
    deadline = time.monotonic() + within_s
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within_s} s: {what or check}")
        await asyncio.sleep(0.1)


async def overflow(page: Any, *selectors: str) -> dict[str, Any]:
    """What sticks out sideways: the page's scroll width and each selector's box beyond it."""
    return dict(
        await page.evaluate(
            """(selectors) => ({
                width: innerWidth,
                scroll: document.scrollingElement.scrollWidth,
                outside: selectors.filter((s) => {
                    const r = document.querySelector(s).getBoundingClientRect();
                    return r.left < 0 || r.right > innerWidth || r.width === 0;
                }),
            })""",
            list(selectors),
        )
    )


async def assert_fits(page: Any, *selectors: str) -> None:
    """The page does not scroll sideways and every selector's box lies inside the viewport."""
    seen = await overflow(page, *selectors)
    assert seen["scroll"] <= seen["width"] and not seen["outside"], seen


async def screenshot(page: Any, name: str) -> Path:
    """Save a screenshot under var/screenshots/."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path))
    return path


class RoomClient:
    """A room websocket from Python (e.g. the host), recording every event it receives."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []
        self._next_ref = 0
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def join(cls, api: Api, stream_id: str) -> RoomClient:
        """Join ``stream_id``'s room with the API's token."""
        url = api.server.url.replace("http", "ws", 1) + f"/ws/rooms/{stream_id}"
        ws = await api.session.ws_connect(url, headers=api.headers)
        client = cls(ws)
        await eventually(client._has_snapshot, 10, "snapshot")
        return client

    async def _has_snapshot(self) -> bool:
        return any(e["type"] == "snapshot" for e in self.events)

    async def _read(self) -> None:
        from chat.protocol import decode

        async for msg in self.ws:
            if msg.type != aiohttp.WSMsgType.BINARY:
                break
            ev = decode(msg.data)
            self.events.extend(ev["events"] if ev["type"] == "batch" else [ev])

    async def request(self, **event: Any) -> dict[str, Any]:
        """Send an event with a ref; return its reply (ack, buy_result or error)."""
        from chat.protocol import encode

        self._next_ref += 1
        ref = f"py{self._next_ref}"
        await self.ws.send_bytes(encode({**event, "ref": ref}))

        async def reply() -> dict[str, Any] | None:
            return next((e for e in self.events if e.get("ref") == ref), None)

        return await eventually(reply, 10, f"reply to {event['type']}")

    def chat(self) -> list[dict[str, Any]]:
        """The chat events received live."""
        return [e for e in self.events if e["type"] == "chat"]

    async def close(self) -> None:
        """Leave the room."""
        await self.ws.close()
        self._reader.cancel()
