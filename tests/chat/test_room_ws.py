"""The room over real websockets: two app instances on one Redis, replay, buy, close codes."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from chat.protocol import decode, encode
from tests.flashsale.helpers import make_sale
from web.app import create_app
from web.auth import Role, TokenSigner
from web.keys import METRICS, REDIS, ROOM_HUB
from web.settings import Settings

Auth = Callable[..., dict[str, str]]


class Socket:
    """A room websocket with helpers that unpack batches."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.events: list[dict[str, Any]] = []

    async def send(self, type_: str, **fields: Any) -> None:
        """Send one client event."""
        await self.ws.send_bytes(encode({"type": type_, **fields}))

    async def until(
        self, pred: Callable[[dict[str, Any]], bool], wait_s: float = 5.0
    ) -> dict[str, Any]:
        """Read until an event matches; returns it (everything read stays in ``events``)."""
        for ev in self.events:
            if pred(ev) and not ev.get("_seen"):
                ev["_seen"] = True
                return ev
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_s
        while True:
            msg = await self.ws.receive(timeout=max(0.01, deadline - loop.time()))
            if msg.type != aiohttp.WSMsgType.BINARY:
                raise AssertionError(f"socket ended: {msg.type} {msg.data} {msg.extra}")
            body = decode(msg.data)
            new = body["events"] if body["type"] == "batch" else [body]
            self.events.extend(new)
            for ev in new:
                if pred(ev):
                    ev["_seen"] = True
                    return ev

    def chats(self) -> list[dict[str, Any]]:
        """Chat events so far."""
        return [e for e in self.events if e["type"] == "chat"]


async def connect(client: TestClient, path: str) -> Socket:
    """Open a room socket and read its first event."""
    ws = await client.session.ws_connect(client.make_url(path))
    sock = Socket(ws)
    await sock.until(lambda e: e["type"] in ("snapshot", "resumed", "error"))
    return sock


async def make_stream(client: TestClient, auth: Auth) -> str:
    """Create a stream hosted by ``hostess``."""
    sid = f"s{uuid.uuid4().hex[:8]}"
    r = await client.post(
        "/api/streams", json={"id": sid, "title": "Show"}, headers=auth("host", "hostess")
    )
    assert r.status == 201, await r.text()
    return sid


def token(signer: TokenSigner, user: str, role: str = "viewer") -> str:
    """A bearer token."""
    return signer.mint(user, Role(role), user.title())


async def test_two_servers_share_a_room_in_order(
    client: TestClient, settings: Settings, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    other = TestClient(TestServer(create_app(settings)))
    await other.start_server()
    try:
        assert other.port != client.port
        viewers = [await connect(c, f"/ws/rooms/{sid}") for c in (client, other, client, other)]
        host = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'hostess', 'host')}")
        admin = await connect(other, f"/ws/rooms/{sid}?token={token(signer, 'ops', 'admin')}")
        for i in range(10):
            await host.send("chat", text=f"h{i}")
            await admin.send("chat", text=f"a{i}")
        seen = []
        for v in viewers:
            while len(v.chats()) < 20:
                await v.until(lambda e: e["type"] == "chat", wait_s=10)
            seen.append([(e["seq"], e["text"]) for e in v.chats()])
        assert all(s == seen[0] for s in seen), "same events, same order on both servers"
        seqs = [s for s, _ in seen[0]]
        assert seqs == sorted(seqs) and len(set(seqs)) == 20
        texts = [t for _, t in seen[0]]
        assert [t for t in texts if t[0] == "h"] == [f"h{i}" for i in range(10)]
        assert [t for t in texts if t[0] == "a"] == [f"a{i}" for i in range(10)]
    finally:
        await other.close()


async def test_reconnect_with_since_recovers_missed(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    host = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'hostess', 'host')}")
    viewer = await connect(client, f"/ws/rooms/{sid}")
    await host.send("chat", text="before")
    last = (await viewer.until(lambda e: e.get("text") == "before"))["seq"]
    await viewer.ws.close()
    for i in range(5):
        await host.send("chat", text=f"missed {i}")
    await host.send("pin", product_id=999, ref="bad-pin")
    await host.until(lambda e: e["type"] == "error" and e["ref"] == "bad-pin")
    back = await connect(client, f"/ws/rooms/{sid}?since={last}")
    assert back.events[0]["type"] == "resumed" and back.events[0]["since"] == last
    for i in range(5):
        ev = await back.until(lambda e, i=i: e.get("text") == f"missed {i}")
        assert ev["seq"] == last + 1 + i


