"""Member prices over the full app (real Redis and SQLite): members reserve at the member price."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from flashsale.memberprice import MemberPrices
from inventory.members import Members
from tests.flashsale.conftest import OPS, Core
from tests.flashsale.helpers import Auth, buy


async def test_a_member_reserves_at_the_member_price_and_a_non_member_does_not(
    client: TestClient, auth: Auth
) -> None:
    admin, hana = auth("admin", "ops"), auth("host", "hana")
    r = await client.post("/api/streams", json={"id": "show1"}, headers=hana)
    assert r.status == 201
    bad = {"name": "Lamp", "price_cents": 4500, "member_price_cents": 4500}
    r = await client.post("/api/products", json=bad, headers=hana)
    assert r.status == 400 and (await r.json())["error"] == "bad_request", await r.text()
    body = {"name": "Lamp", "price_cents": 4500, "member_price_cents": 3900}
    r = await client.post("/api/products", json=body, headers=hana)
    product = await r.json()
    assert r.status == 201 and product["member_price_cents"] == 3900, product
    listed = (await (await client.get("/api/products")).json())["products"]
    assert [p["member_price_cents"] for p in listed] == [3900]
    body = {"product_id": product["id"], "quantity": 5, "per_user_limit": 2, "stream_id": "show1"}
    sale = await (await client.post("/api/sales", json=body, headers=admin)).json()
    sid = sale["id"]
    assert (await client.post(f"/api/sales/{sid}/open", headers=admin)).status == 200

    status, got = await buy(client, auth, sid, "bob", "b1")
    assert status == 201 and got["order"]["unit_price_cents"] == 4500  # bob is no member
    r = await client.post("/api/stores/hana/join", headers=auth("viewer", "amy"))
    assert r.status == 201
    status, got = await buy(client, auth, sid, "amy", "a1")
    assert status == 201 and got["order"]["unit_price_cents"] == 3900, got
    status, again = await buy(client, auth, sid, "amy", "a1")  # a retry keeps its price
    assert again["order"] == got["order"]
    r = await client.post("/api/stores/hana/join", headers=auth("viewer", "bob"))
    status, got = await buy(client, auth, sid, "bob", "b2")
    assert status == 201 and got["order"]["unit_price_cents"] == 3900, got  # joined: at once

    r = await client.get(f"/api/sales/{sid}/audit", headers=admin)
    report = await r.json()
    assert r.status == 200 and report["ok"], report


async def test_the_sale_keeps_its_member_price_when_the_product_loses_its_own(
    client: TestClient, auth: Auth
) -> None:
    """A process that first looks after the owner edited the product decides like the others."""
    from web.keys import CATALOG, LEDGER, MEMBER_PRICES, MEMBERS, REDIS, SETTINGS

    admin, hana, amy = auth("admin", "ops"), auth("host", "hana"), auth("viewer", "amy")
    assert (await client.post("/api/streams", json={"id": "show2"}, headers=hana)).status == 201
    body = {"name": "Vase", "price_cents": 4500, "member_price_cents": 3900}
    product = await (await client.post("/api/products", json=body, headers=hana)).json()
    body = {"product_id": product["id"], "quantity": 5, "per_user_limit": 2, "stream_id": "show2"}
    sale = await (await client.post("/api/sales", json=body, headers=hana)).json()
    sid = sale["id"]
    assert (await client.post(f"/api/sales/{sid}/open", headers=admin)).status == 200
    assert (await client.post("/api/stores/hana/join", headers=amy)).status == 201
    r = await client.patch(
        f"/api/products/{product['id']}", json={"member_price_cents": None}, headers=hana
    )
    assert r.status == 200 and (await r.json())["member_price_cents"] is None
    app = client.app
    # As a server process started after the edit would build it (nothing cached yet).
    later = MemberPrices(
        app[MEMBERS], app[LEDGER], app[CATALOG], app[REDIS], app[SETTINGS].redis_prefix
    )
    assert await later.applies(sid, "amy")
    assert await app[MEMBER_PRICES].applies(sid, "amy")
    status, got = await buy(client, auth, sid, "amy", "v1")
    assert status == 201 and got["order"]["unit_price_cents"] == 3900, got


class CountingMembers(Members):
    """Members that count the SQL reads made to decide prices."""

    reads = 0

    async def joined_since(self, host_id: str, since_ms: int, limit: int) -> list[tuple[str, int]]:
        """Count, then read."""
        self.reads += 1
        return await super().joined_since(host_id, since_ms, limit)


async def test_a_rush_of_buyers_reads_the_store_once_and_joins_elsewhere_count_soon(
    core: Core,
) -> None:
    await core.catalog.create_stream("show1", "hana")
    product = await core.catalog.create_product("Lamp", 4500, member_price_cents=3900)
    sale = await core.sales.create_sale(product.id, 5, 1, OPS, stream_id="show1")
    members = CountingMembers(core.db)
    await members.join("hana", "amy")
    prices = MemberPrices(
        members, core.ledger, core.catalog, core.redis, core.prefix, negative_ttl_s=0.5
    )
    users = ["amy", *(f"u{i}" for i in range(300))]
    got = await asyncio.gather(*[prices.applies(sale.id, u) for u in users])
    assert got == [True] + [False] * 300 and members.reads == 1  # one read for the whole rush
    # bob joins through another process (not this one's joined()): he counts within the TTL.
    await members.join("hana", "bob")
    assert not await prices.applies(sale.id, "bob")
    await asyncio.sleep(0.55)
    assert await prices.applies(sale.id, "bob") and members.reads == 2
    prices.joined("hana", "cy")  # a join made in this process counts at once
    assert await prices.applies(sale.id, "cy")
    await prices.close()
