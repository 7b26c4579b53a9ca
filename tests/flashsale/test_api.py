"""The HTTP API of products, sales, buying and orders, with its error contract."""

from __future__ import annotations

import asyncio
import json

from aiohttp.test_utils import TestClient

from flashsale.keys import active_sales_key
from tests.flashsale.helpers import Auth, buy, make_sale
from web.keys import REDIS, SALES, SETTINGS


async def test_health_and_ready(client: TestClient) -> None:
    r = await client.get("/healthz")
    assert r.status == 200
    r = await client.get("/readyz")
    body = await r.json()
    assert r.status == 200, body
    assert body["checks"] == {"redis": "ok", "database": "ok"}


async def test_products_need_a_manager_token(client: TestClient, auth: Auth) -> None:
    r = await client.post("/api/products", json={"name": "x", "price_cents": 1})
    assert r.status == 401
    assert (await r.json())["error"] == "unauthorized"
    r = await client.post("/api/products", json={"name": "x", "price_cents": 1}, headers=auth())
    assert r.status == 403
    assert (await r.json())["error"] == "forbidden"
    r = await client.post(
        "/api/products", json={"name": "Mug", "price_cents": 900}, headers=auth("host", "hana")
    )
    assert r.status == 201
    r = await client.get("/api/products")
    assert [p["name"] for p in (await r.json())["products"]] == ["Mug"]


async def test_bad_input_is_a_clear_400(client: TestClient, auth: Auth) -> None:
    admin = auth("admin", "ops")
    r = await client.post("/api/products", data=b"{not json", headers=admin)
    assert r.status == 400
    body = await r.json()
    assert body["error"] == "bad_request" and "JSON" in body["message"]
    r = await client.post("/api/products", json={"name": "x", "price_cents": "9"}, headers=admin)
    assert r.status == 400 and "price_cents" in (await r.json())["message"]
    r = await client.post("/api/sales", json={"product_id": 999, "quantity": 1}, headers=admin)
    assert r.status == 404
    r = await client.get("/api/sales/abc")
    assert r.status == 404
    r = await client.post("/api/products", json=[1], headers=admin)
    assert r.status == 400
    r = await client.post(
        "/api/products", data=b"x" * 70_000, headers={**admin, "Content-Type": "application/json"}
    )
    assert r.status == 413


async def test_bad_token_is_401(client: TestClient) -> None:
    r = await client.post("/api/sales/1/buy", headers={"Authorization": "Bearer nope"})
    assert r.status == 401
    r = await client.post("/api/sales/1/buy", headers={"Authorization": "Basic abc"})
    assert r.status == 401


async def test_viewer_cannot_create_or_open_sales(client: TestClient, auth: Auth) -> None:
    sale = await make_sale(client, auth, open_now=False)
    r = await client.post(f"/api/sales/{sale['id']}/open", headers=auth("viewer", "v"))
    assert r.status == 403
    r = await client.post(f"/api/sales/{sale['id']}/open", headers=auth("host", "other-host"))
    assert r.status == 403
    r = await client.post("/api/sales", json={"product_id": 1, "quantity": 1}, headers=auth())
    assert r.status == 403