async def test_buy_over_socket_matches_http(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    sale = await make_sale(client, auth, quantity=3, limit=1, stream_id=sid)
    watcher = await connect(client, f"/ws/rooms/{sid}")
    assert watcher.events[0]["sale"]["id"] == sale["id"]
    alice = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'alice')}")
    await alice.send("buy", sale_id=sale["id"], key="alice-1", ref=7, show_name=True)
    res = await alice.until(lambda e: e["type"] == "buy_result")
    assert res["ref"] == 7 and res["duplicate"] is False and res["remaining"] == 2
    order = res["order"]
    r = await client.get(f"/api/orders/{order['id']}", headers=auth("viewer", "alice"))
    assert r.status == 200 and await r.json() == order, "the socket order is the HTTP order"
    # Same key again: the same order, marked duplicate, stock untouched (like HTTP).
    await alice.send("buy", sale_id=sale["id"], key="alice-1")
    dup = await alice.until(lambda e: e["type"] == "buy_result" and e["duplicate"])
    assert dup["order"]["id"] == order["id"] and dup["remaining"] == 2
    # Per-user limit: a new key over the socket and over HTTP gives the same code.
    await alice.send("buy", sale_id=sale["id"], key="alice-2", ref="x")
    err = await alice.until(lambda e: e["type"] == "error")
    r = await client.post(
        f"/api/sales/{sale['id']}/buy",
        json={},
        headers={**auth("viewer", "alice"), "Idempotency-Key": "alice-3"},
    )
    assert err["code"] == (await r.json())["error"] == "limit_reached" and err["ref"] == "x"
    for user in ("bob", "carol"):
        s = await connect(client, f"/ws/rooms/{sid}?token={token(signer, user)}")
        await s.send("buy", sale_id=sale["id"], key=f"{user}-1")
        await s.until(lambda e: e["type"] == "buy_result")
    dave = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'dave')}")
    await dave.send("buy", sale_id=sale["id"], key="dave-1")
    assert (await dave.until(lambda e: e["type"] == "error"))["code"] == "sold_out"
    r = await client.post(
        f"/api/sales/{sale['id']}/buy",
        json={},
        headers={**auth("viewer", "erin"), "Idempotency-Key": "e-1"},
    )
    assert r.status == 409 and (await r.json())["error"] == "sold_out"
    # The room heard it: throttled stock with anonymised buyers, then sold out in sequence.
    await watcher.until(lambda e: e["type"] == "sale" and e["phase"] == "sold_out")
    stock = await watcher.until(lambda e: e["type"] == "stock" and e["remaining"] == 0)
    buyers = [b for e in watcher.events if e["type"] == "stock" for b in e["buyers"]]
    assert "Alice" in buyers and None in buyers and "bob" not in buyers
    assert stock["sale_id"] == sale["id"]
    r = await client.get(f"/api/sales/{sale['id']}")
    assert (await r.json())["remaining"] == 0


async def test_a_sockets_taps_share_one_sale_call_and_each_is_answered(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    sale = await make_sale(client, auth, quantity=20, limit=10, stream_id=sid)
    registry = client.app[METRICS].registry

    def lua_calls() -> float:
        return registry.get_sample_value("livesell_buy_lua_call_seconds_count") or 0.0

    alice = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'alice')}")
    before = lua_calls()
    frames = [encode({"type": "buy", "sale_id": sale["id"], "key": f"k{i}", "ref": i})
              for i in range(10)]  # fmt: skip
    for frame in frames:
        await alice.ws.send_bytes(frame)
    await alice.send("ping", t=1, ref="p")
    for i in range(10):
        await alice.until(lambda e, i=i: e["type"] == "buy_result" and e["ref"] == i)
    await alice.until(lambda e: e["type"] == "pong" and e["ref"] == "p")
    # Read one after another, each tap was its own script call (ten); run beside the
    # socket's next frames, they ride the same coalesced call.
    assert lua_calls() - before <= 2
    orders = {e["order"]["id"] for e in alice.events if e["type"] == "buy_result"}
    assert len(orders) == 10
    r = await client.get(f"/api/sales/{sale['id']}")
    assert (await r.json())["remaining"] == 10
    # Over the limit, still answered with its ref, even when sent together.
    await alice.ws.send_bytes(encode({"type": "buy", "sale_id": sale["id"], "key": "k10",
                                      "ref": 10}))  # fmt: skip
    err = await alice.until(lambda e: e["type"] == "error")
    assert err["code"] == "limit_reached" and err["ref"] == 10


