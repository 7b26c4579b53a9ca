"""Privacy: export everything kept about the caller, then erase it; audits still pass."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from redis.asyncio import Redis
from sqlalchemy import select

from flashsale.audit import audit_sale
from inventory.models import Base
from tests.chat.test_room_ws import Auth, connect, make_stream
from tests.flashsale.helpers import buy, make_sale
from web.auth import Role, TokenSigner
from web.keys import ATTRIBUTION, DATABASE, LEDGER, MEMBERS, REDIS, SETTINGS


async def _redis_dump(redis: Redis, prefix: str) -> bytes:
    """Every key name and value under ``prefix``, concatenated (for a substring scan)."""
    out = []
    async for key in redis.scan_iter(f"{prefix}:*"):
        kind = (await redis.type(key)).decode()
        out.append(key)
        if kind == "string":
            out.append(await redis.get(key) or b"")
        elif kind == "hash":
            out += [b for kv in (await redis.hgetall(key)).items() for b in kv]
        elif kind == "list":
            out += await redis.lrange(key, 0, -1)
        elif kind == "set":
            out += list(await redis.smembers(key))
        elif kind == "zset":
            out += [m for m, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            out += [b for _, fields in await redis.xrange(key) for kv in fields.items() for b in kv]
    return b"\n".join(out)


async def _sql_dump(client: TestClient) -> str:
    """Every row of every table, as text."""
    out = []
    async with client.app[DATABASE].session() as s:
        for table in Base.metadata.sorted_tables:
            out += [repr(tuple(row)) for row in await s.execute(select(table))]
    return "\n".join(out)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_export_then_erase_leaves_no_trace(
    client: TestClient, auth: Auth, signer: TokenSigner, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    uid, name = f"u{uuid.uuid4().hex[:10]}", "Zelda Quux"
    me = {"Authorization": f"Bearer {signer.mint(uid, Role.VIEWER, name)}"}
    app = client.app
    sid = await make_stream(client, auth)
    sale = await make_sale(client, auth, quantity=5, limit=2, stream_id=sid)
    other = await make_sale(client, auth, quantity=5, limit=2, stream_id=sid)
    # Membership, a share-link visit, chat, an opted-in buy, a paid order and a reserved one.
    assert (await client.post("/api/stores/hostess/join", headers=me)).status in (200, 201)
    r = await client.post(f"/api/streams/{sid}/touch", json={"ref": "pat"}, headers=me)
    assert r.status == 200
    mine = await connect(client, f"/ws/rooms/{sid}?token={signer.mint(uid, Role.VIEWER, name)}")
    bob = await connect(client, f"/ws/rooms/{sid}?token={signer.mint('bob', Role.VIEWER, 'Bob')}")
    for sock, text in ((mine, "hello"), (mine, "is it warm?"), (bob, "bob here")):
        await sock.send("chat", text=text, ref=text)
        await sock.until(lambda e, t=text: e["type"] == "ack" and e["ref"] == t)
    await mine.send("buy", sale_id=sale["id"], key="k1", show_name=True)
    paid = (await mine.until(lambda e: e["type"] == "buy_result"))["order"]
    assert (await client.post(f"/api/orders/{paid['id']}/pay", headers=me)).status == 200
    status, _ = await buy(client, auth, other["id"], "bob", "b1")
    r = await client.post(f"/api/sales/{other['id']}/buy", headers={**me, "Idempotency-Key": "k2"})
    assert r.status == 201 and status == 201
    # A group opened on the other sale and a coupon claimed on the first.
    admin = auth("admin", "ops")
    body: dict[str, Any] = {"price_cents": 1500, "size": 3}
    r = await client.post(f"/api/sales/{other['id']}/group-offer", json=body, headers=admin)
    assert r.status == 201, await r.text()
    r = await client.post(
        f"/api/sales/{other['id']}/groups", headers={**me, "Idempotency-Key": "g1"}
    )
    assert r.status == 201, await r.text()
    body = {"kind": "amount", "value": 100, "count": 5, "expires_s": 120}
    r = await client.post(f"/api/sales/{sale['id']}/coupons", json=body, headers=admin)
    assert r.status == 201, await r.text()
    r = await client.post(f"/api/coupons/{(await r.json())['id']}/claim", headers=me)
    assert r.status in (200, 201), await r.text()
    r = await client.post(
        f"/api/orders/{paid['id']}/review", json={"rating": 4, "show_name": True}, headers=me
    )
    assert r.status == 201
    for sale_id in (sale["id"], other["id"]):
        assert (await audit_sale(app[REDIS], app[LEDGER], app[SETTINGS].redis_prefix, sale_id)).ok
    await app[ATTRIBUTION].attribute_orders()
    await app[MEMBERS].credit_paid_orders()

    r = await client.get("/api/me/data", headers=me)
    data: dict[str, Any] = await r.json()
    assert r.status == 200 and data["user_id"] == uid and data["name"] == name
    assert sorted(o["state"] for o in data["orders"]) == ["paid", "reserved", "reserved"]
    assert [m["text"] for m in data["chat_history"]] == ["is it warm?", "hello"]
    assert len(data["reviews"]) == 1 and len(data["memberships"]) == 1 and data["points"]
    assert data["attribution"]["touches"][0]["promoter_id"] == "pat"
    assert len(data["live_orders"]) == 3 and data["archived_room_events"] is not None

    prefix = app[SETTINGS].redis_prefix
    assert uid.encode() in await _redis_dump(app[REDIS], prefix) and uid in await _sql_dump(client)
    r = await client.delete("/api/me/data", headers=me)
    assert r.status == 200 and (await r.json())["erased"] is True
    # No table, Redis key or log line holds the id or the name any more.
    dump = await _redis_dump(app[REDIS], prefix)
    assert uid.encode() not in dump and name.encode() not in dump
    sql = await _sql_dump(client)
    assert uid not in sql and name not in sql
    assert b"bob here" in dump  # only the erased user's traces went
    for sale_id in (sale["id"], other["id"]):
        report = await audit_sale(app[REDIS], app[LEDGER], prefix, sale_id)
        assert report.ok, report.problems
        assert report.figures["orders"] == (3 if sale_id == other["id"] else 1)
    r = await client.get("/api/me/data", headers=me)
    after = await r.json()
    assert after["orders"] == [] and after["chat_history"] == [] and after["reviews"] == []
    # The order survives, paid, under a pseudonym; the review stays without a name.
    r = await client.get(f"/api/products/{sale['product_id']}/reviews")
    assert (await r.json())["latest"][0]["name"] is None
    r = await client.get(f"/api/orders/{paid['id']}", headers=auth("admin", "ops"))
    assert (await r.json())["state"] == "paid"
    # What the app writes (its own loggers and the access log), not a driver's debug echo.
    ours = [r for r in caplog.records if r.name.startswith(("livesell", "aiohttp.access"))]
    assert any("/api/me/data" in r.getMessage() for r in ours)
    logged = "\n".join(rec.getMessage() for rec in ours)
    assert uid not in logged and name not in logged
