"""Group buys and coupon drops in the live room: sequenced once on every server, and commands."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from tests.chat.test_room_ws import Socket, connect, make_stream, token
from tests.flashsale.helpers import make_sale
from web.app import create_app
from web.auth import TokenSigner
from web.settings import Settings

Auth = Callable[..., dict[str, str]]
GROUP_FIELDS = {"id", "sale_id", "state", "size", "members", "deadline_ms", "price_cents",
                "share_path"}  # fmt: skip
COUPON_FIELDS = {"id", "sale_id", "kind", "value", "min_spend_cents", "expires_at_ms", "total",
                 "left"}  # fmt: skip


def of(kind: str, phase: str) -> Callable[[dict[str, Any]], bool]:
    """Matches a room ``group``/``coupon`` event of one phase."""
    return lambda e: e["type"] == kind and e.get("phase") == phase


async def drain(*socks: Socket) -> None:
    """Read whatever has arrived (anything sent twice would be here by now)."""
    await asyncio.sleep(0.3)
    for sock in socks:
        while True:
            try:
                await sock.until(lambda e: False, wait_s=0.05)
            except TimeoutError:
                break


def social(sock: Socket, kind: str) -> list[dict[str, Any]]:
    """The socket's sequenced events of one type, without the test's bookkeeping."""
    return [{k: v for k, v in e.items() if k != "_seen"} for e in sock.events if e["type"] == kind]


@pytest.fixture
async def other(settings: Settings) -> AsyncIterator[TestClient]:
    """A second server process of the same deployment (its own room, sale feed and reapers)."""
    second = TestClient(TestServer(create_app(settings)))
    await second.start_server()
    yield second
    await second.close()


async def test_a_group_opens_fills_and_expires_in_the_room_on_two_servers_once(
    client: TestClient, other: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    sale = await make_sale(client, auth, quantity=6, limit=1, stream_id=sid, host="hostess")
    one = await connect(client, f"/ws/rooms/{sid}")
    two = await connect(other, f"/ws/rooms/{sid}")
    host = auth("host", "hostess")
    body = {"price_cents": 1500, "size": 3, "ttl_s": 60}
    r = await client.post(f"/api/sales/{sale['id']}/group-offer", json=body, headers=host)
    assert r.status == 201, await r.text()
    offered = await two.until(of("group", "offer"))
    assert offered["offer"] == {"sale_id": sale["id"], "state": "open", "price_cents": 1500,
                                "size": 3, "ttl_s": 60}  # fmt: skip
    amy = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'amy')}")
    bob = await connect(other, f"/ws/rooms/{sid}?token={token(signer, 'bob')}")

    await one.send("group_open", sale_id=sale["id"], key="g-1", ref="o")
    assert (await one.until(lambda e: e.get("ref") == "o"))["code"] == "unauthorized"
    await amy.send("group_open", sale_id=sale["id"], key="g-1", show_name=True, ref="o")
    opened = await amy.until(lambda e: e["type"] == "group_result")
    assert opened["ref"] == "o" and opened["duplicate"] is False
    gid = opened["group"]["id"]
    assert opened["group"]["share_path"] == f"/live/{sid}?group={gid}"
    order = opened["order"]
    assert order["state"] == "reserved" and order["unit_price_cents"] == 1500
    await amy.send("group_open", sale_id=sale["id"], key="g-1", ref="again")
    again = await amy.until(lambda e: e["type"] == "group_result" and e["ref"] == "again")
    assert again["duplicate"] is True and again["group"]["id"] == gid

    # A new viewer's snapshot lists the open group.
    snap = (await connect(other, f"/ws/rooms/{sid}")).events[0]
    assert [g["id"] for g in snap["groups"]] == [gid] and snap["groups"][0]["members"] == 1
    assert snap["coupon"] is None and snap["group_offers"] == [offered["offer"]]

    await bob.send("group_join", group_id=gid, ref=2)
    joined = await bob.until(lambda e: e["type"] == "group_result")
    assert joined["ref"] == 2 and joined["group"]["members"] == 2
    r = await other.post(f"/api/groups/{gid}/join", headers=auth("viewer", "cy"))
    assert r.status == 201 and (await r.json())["group"]["state"] == "filled"
    # Full now: the socket and HTTP refuse alike, the ref echoed.
    dan = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'dan')}")
    await dan.send("group_join", group_id=gid, ref="d")
    err = await dan.until(lambda e: e["type"] == "error")
    r = await client.post(f"/api/groups/{gid}/join", headers=auth("viewer", "dan"))
    assert err["code"] == (await r.json())["error"] == "group_full" and err["ref"] == "d"
    await dan.send("group_join", group_id="nope", ref="n")
    assert (await dan.until(lambda e: e.get("ref") == "n"))["code"] == "group_not_found"

    for sock in (one, two):
        await sock.until(of("group", "filled"))
    # An unfilled group runs out in the room too (the app's group reaper).
    body = {**body, "ttl_s": 1}
    r = await client.post(f"/api/sales/{sale['id']}/group-offer", json=body, headers=host)
    assert r.status == 201
    await dan.send("group_open", sale_id=sale["id"], key="g-2", ref="late")
    lonely = (await dan.until(lambda e: e["type"] == "group_result"))["group"]["id"]
    for sock in (one, two):
        await sock.until(of("group", "expired"), wait_s=5)
    await drain(one, two)
    seen_one, seen_two = social(one, "group"), social(two, "group")
    assert seen_one == seen_two, "both servers deliver the very same events, once"
    offers = [e["offer"]["ttl_s"] for e in seen_one if e["phase"] == "offer"]
    assert offers == [60, 1], "each change of the terms, once"
    seen = [e for e in seen_one if e["phase"] != "offer"]
    steps = [(e["group"]["id"], e["phase"], e["group"]["members"]) for e in seen]
    assert steps == [
        (gid, "opened", 1), (gid, "joined", 2), (gid, "joined", 3), (gid, "filled", 3),
        (lonely, "opened", 1), (lonely, "expired", 1),
    ]  # fmt: skip
    assert [e["seq"] for e in seen_one] == sorted({e["seq"] for e in seen_one})
    assert [e.get("buyer") for e in seen[:3]] == ["Amy", None, None]
    for e in seen:
        assert set(e["group"]) == GROUP_FIELDS and e["group"]["price_cents"] == 1500
        assert e["group"]["size"] == 3
    assert seen[3]["group"]["state"] == "filled" and seen[5]["group"]["state"] == "expired"
    for user in ("amy", "bob", "cy", "dan"):
        assert user not in str(seen_one), "never a member's user id"


async def test_a_coupon_drop_is_claimed_out_in_the_room(
    client: TestClient, other: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    elsewhere = await make_stream(client, auth)
    sale = await make_sale(client, auth, quantity=6, limit=1, stream_id=sid, host="hostess")
    one = await connect(client, f"/ws/rooms/{sid}")
    two = await connect(other, f"/ws/rooms/{sid}")
    body = {"kind": "amount", "value": 500, "count": 2, "expires_s": 60,
            "min_spend_cents": 1000}  # fmt: skip
    r = await client.post(f"/api/sales/{sale['id']}/coupons", json=body,
                          headers=auth("host", "hostess"))  # fmt: skip
    drop = await r.json()
    assert r.status == 201, drop
    dropped = await two.until(of("coupon", "dropped"))
    assert set(dropped["coupon"]) == COUPON_FIELDS
    assert dropped["coupon"]["left"] == 2 and dropped["coupon"]["value"] == 500
    assert dropped["coupon"]["expires_at_ms"] == drop["expires_at_ms"]
    snap = (await connect(client, f"/ws/rooms/{sid}")).events[0]
    assert snap["coupon"]["id"] == drop["id"] and snap["coupon"]["left"] == 2

    stranger = await connect(client, f"/ws/rooms/{elsewhere}?token={token(signer, 'eve')}")
    await stranger.send("coupon_claim", coupon_id=drop["id"], ref="e")
    assert (await stranger.until(lambda e: e.get("ref") == "e"))["code"] == "sale_not_found"
    amy = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'amy')}")
    await amy.send("coupon_claim", coupon_id=drop["id"], ref="a")
    claim = await amy.until(lambda e: e["type"] == "coupon_result")
    assert claim["ref"] == "a" and claim["state"] == "claimed" and not claim["duplicate"]
    assert claim["coupon"]["left"] == 1
    await amy.send("coupon_claim", coupon_id=drop["id"], ref="a2")
    dup = await amy.until(lambda e: e["type"] == "coupon_result" and e["ref"] == "a2")
    assert dup["duplicate"] is True
    r = await other.post(f"/api/coupons/{drop['id']}/claim", headers=auth("viewer", "bob"))
    assert r.status == 201
    cy = await connect(other, f"/ws/rooms/{sid}?token={token(signer, 'cy')}")
    await cy.send("coupon_claim", coupon_id=drop["id"], ref=9)
    err = await cy.until(lambda e: e["type"] == "error")
    r = await client.post(f"/api/coupons/{drop['id']}/claim", headers=auth("viewer", "dan"))
    assert err["code"] == (await r.json())["error"] == "coupons_gone" and err["ref"] == 9
    for sock in (one, two):
        await sock.until(of("coupon", "claimed_out"))
    snap = (await connect(other, f"/ws/rooms/{sid}")).events[0]
    assert snap["coupon"] is None, "a drop claimed out is no longer offered"
    await drain(one, two)
    seen_one, seen_two = social(one, "coupon"), social(two, "coupon")
    assert seen_one == seen_two
    assert [(e["phase"], e["coupon"]["left"]) for e in seen_one] == [
        ("dropped", 2),
        ("claimed_out", 0),
    ]
