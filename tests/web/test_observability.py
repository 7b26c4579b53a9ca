"""Observability and start-up safety: request ids, JSON logs, /readyz while draining, exposure."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from chat.protocol import decode
from tests.chat.test_room_ws import connect, make_stream
from tests.conftest import TEST_SECRET
from tests.web.rawclient import raw_request, raw_websocket
from web.app import create_app
from web.exposure import insecure_reason, is_loopback
from web.logs import JsonFormatter, RequestIdFilter
from web.settings import Settings


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """What the ``livesell`` loggers write, as JSON lines (as LIVESELL_LOG_FORMAT=json does)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("livesell")
    logger.addHandler(handler)
    try:
        yield out
    finally:
        logger.removeHandler(handler)


async def test_request_ids_are_echoed_and_logged(
    aiohttp_client, settings: Settings, json_log: io.StringIO
) -> None:  # type: ignore[no-untyped-def]
    app = create_app(settings)

    async def noisy(request: web.Request) -> web.Response:
        logging.getLogger("livesell.test").warning("inside the handler")
        await asyncio.sleep(0)
        return web.json_response({})

    app.router.add_get("/test/noisy", noisy)
    client: TestClient = await aiohttp_client(app)
    r = await client.get("/test/noisy", headers={"X-Request-Id": "trace-abc.123"})
    assert r.headers["X-Request-Id"] == "trace-abc.123"
    records = [json.loads(line) for line in json_log.getvalue().splitlines()]
    mine = [rec for rec in records if rec["message"] == "inside the handler"]
    assert mine and mine[0]["request_id"] == "trace-abc.123", records
    assert mine[0]["level"] == "WARNING" and mine[0]["logger"] == "livesell.test"

    # Generated when absent or not sane; different per request; on errors and 404s too.
    seen = set()
    for headers in ({}, {"X-Request-Id": "a b"}, {"X-Request-Id": "x" * 200}):
        r = await client.get("/api/sales/999999", headers=headers)
        assert r.status == 404
        rid = r.headers["X-Request-Id"]
        assert re.fullmatch(r"[0-9a-f]{10}-[0-9a-f]+", rid), rid
        seen.add(rid)
    assert len(seen) == 3
    # Raw bytes a client library would not send: still a fresh, clean id.
    assert client.port is not None
    _, headers, _ = await raw_request(
        client.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Request-Id: \xfc\xfc"
    )
    assert re.fullmatch(r"[0-9a-f]{10}-[0-9a-f]+", headers["x-request-id"])
    # The websocket upgrade answers with the id too.
    sock = await raw_websocket(client.port, b"/ws/rooms/nope", b"X-Request-Id: ws-1\r\n")
    sock.close()
    assert sock.status == 101 and b"\r\nX-Request-Id: ws-1\r\n" in sock.head
    r = await client.get("/test/noisy")
    assert r.headers["X-Request-Id"] not in seen


async def test_readyz_answers_503_over_http_while_draining(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    sid = await make_stream(client, auth)
    watcher = await connect(client, f"/ws/rooms/{sid}")
    assert (await client.get("/readyz")).status == 200
    # The on_shutdown hooks, as a SIGTERM starts them: draining first, then sockets close.
    await client.app.shutdown()
    msg = await watcher.ws.receive(timeout=5)  # told first, then closed
    assert decode(msg.data)["type"] == "server_restarting"
    msg = await watcher.ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
    r = await client.get("/readyz")
    assert r.status == 503
    body = await r.json()
    assert body["error"] == "draining" and body["status"] == "draining"
    assert (await client.get("/healthz")).status == 200  # alive, only not ready


def test_loopback_hosts() -> None:
    for host in ("127.0.0.1", "127.8.0.1", "::1", "[::1]", "localhost", "app.localhost"):
        assert is_loopback(host), host
    for host in ("0.0.0.0", "", "::", "10.0.0.5", "example.com", "localhost.example.com"):
        assert not is_loopback(host), host


def test_insecure_reason(tmp_path: Path) -> None:
    dev = Settings(data_dir=tmp_path)
    assert insecure_reason(dev, "127.0.0.1") is None
    why = insecure_reason(dev, "0.0.0.0")
    assert why is not None and "LIVESELL_SECRET" in why and "LIVESELL_ALLOW_INSECURE" in why
    guests = Settings(data_dir=tmp_path, secret=TEST_SECRET)
    why = insecure_reason(guests, "0.0.0.0")
    assert why is not None and "LIVESELL_GUEST_LOGIN=0" in why
    assert insecure_reason(guests, "::1") is None
    closed = Settings(data_dir=tmp_path, secret=TEST_SECRET, guest_login=False)
    assert insecure_reason(closed, "0.0.0.0") is None
    assert insecure_reason(Settings(data_dir=tmp_path, allow_insecure=True), "0.0.0.0") is None
    env = {"LIVESELL_ALLOW_INSECURE": "1", "LIVESELL_LOG_FORMAT": "json"}
    s = Settings.from_env(env)
    assert s.allow_insecure and s.log_format == "json"
    assert not Settings.from_env({}).allow_insecure and Settings.from_env({}).log_format == "text"
    with pytest.raises(Exception, match="LIVESELL_LOG_FORMAT"):
        Settings.from_env({"LIVESELL_LOG_FORMAT": "xml"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_serve_refuses_a_public_host_with_a_dev_secret(
    tmp_path: Path, redis_url: str
) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESELL_")}
    env.update(LIVESELL_REDIS_URL=redis_url, LIVESELL_DATA_DIR=str(tmp_path))
    argv = [sys.executable, "-m", "web.cli", "serve", "--host", "0.0.0.0", "--port", str(port)]
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "LIVESELL_SECRET" in lines[0], lines
    assert not (tmp_path / "secret").exists()  # refused before a secret was generated
    proc = await asyncio.create_subprocess_exec(
        *argv, env={**env, "LIVESELL_SECRET": TEST_SECRET}, stderr=asyncio.subprocess.PIPE
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2 and "LIVESELL_GUEST_LOGIN=0" in err.decode(), err

    # Told explicitly, it serves, and logs JSON lines when asked to.
    env.update(LIVESELL_ALLOW_INSECURE="1", LIVESELL_LOG_FORMAT="json", LIVESELL_PERSISTER="off")
    proc = await asyncio.create_subprocess_exec(*argv, env=env, stderr=asyncio.subprocess.PIPE)
    try:
        async with aiohttp.ClientSession() as s:
            for _ in range(300):
                try:
                    async with s.get(f"http://127.0.0.1:{port}/healthz") as r:
                        assert r.status == 200
                        break
                except aiohttp.ClientError:
                    await asyncio.sleep(0.1)
    finally:
        proc.terminate()
        _, err = await asyncio.wait_for(proc.communicate(), 60)
    records = [json.loads(line) for line in err.decode().splitlines() if line.strip()]
    assert any("serving on http://0.0.0.0" in rec["message"] for rec in records), records