async def test_bad_frames_and_close_codes(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    s = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'alice')}")
    await s.ws.send_bytes(b"\xc1garbage")
    await s.ws.send_str('{"type": "chat", "text": "json"}')
    await s.send("chat", text="y" * 600)
    codes = [(await s.until(lambda e: e["type"] == "error"))["code"] for _ in range(3)]
    assert codes == ["bad_frame", "bad_frame", "too_long"]
    await s.send("chat", text="still connected")
    await s.until(lambda e: e.get("text") == "still connected")
    await s.ws.send_bytes(encode({"type": "chat", "text": "z" * 20000, "ref": "big"}))
    error = await s.until(lambda e: e["type"] == "error")
    assert (error["code"], error["ref"]) == ("bad_frame", "big"), "over 8 KiB: ref echoed"
    await s.ws.send_bytes(encode({"type": "chat", "text": "z" * 60000, "ref": "huge"}))
    msg = await s.ws.receive(timeout=5)
    while msg.type == aiohttp.WSMsgType.BINARY:
        msg = await s.ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1009

    bad = await client.session.ws_connect(client.make_url(f"/ws/rooms/{sid}?token=nope"))
    first = await bad.receive(timeout=5)
    assert decode(first.data)["code"] == "unauthorized"
    assert (await bad.receive(timeout=5)).data == 4001
    missing = await client.session.ws_connect(client.make_url("/ws/rooms/does-not-exist"))
    assert decode((await missing.receive(timeout=5)).data)["code"] == "stream_not_found"
    assert (await missing.receive(timeout=5)).data == 4004


async def test_http_host_actions(client: TestClient, auth: Auth) -> None:
    sid = await make_stream(client, auth)
    r = await client.post(
        "/api/products", json={"name": "Mug", "price_cents": 900}, headers=auth("host", "hostess")
    )
    product = await r.json()
    watcher = await connect(client, f"/ws/rooms/{sid}")
    r = await client.post(
        f"/api/streams/{sid}/room/pin",
        json={"product_id": product["id"]},
        headers=auth("viewer", "bob"),
    )
    assert r.status == 403 and (await r.json())["error"] == "forbidden"
    r = await client.post(f"/api/streams/{sid}/room/pin", json={"product_id": product["id"]})
    assert r.status == 401
    r = await client.post(
        f"/api/streams/{sid}/room/pin", json={"product_id": "1"}, headers=auth("host", "hostess")
    )
    assert r.status == 400 and (await r.json())["error"] == "bad_frame"
    r = await client.post(
        f"/api/streams/{sid}/room/pin",
        json={"product_id": product["id"]},
        headers=auth("host", "hostess"),
    )
    assert r.status == 200, await r.text()
    ev = await watcher.until(lambda e: e["type"] == "pinned")
    assert ev["product"]["name"] == "Mug" and ev["seq"] == (await r.json())["seq"]


async def test_shutdown_closes_sockets_with_1001(settings: Settings, auth: Auth) -> None:
    server = TestServer(create_app(settings))
    client = TestClient(server)
    await client.start_server()
    sid = await make_stream(client, auth)
    async with aiohttp.ClientSession() as session:
        ws = await session.ws_connect(server.make_url(f"/ws/rooms/{sid}"))
        await ws.receive(timeout=5)  # the snapshot
        closing = asyncio.create_task(server.close())
        msg = await ws.receive(timeout=10)  # told first, so the page knows when to come back
        assert decode(msg.data)["type"] == "server_restarting"
        msg = await ws.receive(timeout=10)
        assert msg.type == aiohttp.WSMsgType.CLOSE and msg.data == 1001
        await closing
    await client.close()


