"""Token revocation by jti and by user, across two app instances on one Redis, HTTP and socket."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from chat.protocol import CLOSE_UNAUTHORIZED, decode
from tests.conftest import TEST_SECRET
from web.app import create_app
from web.auth import Role, TokenSigner
from web.keys import CATALOG, REDIS
from web.settings import Settings

Auth = Callable[..., dict[str, str]]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status_of(client: TestClient, token: str) -> tuple[int, str]:
    r = await client.get("/api/promoters/me", headers=bearer(token))
    body = await r.json()
    return r.status, body.get("error", "")


async def until_refused(client: TestClient, token: str) -> tuple[int, str]:
    """The answer once the revocation reached ``client``'s process (pub/sub: soon, not at once)."""
    for _ in range(100):
        answer = await status_of(client, token)
        if answer[0] != 200:
            return answer
        await asyncio.sleep(0.05)
    return answer


async def two_workers(aiohttp_client: Any, settings: Settings) -> tuple[TestClient, TestClient]:
    one = await aiohttp_client(create_app(settings))
    two = await aiohttp_client(create_app(settings))
    return one, two


async def test_a_revoked_jti_is_refused_by_every_worker(
    aiohttp_client: Any, settings: Settings, signer: TokenSigner, auth: Auth
) -> None:
    one, two = await two_workers(aiohttp_client, settings)
    doomed, kept = signer.mint("alice", Role.VIEWER), signer.mint("alice", Role.VIEWER)
    assert await status_of(two, doomed) == (200, "")  # now in worker two's verify cache too
    jti = signer.verify(doomed).jti
    r = await one.post("/api/admin/revocations", json={"jti": jti}, headers=auth("admin", "ops"))
    assert r.status == 201, await r.text()
    assert (await r.json())["revoked"]["jti"] == jti
    assert await until_refused(two, doomed) == (401, "token_revoked")
    assert await status_of(one, doomed) == (401, "token_revoked")
    assert await status_of(two, kept) == (200, "")  # the same user's other token
    # A worker started afterwards loads the list before it serves.
    three = await aiohttp_client(create_app(settings))
    assert await status_of(three, doomed) == (401, "token_revoked")


async def test_revoking_a_user_refuses_their_older_tokens_only(
    aiohttp_client: Any, settings: Settings, signer: TokenSigner, auth: Auth
) -> None:
    one, two = await two_workers(aiohttp_client, settings)
    old, other = signer.mint("bob", Role.HOST), signer.mint("carol", Role.VIEWER)
    r = await one.post(
        "/api/admin/revocations", json={"user_id": "bob"}, headers=auth("admin", "ops")
    )
    assert r.status == 201
    before = (await r.json())["revoked"]["before"]
    assert await until_refused(two, old) == (401, "token_revoked")
    assert await status_of(two, other) == (200, "")
    # Tokens of the revocation's own second are revoked too: the next second's are not.
    await asyncio.sleep(max(0.0, before + 1 - time.time()))
    assert await status_of(two, signer.mint("bob", Role.HOST)) == (200, "")


async def test_only_an_admin_revokes_and_the_body_names_one_thing(
    client: TestClient, signer: TokenSigner, auth: Auth
) -> None:
    token = signer.mint("dave", Role.VIEWER)
    for who in (auth("viewer", "dave"), auth("host", "hana")):
        r = await client.post("/api/admin/revocations", json={"user_id": "x"}, headers=who)
        assert r.status == 403
    admin = auth("admin", "ops")
    for body in ({}, {"jti": "a", "user_id": "b"}, {"token": "not.a.token"}, {"user_id": "a b"}):
        r = await client.post("/api/admin/revocations", json=body, headers=admin)
        assert r.status == 400, body
    r = await client.post("/api/admin/revocations", json={"token": token}, headers=admin)
    assert r.status == 201
    assert await until_refused(client, token) == (401, "token_revoked")


async def test_a_revoked_token_s_socket_is_closed_on_every_worker(
    aiohttp_client: Any, settings: Settings, signer: TokenSigner, auth: Auth
) -> None:
    one, two = await two_workers(aiohttp_client, settings)
    await one.app[CATALOG].create_stream("show", "hana", "")
    token, bystander = signer.mint("erin", Role.VIEWER), signer.mint("fay", Role.VIEWER)
    ws = await two.ws_connect("/ws/rooms/show", headers=bearer(token))
    calm = await two.ws_connect("/ws/rooms/show", headers=bearer(bystander))
    for sock in (ws, calm):
        assert decode((await sock.receive(timeout=5)).data)["type"] == "snapshot"
    r = await one.post(
        "/api/admin/revocations", json={"user_id": "erin"}, headers=auth("admin", "ops")
    )
    assert r.status == 201
    codes = []
    while True:
        msg = await ws.receive(timeout=5)
        if msg.type != aiohttp.WSMsgType.BINARY:
            break
        body = decode(msg.data)
        codes += [e.get("code") for e in body.get("events", [body]) if e["type"] == "error"]
    assert codes == ["token_revoked"]
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == CLOSE_UNAUTHORIZED
    # Coming back with the same token is refused at the door, on either worker.
    again = await one.ws_connect("/ws/rooms/show", headers=bearer(token))
    assert decode((await again.receive(timeout=5)).data)["code"] == "token_revoked"
    assert (await again.receive(timeout=5)).data == CLOSE_UNAUTHORIZED
    assert not calm.closed
    await calm.close()


def test_the_cli_revokes_a_token_the_running_app_then_refuses(
    settings: Settings, signer: TokenSigner
) -> None:
    token = signer.mint("gus", Role.VIEWER)
    env = {
        **os.environ,
        "LIVESELL_REDIS_URL": settings.redis_url,
        "LIVESELL_REDIS_PREFIX": settings.redis_prefix,
        "LIVESELL_SECRET": TEST_SECRET,
        "LIVESELL_DATA_DIR": str(settings.data_dir),
    }
    out = subprocess.run(
        [sys.executable, "-m", "web.cli", "revoke", "--token", token],
        env=env, capture_output=True, text=True, check=True, timeout=60,
    ).stdout  # fmt: skip
    assert signer.verify(token).jti in out

    async def refused() -> tuple[int, str]:
        app = create_app(settings)

        async with TestClient(TestServer(app)) as client:
            return await status_of(client, token)

    assert asyncio.run(refused()) == (401, "token_revoked")


async def test_a_worker_that_lost_its_channel_reloads_the_list(
    aiohttp_client: Any, settings: Settings, signer: TokenSigner
) -> None:
    client = await aiohttp_client(create_app(settings))
    token = signer.mint("hal", Role.VIEWER)
    assert await status_of(client, token) == (200, "")
    # A revocation whose message this worker never hears (written, not published)...
    redis = client.app[REDIS]
    await redis.hset(f"{settings.redis_prefix}:{{auth}}:revoked-users", "hal", int(time.time()))
    await asyncio.sleep(0.2)
    assert await status_of(client, token) == (200, "")
    # ...counts once the subscription drops and comes back: the list is read again.
    await redis.client_kill_filter(_type="pubsub")
    assert await until_refused(client, token) == (401, "token_revoked")


def test_the_protocol_doc_names_the_revocation_error() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()
    assert "| `token_revoked` |" in doc and "| 4001 |" in doc and "| 4029 |" in doc