async def test_buy_lifecycle_and_errors(client: TestClient, auth: Auth) -> None:
    sale = await make_sale(client, auth, quantity=2, limit=1, open_now=False)
    sid = sale["id"]
    assert sale["state"] == "scheduled" and sale["remaining"] == 2

    status, body = await buy(client, auth, sid, "amy", "k1")
    assert (status, body["error"]) == (409, "not_open")

    r = await client.post(f"/api/sales/{sid}/open", headers=auth("admin", "ops"))
    assert (await r.json())["state"] == "open"

    r = await client.post(f"/api/sales/{sid}/buy", headers=auth("viewer", "amy"))
    assert r.status == 400 and "Idempotency-Key" in (await r.json())["message"]

    status, body = await buy(client, auth, sid, "amy", "k1")
    assert status == 201, body
    order = body["order"]
    assert body["remaining"] == 1
    assert order["state"] == "reserved" and order["user_id"] == "amy" and order["qty"] == 1
    assert order["unit_price_cents"] == 1999 and order["expires_at_ms"] > order["created_at_ms"]

    status, body = await buy(client, auth, sid, "amy", "k2")
    assert (status, body["error"]) == (409, "limit_reached")

    status, body = await buy(client, auth, sid, "bob", "k1")
    assert status == 201 and body["remaining"] == 0
    status, body = await buy(client, auth, sid, "cat", "k1")
    assert (status, body["error"]) == (409, "sold_out")

    # Only the owner (or an admin) sees and settles an order.
    oid = order["id"]
    r = await client.get(f"/api/orders/{oid}", headers=auth("viewer", "bob"))
    assert r.status == 404
    r = await client.post(f"/api/orders/{oid}/pay", headers=auth("viewer", "bob"))
    assert r.status == 404
    r = await client.post(f"/api/orders/{oid}/pay", headers=auth("viewer", "amy"))
    assert r.status == 200 and (await r.json())["state"] == "paid"
    r = await client.post(f"/api/orders/{oid}/pay", headers=auth("viewer", "amy"))
    assert r.status == 200  # paying twice is idempotent
    r = await client.post(f"/api/orders/{oid}/cancel", headers=auth("viewer", "amy"))
    assert (r.status, (await r.json())["error"]) == (409, "order_state")

    r = await client.post(f"/api/sales/{sid}/close", headers=auth("admin", "ops"))
    assert (await r.json())["state"] == "ended"
    status, body = await buy(client, auth, sid, "dan", "k1")
    assert (status, body["error"]) == (410, "ended")
    r = await client.get("/api/orders/999-1", headers=auth("admin", "ops"))
    assert r.status == 404


async def test_cancel_returns_stock_once(client: TestClient, auth: Auth) -> None:
    sale = await make_sale(client, auth, quantity=1, limit=1)
    status, body = await buy(client, auth, sale["id"], "amy", "k")
    oid = body["order"]["id"]
    results = await asyncio.gather(
        *[
            client.post(f"/api/orders/{oid}/cancel", headers=auth("viewer", "amy"))
            for _ in range(10)
        ]
    )
    assert all(r.status == 200 for r in results)
    r = await client.get(f"/api/sales/{sale['id']}")
    assert (await r.json())["remaining"] == 1
    r = await client.post(f"/api/orders/{oid}/pay", headers=auth("viewer", "amy"))
    assert (r.status, (await r.json())["error"]) == (409, "order_state")
    # The buyer's limit is freed too: a new key buys again.
    status, body = await buy(client, auth, sale["id"], "amy", "k-again")
    assert status == 201


async def test_countdown_then_open(client: TestClient, auth: Auth) -> None:
    sale = await make_sale(client, auth, quantity=1, open_now=False)
    r = await client.post(
        f"/api/sales/{sale['id']}/open", json={"countdown_s": 1}, headers=auth("admin", "ops")
    )
    body = await r.json()
    assert body["state"] == "countdown" and body["starts_at_ms"] > body["server_time_ms"]
    status, err = await buy(client, auth, sale["id"], "amy", "early")
    assert (status, err["error"]) == (409, "not_open")
    await asyncio.sleep(1.1)
    status, _ = await buy(client, auth, sale["id"], "amy", "early")
    assert status == 201


async def test_unpaid_hold_expires_and_its_stock_returns(client: TestClient, auth: Auth) -> None:
    sale = await make_sale(client, auth, quantity=1, limit=1, hold_s=1)
    status, body = await buy(client, auth, sale["id"], "amy", "k")
    assert status == 201
    oid = body["order"]["id"]
    status, body = await buy(client, auth, sale["id"], "bob", "k")
    assert body["error"] == "sold_out"
    for _ in range(50):  # the background reaper sweeps every 0.1 s in tests
        await asyncio.sleep(0.1)
        r = await client.get(f"/api/orders/{oid}", headers=auth("viewer", "amy"))
        if (await r.json())["state"] == "expired":
            break
    assert (await r.json())["state"] == "expired"
    r = await client.post(f"/api/orders/{oid}/pay", headers=auth("viewer", "amy"))
    assert (r.status, (await r.json())["error"]) == (410, "expired")
    status, body = await buy(client, auth, sale["id"], "bob", "k2")
    assert status == 201 and body["remaining"] == 0
    r = await client.get(f"/api/sales/{sale['id']}/audit", headers=auth("admin", "ops"))
    report = await r.json()
    assert report["ok"] and report["figures"]["expired"] == 1, report


