"""Auctions and draws over the room socket and HTTP: sequenced lot events, bids, entries."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from tests.chat.test_room_ws import Auth, connect, make_stream, token
from web.auth import TokenSigner


async def test_two_viewers_bid_and_the_winner_gets_a_reserved_order(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    """Bids over socket and HTTP; the room sees leader, bid and end; the winner gets an order."""
    sid = await make_stream(client, auth)
    host = auth("host", "hostess")
    r = await client.post("/api/products", json={"name": "Vase", "price_cents": 900}, headers=host)
    assert r.status == 201, await r.text()
    body = {"product_id": (await r.json())["id"], "start_cents": 1000, "increment_cents": 100,
            "duration_s": 2, "window_s": 1, "extend_s": 1, "stream_id": sid}  # fmt: skip
    r = await client.post("/api/lots", json=body, headers=auth("viewer", "amy"))
    assert r.status == 403
    r = await client.post("/api/lots", json=body, headers=host)
    lot = await r.json()
    assert r.status == 201, lot
    watcher = await connect(client, f"/ws/rooms/{sid}")
    amy = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'amy')}")
    r = await client.post(f"/api/lots/{lot['id']}/open", headers=host)
    assert r.status == 200
    opened = await watcher.until(lambda e: e["type"] == "auction")
    assert opened["event"] == "lot_opened" and opened["lot"]["next_bid_cents"] == 1000
    await amy.send("bid", lot_id=lot["id"], key="a1", amount_cents=1000, show_name=True, ref=7)
    reply = await amy.until(lambda e: e.get("ref") == 7)
    assert reply["type"] == "bid_result" and reply["amount_cents"] == 1000, reply
    seen = await watcher.until(lambda e: e.get("event") == "bid_accepted")
    assert (seen["lot"]["bid_cents"], seen["lot"]["leader_name"]) == (1000, "Amy")
    await amy.send("bid", lot_id=lot["id"], key="a2", amount_cents=1050, ref=8)
    low = await amy.until(lambda e: e.get("ref") == 8)
    assert (low["type"], low["code"]) == ("error", "bid_too_low")
    bob = {**auth("viewer", "bob"), "Idempotency-Key": "b1"}
    r = await client.post(f"/api/lots/{lot['id']}/bids", json={"amount_cents": 1100}, headers=bob)
    assert r.status == 201, await r.text()
    seen = await watcher.until(lambda e: e.get("event") == "bid_accepted")
    assert (seen["lot"]["bid_cents"], seen["lot"]["leader_name"]) == (1100, None)
    closed = await watcher.until(lambda e: e.get("event") == "lot_closed", wait_s=10)
    assert closed["lot"]["state"] == "won" and closed["lot"]["winner"] is None
    assert "bob" not in str(watcher.events)
    r = await client.get(f"/api/lots/{lot['id']}", headers=auth("viewer", "bob"))
    mine = await r.json()
    assert mine["winner"] == "bob" and mine["order_id"]
    r = await client.get(f"/api/orders/{mine['order_id']}", headers=auth("viewer", "bob"))
    order = await r.json()
    assert (order["state"], order["unit_price_cents"]) == ("reserved", 1100), order
    r = await client.post(f"/api/lots/{lot['id']}/bids", json={"amount_cents": 9999},
                          headers={**auth("viewer", "cy"), "Idempotency-Key": "c"})  # fmt: skip
    assert r.status == 410 and (await r.json())["error"] == "lot_closed"
    await asyncio.sleep(0.3)  # the persister writes the order; the audit drains it anyway
    r = await client.get(f"/api/sales/{lot['id']}/audit", headers=auth("admin", "ops"))
    report = await r.json()
    assert report["ok"], report
    assert report["checks"]["auction_one_winner_with_order"]


async def test_enter_a_draw_over_the_socket_and_verify_it(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    """Entries come from room sockets; the close reveals a seed that verifies the winners."""
    from flashsale.draw import verify

    sid = await make_stream(client, auth)
    host = auth("host", "hostess")
    r = await client.post("/api/products", json={"name": "Shoe", "price_cents": 900}, headers=host)
    body = {"product_id": (await r.json())["id"], "quantity": 1, "per_user_limit": 1,
            "stream_id": sid}  # fmt: skip
    r = await client.post("/api/sales", json=body, headers=host)
    sale = await r.json()
    assert r.status == 201, sale
    r = await client.post(f"/api/sales/{sale['id']}/draw", json={"window_s": 60}, headers=host)
    draw = await r.json()
    assert r.status == 201 and draw["seed"] is None, draw
    mine = {}
    for name in ("amy", "bob", "cy"):
        sock = await connect(client, f"/ws/rooms/{sid}?token={token(signer, name)}")
        for ref in (1, 2):
            await sock.send("enter_draw", sale_id=sale["id"], ref=ref)
            got = await sock.until(lambda e, ref=ref: e.get("ref") == ref)
            assert got["type"] == "draw_entered" and got["duplicate"] == (ref == 2), got
            mine[got["entry_id"]] = name
    r = await client.post(f"/api/sales/{sale['id']}/draw/close", json={"now": True}, headers=host)
    done = await r.json()
    assert done["state"] == "awarded" and done["entries"] == 3
    assert len(done["winner_entries"]) == 1 and "amy" not in str(done)
    text = await (await client.get(f"/api/sales/{sale['id']}/draw/entries")).text()
    entries = text.split()
    seed = bytes.fromhex(done["seed"])
    assert verify(entries, seed, draw["commitment"], 1) == done["winner_entries"]
    assert done["winner_entries"][0] in mine
    r = await client.get(f"/api/sales/{sale['id']}/audit", headers=auth("admin", "ops"))
    report = await r.json()
    assert report["ok"] and report["figures"]["reserved"] == 1, report
