"""Share-link attribution on real SQL: last touch, once per order, commissions, leaderboards."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp.test_utils import TestClient

from flashsale.persister import Persister
from inventory.attribution import Attribution
from inventory.ledger import Ledger
from tests.flashsale.conftest import OPS, Core
from tests.flashsale.helpers import Auth, make_sale


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_orders_go_to_the_last_promoter_within_the_window(core: Core) -> None:
    attribution = Attribution(core.db, window_ms=60_000)
    await core.catalog.create_stream("show1", "hana")
    product = await core.catalog.create_product("Lamp", 4500)
    await attribution.set_commission(product.id, 1000, OPS)  # 10%
    sale = await core.sales.create_sale(product.id, 20, 5, OPS, stream_id="show1")
    await core.sales.open_sale(sale.id)
    assert not await attribution.touch("pat", "show1", "pat")  # no self-referral
    await attribution.touch("amy", "show1", "pat")
    await attribution.touch("bob", "show1", "pat")
    await attribution.touch("bob", "show1", "quinn")  # last touch wins
    orders = {}
    for user in ("amy", "bob", "cy"):
        orders[user] = (await core.sales.buy(sale.id, user, "k", qty=2)).order
        await core.sales.pay(orders[user].id, user)
    unpaid = (await core.sales.buy(sale.id, "amy", "k2")).order
    await Persister(core.redis, core.ledger, core.prefix, consumer="t").drain(sale.id)
    assert await attribution.attribute_orders() == 4
    assert await attribution.attribute_orders() == 0  # each order exactly once
    assert await attribution.promoter_of(orders["amy"].id) == "pat"
    assert await attribution.promoter_of(orders["bob"].id) == "quinn"
    assert await attribution.promoter_of(orders["cy"].id) == ""
    board = {p.promoter_id: p for p in await attribution.leaderboard(stream_id="show1")}
    assert board["pat"].orders == 1 and board["pat"].paid_cents == 9000  # unpaid not counted
    assert board["pat"].commission_cents == 900 and board["pat"].visits == 1
    assert board["quinn"].orders == 1 and board["quinn"].visits == 1
    assert await attribution.promoter_of(unpaid.id) == "pat"


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_the_persister_attributes_orders_as_it_writes_them(core: Core) -> None:
    attribution = Attribution(core.db, window_ms=60_000)
    ledger = Ledger(core.db, hooks=(attribution,))
    await core.catalog.create_stream("show-hooked", "hana")
    product = await core.catalog.create_product("Lamp", 4500)
    await attribution.set_commission(product.id, 1000, OPS)
    sale = await core.sales.create_sale(product.id, 20, 5, OPS, stream_id="show-hooked")
    off_stream = await core.sales.create_sale(product.id, 20, 5, OPS)
    for s in (sale, off_stream):
        await core.sales.open_sale(s.id)
    await attribution.touch("amy", "show-hooked", "pat")
    amy = (await core.sales.buy(sale.id, "amy", "k")).order
    cy = (await core.sales.buy(sale.id, "cy", "k")).order
    elsewhere = (await core.sales.buy(off_stream.id, "amy", "k")).order
    persister = Persister(core.redis, ledger, core.prefix, consumer="t")
    for s in (sale, off_stream):
        await persister.drain(s.id)
    # No sweep ran: the write itself attributed the show's orders, and only those.
    assert await attribution.promoter_of(amy.id) == "pat"
    assert await attribution.promoter_of(cy.id) == ""
    assert await attribution.promoter_of(elsewhere.id) is None
    await attribution.touch("amy", "show-hooked", "quinn")
    await core.sales.pay(amy.id, "amy")  # written again (paid): its attribution stays
    await persister.drain(sale.id)
    assert (await ledger.get_order(amy.id)).state == "paid"  # type: ignore[union-attr]
    assert await attribution.promoter_of(amy.id) == "pat"
    assert await attribution.attribute_orders() == 0  # nothing left for the catch-up
    board = {p.promoter_id: p for p in await attribution.leaderboard(stream_id="show-hooked")}
    assert board["pat"].orders == 1 and board["pat"].commission_cents == 450


async def test_a_touch_outside_the_window_credits_nobody(core: Core) -> None:
    attribution = Attribution(core.db, window_ms=20)
    await core.catalog.create_stream("show1", "hana")
    product = await core.catalog.create_product("Lamp", 4500)
    sale = await core.sales.create_sale(product.id, 5, 1, OPS, stream_id="show1")
    await core.sales.open_sale(sale.id)
    await attribution.touch("amy", "show1", "pat")
    await asyncio.sleep(0.2)
    order = (await core.sales.buy(sale.id, "amy", "k")).order
    await Persister(core.redis, core.ledger, core.prefix, consumer="t").drain(sale.id)
    await attribution.attribute_orders()
    assert await attribution.promoter_of(order.id) == ""


async def test_attribution_follows_the_viewer_to_a_second_device(
    client: TestClient, auth: Auth
) -> None:
    r = await client.post("/api/streams", json={"id": "show3"}, headers=auth("host", "hana"))
    assert r.status == 201
    r = await client.get("/api/streams/show3/share-link", headers=auth("viewer", "pat"))
    assert (await r.json())["path"] == "/live/show3?ref=pat"
    phone, laptop = auth("viewer", "amy", "Amy"), auth("viewer", "amy", "Amy on a laptop")
    assert phone != laptop  # two tokens, as two devices would have
    r = await client.post("/api/streams/show3/touch", json={"ref": "pat"}, headers=phone)
    assert r.status == 200 and (await r.json())["counted"] is True
    r = await client.post("/api/streams/show3/touch", json={"ref": "no|pe"}, headers=phone)
    assert r.status == 400
    sale = await make_sale(client, auth, quantity=5, stream_id="show3")
    r = await client.put(f"/api/products/{sale['product_id']}/commission",
                         json={"rate_bp": 500}, headers=auth("admin", "ops"))  # fmt: skip
    assert r.status == 200
    r = await client.post(
        f"/api/sales/{sale['id']}/buy", headers={**laptop, "Idempotency-Key": "k"}
    )
    order = (await r.json())["order"]
    r = await client.post(f"/api/orders/{order['id']}/pay", headers=laptop)
    assert r.status == 200
    board: list[dict[str, object]] = []
    for _ in range(50):  # the persister writes the order and attributes it
        r = await client.get("/api/streams/show3/promoters", headers=auth("host", "hana"))
        board = (await r.json())["promoters"]
        if board and board[0]["orders"] == 1:
            break
        await asyncio.sleep(0.1)
    assert board[0] == {"promoter_id": "pat", "visits": 1, "orders": 1, "paid_cents": 1999,
                        "commission_cents": 99}  # fmt: skip
    r = await client.get("/api/streams/show3/promoters", headers=auth("host", "other"))
    assert r.status == 403
    r = await client.get("/api/promoters/me", headers=auth("viewer", "pat"))
    assert (await r.json())["commission_cents"] == 99