async def test_finished_sale_leaves_the_active_set(client: TestClient, auth: Auth) -> None:
    redis = client.app[REDIS]
    active = active_sales_key(client.app[SETTINGS].redis_prefix)
    sale = await make_sale(client, auth, quantity=2, limit=1)
    status, body = await buy(client, auth, sale["id"], "amy", "k")
    assert status == 201
    admin = auth("admin", "ops")
    await client.post(f"/api/sales/{sale['id']}/close", headers=admin)
    await asyncio.sleep(0.5)
    # Closed but a reservation is still held: the workers must keep watching it.
    assert await redis.sismember(active, sale["id"])
    r = await client.post(f"/api/orders/{body['order']['id']}/pay", headers=auth("viewer", "amy"))
    assert r.status == 200
    for _ in range(50):
        await asyncio.sleep(0.1)
        if not await redis.sismember(active, sale["id"]):
            break
    assert not await redis.sismember(active, sale["id"])
    meta = client.app[SALES].keys(sale["id"]).meta
    assert 0 < await redis.pttl(meta) <= 7 * 86_400_000  # kept a while, then SQL is the record
    r = await client.get(f"/api/sales/{sale['id']}/audit", headers=admin)
    report = await r.json()
    assert report["ok"] and report["figures"]["paid"] == 1, report


async def test_odd_input_gets_4xx_not_500(client: TestClient, auth: Auth) -> None:
    admin = auth("admin", "ops")
    r = await client.get("/api/sales/%C2%B2")  # a Unicode digit
    assert r.status == 404
    r = await client.post("/api/sales", json={"product_id": 2**70, "quantity": 1}, headers=admin)
    assert r.status == 404
    r = await client.post("/api/streams", json={"id": "s1", "host_id": "x" * 65}, headers=admin)
    assert r.status == 400
    r = await client.post("/api/streams", json={"id": "s1\n"}, headers=admin)
    assert r.status == 400
    created = await asyncio.gather(
        *[client.post("/api/streams", json={"id": "race"}, headers=admin) for _ in range(5)]
    )
    assert sorted(r.status for r in created) == [201, 409, 409, 409, 409]


async def test_a_body_arriving_in_pieces_is_read_whole(client: TestClient, auth: Auth) -> None:
    body = json.dumps({"name": "Scarf", "description": "x" * 3000, "price_cents": 5}).encode()
    head = (
        f"POST /api/products HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Authorization: {auth('admin', 'ops')['Authorization']}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection(client.host, client.port)
    writer.write(head + body[:1000])
    await writer.drain()
    await asyncio.sleep(0.2)  # the rest arrives in a later segment
    writer.write(body[1000:])
    await writer.drain()
    reply = await reader.read()
    writer.close()
    assert reply.startswith(b"HTTP/1.1 201"), reply[:300]


async def test_my_orders_lists_only_the_callers_orders_in_one_show(
    client: TestClient, auth: Auth
) -> None:
    r = await client.post("/api/streams", json={"id": "show1", "title": "Mugs"},
                          headers=auth("host", "hana"))  # fmt: skip
    assert r.status == 201, await r.text()
    sale = await make_sale(client, auth, quantity=5, limit=2, stream_id="show1")
    other = await make_sale(client, auth, quantity=5, limit=2)  # no stream: another show
    first = (await buy(client, auth, sale["id"], "amy", "k1"))[1]["order"]
    second = (await buy(client, auth, sale["id"], "amy", "k2"))[1]["order"]
    await buy(client, auth, sale["id"], "bob", "k1")
    await buy(client, auth, other["id"], "amy", "k1")
    r = await client.post(f"/api/orders/{first['id']}/pay", headers=auth("viewer", "amy"))
    assert r.status == 200

    async def listed() -> list[tuple[str, str]]:
        r = await client.get("/api/me/orders?stream_id=show1", headers=auth("viewer", "amy"))
        assert r.status == 200
        return [(o["id"], o["state"]) for o in (await r.json())["orders"]]

    # The persister writes orders to SQL asynchronously; the states come live from Redis.
    want = {(first["id"], "paid"), (second["id"], "reserved")}
    for _ in range(100):
        if set(await listed()) == want:
            break
        await asyncio.sleep(0.05)
    assert set(await listed()) == want

    r = await client.get("/api/me/orders?stream_id=show1")
    assert r.status == 401
    r = await client.get("/api/me/orders", headers=auth("viewer", "amy"))
    assert (r.status, (await r.json())["error"]) == (400, "bad_request")
    r = await client.get("/api/me/orders?stream_id=nope", headers=auth("viewer", "amy"))
    assert (await r.json()) == {"orders": []}
