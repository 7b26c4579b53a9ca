"""Product owners: only a product's host (or an admin) edits, prices, pins or sells it."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from inventory.catalog import Actor
from tests.flashsale.helpers import Auth, buy
from web.keys import CATALOG, SALES

Json = dict[str, Any]


async def call(
    client: TestClient, method: str, path: str, who: dict[str, str], body: Any = None
) -> tuple[int, Any]:
    """(status, JSON body) of one request."""
    r = await client.request(method, path, json=body, headers=who)
    return r.status, await r.json()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql_empty"], indirect=True)
async def test_the_owner_edits_others_cannot_and_orders_keep_their_price(
    client: TestClient, auth: Auth
) -> None:
    hana, hank, admin = auth("host", "hana"), auth("host", "hank"), auth("admin", "ops")
    status, hat = await call(client, "POST", "/api/products", hana,
                             {"name": "Hat", "price_cents": 1000})  # fmt: skip
    assert status == 201 and hat["owner_id"] == "hana"
    await call(client, "POST", "/api/products", hank, {"name": "Cap", "price_cents": 500})
    path = f"/api/products/{hat['id']}"

    # Another host, a viewer, nobody: refused, and the product is unchanged.
    status, body = await call(client, "PATCH", path, hank, {"price_cents": 1})
    assert (status, body["error"]) == (403, "forbidden")
    assert (await call(client, "PATCH", path, auth("viewer", "amy"), {"name": "x"}))[0] == 403
    assert (await call(client, "PATCH", path, {}, {"name": "x"}))[0] == 401
    assert (await call(client, "PATCH", "/api/products/999", hana, {"name": "x"}))[0] == 404
    # Validated as on create: nothing is written when any field is wrong, and the refusal names
    # the field at fault when there is one (a page shows it next to that input).
    for bad, at_fault in (({"member_price_cents": 1000}, "member_price_cents"),
                          ({"price_cents": -1}, "price_cents"), ({"name": " "}, "name"),
                          ({"image_url": "javascript:alert(1)"}, "image_url"),
                          ({"description": "x" * 5001}, "description"),
                          ({"currency": "EUR"}, None), ({}, None), ({"name": None}, "name"),
                          ({"price_cents": "9"}, "price_cents")):  # fmt: skip
        status, body = await call(client, "PATCH", path, hana, bad)
        assert (status, body["error"], body.get("field")) == (400, "bad_request", at_fault), bad
    cap = {"name": "Cap", "price_cents": 500, "member_price_cents": 500}
    status, body = await call(client, "POST", "/api/products", hana, cap)
    assert (status, body["field"]) == (400, "member_price_cents")
    assert body["message"] == "member_price_cents must be below price_cents"

    # A sale copies the price it sells at: a reserved order keeps it after an edit.
    sale_body = {"product_id": hat["id"], "quantity": 5}
    status, sale = await call(client, "POST", "/api/sales", hana, sale_body)
    assert status == 201 and sale["price_cents"] == 1000
    await call(client, "POST", f"/api/sales/{sale['id']}/open", hana)
    _, bought = await buy(client, auth, sale["id"], "amy", "k1")
    edit = {"name": "Red hat", "price_cents": 2000, "member_price_cents": 1500,
            "description": "Warm", "image_url": "/static/img/hat.png"}  # fmt: skip
    status, edited = await call(client, "PATCH", path, hana, edit)
    assert status == 200 and {k: edited[k] for k in edit} == edit
    _, order = await call(
        client, "GET", f"/api/orders/{bought['order']['id']}", auth("viewer", "amy")
    )
    assert order["unit_price_cents"] == 1000 and order["state"] == "reserved"
    _, later = await buy(client, auth, sale["id"], "bob", "k2")
    assert later["order"]["unit_price_cents"] == 1000  # the running sale's terms hold too
    status, sale2 = await call(client, "POST", "/api/sales", hana, sale_body)
    assert sale2["price_cents"] == 2000  # a new sale takes the new price

    # null clears the member price; an admin may edit any product.
    status, cleared = await call(client, "PATCH", path, admin, {"member_price_cents": None})
    assert status == 200 and cleared["member_price_cents"] is None and cleared["name"] == "Red hat"

    # mine=1: the caller's own products only (a token is needed); the plain list stays open.
    _, mine = await call(client, "GET", "/api/products?mine=1", hana)
    assert [p["name"] for p in mine["products"]] == ["Red hat"]
    _, theirs = await call(client, "GET", "/api/products?mine=1", hank)
    assert [p["name"] for p in theirs["products"]] == ["Cap"]
    assert (await call(client, "GET", "/api/products?mine=1", {}))[0] == 401
    _, everyone = await call(client, "GET", "/api/products", {})
    assert {p["name"] for p in everyone["products"]} == {"Red hat", "Cap"}


async def test_another_host_can_neither_pin_nor_sell_it(client: TestClient, auth: Auth) -> None:
    hana, hank, admin = auth("host", "hana"), auth("host", "hank"), auth("admin", "ops")
    catalog = client.app[CATALOG]
    await catalog.create_stream("hanas", "hana")
    await catalog.create_stream("hanks", "hank")
    _, hat = await call(client, "POST", "/api/products", hana, {"name": "Hat", "price_cents": 900})
    pid = hat["id"]

    # In his own show, hank may not pin, sell, auction or price hana's product.
    forbidden = [
        ("POST", "/api/streams/hanks/room/pin", {"product_id": pid}),
        ("POST", "/api/sales", {"product_id": pid, "quantity": 5, "stream_id": "hanks"}),
        ("POST", "/api/sales", {"product_id": pid, "quantity": 5}),
        ("POST", "/api/lots", {"product_id": pid, "start_cents": 100, "increment_cents": 10,
                               "stream_id": "hanks"}),
        ("PUT", f"/api/products/{pid}/commission", {"rate_bp": 500}),
    ]  # fmt: skip
    for method, path, body in forbidden:
        status, reply = await call(client, method, path, hank, body)
        assert (status, reply["error"]) == (403, "forbidden"), path
    # Nothing was made: hank's show has no sale or lot, no pin.
    assert await client.app[SALES].sales_for_stream("hanks") == []
    _, lots = await call(client, "GET", "/api/streams/hanks/lots", hank)
    assert lots["lots"] == []

    # A product from before owners (NULL) is an admin's: no host may pin or sell it.
    legacy = await catalog.create_product("Old lamp", 700)
    assert legacy.owner_id is None
    status, _ = await call(client, "POST", "/api/streams/hanas/room/pin", hana,
                           {"product_id": legacy.id})  # fmt: skip
    assert status == 403
    body = {"product_id": legacy.id, "quantity": 3, "stream_id": "hanas"}
    assert (await call(client, "POST", "/api/sales", hana, body))[0] == 403
    assert (await call(client, "POST", "/api/streams/hanas/room/pin", admin,
                       {"product_id": legacy.id}))[0] == 200  # fmt: skip

    # A sale hank made of it before owners existed: he still runs it, but adds nothing to it.
    old = await client.app[SALES].create_sale(legacy.id, 5, 1, Actor("hank", admin=True),
                                              stream_id="hanks")  # fmt: skip
    assert (await call(client, "POST", f"/api/sales/{old.id}/open", hank))[0] == 200
    for path, extra in (("group-offer", {"price_cents": 100, "size": 2}),
                        ("coupons", {"kind": "amount", "value": 10, "count": 5})):  # fmt: skip
        status, reply = await call(client, "POST", f"/api/sales/{old.id}/{path}", hank, extra)
        assert (status, reply["error"]) == (403, "forbidden"), path
    fresh = await client.app[SALES].create_sale(legacy.id, 5, 1, Actor("hank", admin=True),
                                                stream_id="hanks")  # fmt: skip
    status, reply = await call(client, "POST", f"/api/sales/{fresh.id}/draw", hank, {})
    assert (status, reply["error"]) == (403, "forbidden")

    # The owner does all of it in her own show.
    assert (await call(client, "POST", "/api/streams/hanas/room/pin", hana,
                       {"product_id": pid}))[0] == 200  # fmt: skip
    status, sale = await call(client, "POST", "/api/sales", hana,
                              {"product_id": pid, "quantity": 5, "stream_id": "hanas"})  # fmt: skip
    assert status == 201
    status, _ = await call(client, "POST", f"/api/sales/{sale['id']}/group-offer", hana,
                           {"price_cents": 500, "size": 2})  # fmt: skip
    assert status == 201
    assert (await call(client, "PUT", f"/api/products/{pid}/commission", hana,
                       {"rate_bp": 500}))[0] == 200  # fmt: skip