async def test_stuck_socket_does_not_delay_others(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    import dataclasses
    import socket

    from web.keys import ROOM_HUB

    hub = client.app[ROOM_HUB]
    # Smaller buffers than the defaults (so a few MB are enough), and no frame-rate cap.
    hub.audience.limits = dataclasses.replace(
        hub.limits, max_buffer_bytes=256 * 1024, resume_buffer_bytes=1024, lag_timeout_s=60,
        frames_burst=100_000, frames_per_s=100_000,
    )  # fmt: skip
    sid = await make_stream(client, auth)
    # A raw client that completes the handshake and then never reads.
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.setblocking(False)
    loop = asyncio.get_running_loop()
    await loop.sock_connect(stuck, ("127.0.0.1", client.port))
    await loop.sock_sendall(
        stuck,
        (
            f"GET /ws/rooms/{sid} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode(),
    )
    viewer = await connect(client, f"/ws/rooms/{sid}")
    host = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'hostess', 'host')}")
    # About 6 MB in all (4-byte characters): more than the kernel buffers can hold for it.
    text, n = "\U0001f600" * 495, 3000
    host_reader = asyncio.create_task(host.until(lambda e: False, wait_s=60))  # keep it read
    t0 = loop.time()
    for i in range(n):
        await host.send("chat", text=f"{i:05d}{text}")
    while len(viewer.chats()) < n:
        await viewer.until(lambda e: e["type"] == "chat", wait_s=20)
    assert loop.time() - t0 < 20
    assert [int(e["text"][:5]) for e in viewer.chats()] == list(range(n))
    room = hub.audience.get(sid)
    assert room is not None
    assert len(room.lagging) == 1, "the stuck socket was set aside, not waited for"
    # It starts reading again: it drains, gets a resync snapshot, and is live again.
    tail = b""
    deadline = loop.time() + 20
    while b"\xa6resync\xc3" not in tail:
        assert loop.time() < deadline, "no resync snapshot"
        try:
            chunk = await asyncio.wait_for(loop.sock_recv(stuck, 1 << 16), 1)
        except TimeoutError:
            continue
        assert chunk, "server closed the stuck socket"
        tail = tail[-16:] + chunk
    stuck.close()
    host_reader.cancel()


async def test_room_survives_a_dropped_pubsub_connection(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    host = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'hostess', 'host')}")
    viewer = await connect(client, f"/ws/rooms/{sid}")
    await host.send("chat", text="before")
    await viewer.until(lambda e: e.get("text") == "before")
    # Drop every pub/sub connection on the (test-owned) Redis, as a network blip would.
    killed = await client.app[REDIS].client_kill_filter(_type="pubsub")
    assert killed >= 1
    # The hub must resubscribe; the viewer gets a fresh snapshot for what it may have missed,
    # and then live chat again.
    await viewer.until(lambda e: e["type"] == "snapshot" and bool(e.get("resync")), wait_s=10)
    for attempt in range(50):
        await host.send("chat", text=f"after {attempt}")
        try:
            await viewer.until(lambda e: str(e.get("text", "")).startswith("after"), wait_s=0.2)
            break
        except TimeoutError:
            continue
    else:
        raise AssertionError("no chat reached the viewer after the pub/sub connection dropped")


async def test_room_limits_come_from_settings(
    aiohttp_client, settings: Settings, auth: Auth, signer: TokenSigner
) -> None:  # type: ignore[no-untyped-def]
    tight = dataclasses.replace(settings, room_chat_burst=2, room_chat_per_s=0.01)
    client = await aiohttp_client(create_app(tight))
    sid = await make_stream(client, auth)
    amy = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'amy')}")
    for i in range(3):
        await amy.send("chat", text=f"m{i}", ref=f"r{i}")
    await amy.until(lambda e: e.get("text") == "m1")
    err = await amy.until(lambda e: e["type"] == "error" and e.get("ref") == "r2")
    assert err["code"] == "rate_limited"


async def test_a_banned_moderator_loses_its_powers(client: TestClient, auth: Auth) -> None:
    sid = await make_stream(client, auth)
    host = auth("host", "hostess")

    async def act(action: str, headers: dict[str, str], **body: Any) -> int:
        r = await client.post(f"/api/streams/{sid}/room/{action}", json=body, headers=headers)
        return r.status

    assert await act("promote", host, user_id="mo") == 200
    assert await act("announce", auth("viewer", "mo"), text="hello") == 200
    assert await act("ban", host, user_id="mo") == 200
    assert await act("announce", auth("viewer", "mo"), text="free stuff") == 403
    assert await act("ban", auth("viewer", "mo"), user_id="victim") == 403
    assert await act("unban", host, user_id="mo") == 200
    assert await act("announce", auth("viewer", "mo"), text="back?") == 403  # not a mod any more


async def test_room_keys_expire_after_the_show_unless_it_goes_live_again(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    host = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'hostess', 'host')}")
    await host.send("chat", text="hello")
    await host.until(lambda e: e.get("text") == "hello")
    hub, redis = client.app[ROOM_HUB], client.app[REDIS]
    history = hub.keys(sid).history
    assert await redis.pttl(history) == -1
    await hub.stream_status(sid, "ended")
    assert 0 < await redis.pttl(history) <= 7 * 86_400_000
    await hub.stream_status(sid, "live")
    assert await redis.pttl(history) == -1
