"""Per-address rate limits over the real app and Redis: guest sign-in, buys, socket connects."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, make_mocked_request

from chat.protocol import CLOSE_RATE_LIMITED, decode, encode
from tests.flashsale.helpers import make_sale
from web.app import create_app
from web.keys import CATALOG, SALES
from web.ratelimit import ClientAddresses, networks
from web.settings import Settings

Auth = Callable[..., dict[str, str]]


def fwd(ip: str) -> dict[str, str]:
    """A header as the (trusted, loopback) proxy in front of the server would add it."""
    return {"X-Forwarded-For": ip}


async def app_client(aiohttp_client: Any, settings: Settings, **changes: Any) -> TestClient:
    return await aiohttp_client(create_app(dataclasses.replace(settings, **changes)))  # type: ignore[no-any-return]


async def guests(client: TestClient, n: int, headers: dict[str, str]) -> list[int]:
    return [
        (await client.post("/api/guest", json={"name": "x"}, headers=headers)).status
        for _ in range(n)
    ]


async def test_guest_sign_in_is_limited_per_forwarded_address(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings, guest_logins_per_min=3)
    assert await guests(client, 5, fwd("203.0.113.7")) == [201, 201, 201, 429, 429]
    refused = await client.post("/api/guest", json={"name": "x"}, headers=fwd("203.0.113.7"))
    assert refused.status == 429
    assert await refused.json() == {
        "error": "rate_limited",
        "message": (await refused.json())["message"],
    }
    assert 1 <= int(refused.headers["Retry-After"]) <= 20  # one token back every 20 s
    # Another client behind the same proxy has its own budget; loopback itself is exempt.
    assert await guests(client, 1, fwd("203.0.113.8")) == [201]
    assert await guests(client, 4, {}) == [201] * 4


async def test_the_budget_is_shared_by_every_worker(
    aiohttp_client: Any, settings: Settings
) -> None:
    one = await app_client(aiohttp_client, settings, guest_logins_per_min=3)
    two = await app_client(aiohttp_client, settings, guest_logins_per_min=3)
    ip = fwd("198.51.100.20")
    assert await guests(one, 2, ip) + await guests(two, 2, ip) == [201, 201, 201, 429]
    assert await guests(one, 1, ip) == [429]


async def test_forwarded_for_is_ignored_from_an_untrusted_peer(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(
        aiohttp_client, settings, guest_logins_per_min=2, trusted_proxies="", rate_limit_exempt=""
    )
    # Each request claims another address; all count against the peer's own.
    codes = [
        (await client.post("/api/guest", json={"name": "x"}, headers=fwd(f"192.0.2.{i}"))).status
        for i in range(4)
    ]
    assert codes == [201, 201, 429, 429]


def test_the_client_is_the_rightmost_address_no_trusted_proxy_added() -> None:
    clients = ClientAddresses(networks("127.0.0.1,10.0.0.0/8", "X"))

    def of(peer: str, *xff: str) -> str:
        headers = {"X-Forwarded-For": ", ".join(xff)} if xff else {}
        request = make_mocked_request("GET", "/", headers=headers)
        object.__setattr__(request, "_transport_peername", (peer, 1234))
        return clients.of(request)

    assert of("127.0.0.1") == "127.0.0.1"
    assert of("127.0.0.1", "203.0.113.9") == "203.0.113.9"
    # The client wrote the first entry itself; our proxies added the rest.
    assert of("127.0.0.1", "6.6.6.6", "203.0.113.9", "10.1.2.3") == "203.0.113.9"
    assert of("192.0.2.1", "203.0.113.9") == "192.0.2.1"  # not a proxy of ours
    assert of("127.0.0.1", "not-an-ip", "10.1.2.3") == "10.1.2.3"
    assert of("127.0.0.1", "2001:db8::5") == "2001:db8::5"


async def test_http_and_socket_buys_share_one_budget(
    aiohttp_client: Any, settings: Settings, auth: Auth
) -> None:
    client = await app_client(aiohttp_client, settings, buys_per_min=3)
    await client.app[CATALOG].create_stream("show", "hana", "")
    sale = await make_sale(client, auth, quantity=50, limit=50, stream_id="show")
    ip = fwd("203.0.113.50")

    async def http_buy(key: str) -> aiohttp.ClientResponse:
        headers = {**auth("viewer", "bo"), "Idempotency-Key": key, **ip}
        return await client.post(f"/api/sales/{sale['id']}/buy", json={}, headers=headers)

    assert (await http_buy("k1")).status == 201
    assert (await http_buy("k2")).status == 201
    ws = await client.ws_connect("/ws/rooms/show", headers={**auth("viewer", "bo"), **ip})
    replies = []
    for key in ("k3", "k4"):
        await ws.send_bytes(encode({"type": "buy", "sale_id": sale["id"], "key": key, "ref": key}))
        while True:
            msg = decode((await ws.receive(timeout=5)).data)
            found = [
                e for e in msg.get("events", [msg]) if e.get("ref") == key and e["type"] != "ack"
            ]
            if found:
                replies.append(found[0])
                break
    assert replies[0]["type"] == "buy_result"
    assert replies[1]["type"] == "error" and replies[1]["code"] == "rate_limited"
    assert replies[1]["retry_after_ms"] > 0
    assert not ws.closed  # a per-address limit is not an abuse strike
    refused = await http_buy("k5")
    assert refused.status == 429 and "Retry-After" in refused.headers
    assert (await refused.json())["error"] == "rate_limited"
    await ws.close()
    orders = await client.app[SALES].get_sale(sale["id"])
    assert orders.quantity - orders.remaining == 3


async def test_socket_connects_are_limited_with_a_documented_close(
    aiohttp_client: Any, settings: Settings
) -> None:
    client = await app_client(aiohttp_client, settings, socket_connects_per_min=2)
    await client.app[CATALOG].create_stream("show", "hana", "")
    ip = fwd("203.0.113.60")
    kept = [await client.ws_connect("/ws/rooms/show", headers=ip) for _ in range(2)]
    for ws in kept:
        assert decode((await ws.receive(timeout=5)).data)["type"] == "snapshot"
    refused = await client.ws_connect("/ws/rooms/show", headers=ip)
    event = decode((await refused.receive(timeout=5)).data)
    assert event["type"] == "error" and event["code"] == "rate_limited"
    assert event["retry_after_ms"] > 0
    closing = await refused.receive(timeout=5)
    assert closing.type == aiohttp.WSMsgType.CLOSE and closing.data == CLOSE_RATE_LIMITED
    # Another address (and loopback, exempt) still gets in.
    other = await client.ws_connect("/ws/rooms/show", headers=fwd("203.0.113.61"))
    assert decode((await other.receive(timeout=5)).data)["type"] == "snapshot"
    for ws in [*kept, other]:
        await ws.close()
