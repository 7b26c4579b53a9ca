"""Rebuilding a sale from SQL after Redis lost it: real Redis and SQLite, keys deleted mid-sale."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
from collections import Counter

import pytest
from aiohttp.test_utils import TestClient
from sqlalchemy import update

from flashsale import errors
from flashsale.audit import audit_sale
from flashsale.coupons import CouponNotFound, Coupons
from flashsale.groupbuy import GroupBuys, NoGroupOffer
from flashsale.memberprice import MemberPrices
from flashsale.persister import Persister
from flashsale.reconciler import SEQ_GAP, Reconciler, SaleStatePresent
from flashsale.service import SaleService
from inventory.members import Members
from inventory.models import Sale
from tests.conftest import TEST_SECRET
from tests.flashsale.conftest import OPS, Core
from tests.flashsale.helpers import Auth, buy
from web.app import create_app
from web.settings import Settings


async def _wipe(core: Core, sale_id: int, keep: tuple[str, ...] = ()) -> int:
    """Delete the sale's keys (all under its hash tag), as a failover without them would."""
    doomed = [
        k
        async for k in core.redis.scan_iter(match=f"{core.prefix}:{{s{sale_id}}}:*")
        if not k.decode().endswith(keep)
    ]
    return int(await core.redis.delete(*doomed)) if doomed else 0


def _reconciler(core: Core) -> Reconciler:
    return Reconciler(core.redis, core.ledger, core.catalog, core.prefix)


def _number(order_id: str) -> int:
    return int(order_id.partition("-")[2])


async def test_sale_wiped_mid_rush_is_rebuilt_and_sells_out_exactly(core: Core) -> None:
    sale = await core.sale(quantity=300, limit=2)
    before = [await core.sales.buy(sale.id, f"a{i}", "k") for i in range(100)]
    for r in before[:20]:
        await core.sales.pay(r.order.id)
    for r in before[20:30]:
        await core.sales.cancel(r.order.id)
    await Persister(core.redis, core.ledger, core.prefix, consumer="p").drain(sale.id)
    told = await core.sales.phase(sale.id)  # rooms keep the transition numbers they published
    assert told is not None and told.number >= 1
    assert await _wipe(core, sale.id) >= 5
    with pytest.raises(errors.SaleNotFound):
        await core.sales.buy(sale.id, "early", "k")

    confirmed: list[str] = []
    users = itertools.count()
    refused = asyncio.Event()  # a buy found the sale missing: the rebuild runs mid-rush

    async def buyer() -> None:
        user = f"b{next(users)}"
        while True:
            try:
                confirmed.append((await core.sales.buy(sale.id, user, "k")).order.id)
                user = f"b{next(users)}"
            except errors.SaleNotFound:
                refused.set()  # the sale is being rebuilt: try again
                await asyncio.sleep(0.005)
            except errors.SoldOut:
                return

    rush = [asyncio.create_task(buyer()) for _ in range(8)]
    await asyncio.wait_for(refused.wait(), 30)
    rebuilt = await _reconciler(core).reconcile(sale.id)
    again = await core.sales.phase(sale.id, told.number)
    # Numbered past the lost ones, so a room that heard "opened" before hears it again.
    assert again is not None and again.transitions[0].phase == "opened"
    assert all(t.number > told.number for t in again.transitions)
    await asyncio.wait_for(asyncio.gather(*rush), 60)

    assert (rebuilt.remaining, rebuilt.reserved, rebuilt.paid) == (210, 70, 20)
    assert (rebuilt.orders, rebuilt.holds, rebuilt.buyers) == (100, 70, 90)
    assert len(confirmed) == 210  # sold out exactly: every unit once, none twice
    old = max(_number(r.order.id) for r in before)
    assert min(_number(o) for o in confirmed) > old + SEQ_GAP - 1  # no order id reused
    # The rebuilt holds, counts and orders behave as before the loss.
    assert (await core.sales.pay(before[30].order.id)).state == "paid"
    with pytest.raises(errors.OrderStateConflict):
        await core.sales.cancel(before[0].order.id)  # paid before the wipe
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
    assert report.ok, report.to_json()
    f = report.figures
    assert (f["remaining"], f["reserved"] + f["paid"], f["orders"]) == (0, 300, 310)
    assert f["sql_orders"] == 310 and f["cancelled"] == 10


async def test_a_surviving_stream_is_replayed_and_the_cli_refuses_live_state(
    core: Core, settings: Settings
) -> None:
    sale = await core.sale(quantity=50, limit=3)
    bought = [await core.sales.buy(sale.id, f"u{i % 10}", f"k{i}") for i in range(25)]
    await core.sales.pay(bought[0].order.id)
    # The persister never ran: these orders exist only in the stream that survived.
    assert await core.ledger.orders_for_sale(sale.id) == []
    assert await _wipe(core, sale.id, keep=(":events",)) >= 4
    env = {
        **os.environ,
        "LIVESELL_REDIS_URL": settings.redis_url,
        "LIVESELL_DATABASE_URL": settings.resolved_database_url(),
        "LIVESELL_REDIS_PREFIX": settings.redis_prefix,
        "LIVESELL_SECRET": TEST_SECRET,
        "LIVESELL_DATA_DIR": str(settings.data_dir),
    }
    cmd = [sys.executable, "-m", "web.cli", "reconcile", "--sale", str(sale.id)]
    done = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True)
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)
    assert body["rebuilt"] and (body["remaining"], body["orders"], body["paid"]) == (25, 25, 1)
    assert {o.id for o in await core.ledger.orders_for_sale(sale.id)} == {
        r.order.id for r in bought
    }
    # The per-user limit counts the replayed orders: u0 bought 3 (k0, k10, k20) already.
    with pytest.raises(errors.LimitReached):
        await core.sales.buy(sale.id, "u0", "again")
    # A retry of a buy the stream replayed is new to the rebuilt sale: judged within the limit.
    assert (await core.sales.buy(sale.id, "u9", "k9")).order.id != bought[9].order.id

    again = await asyncio.to_thread(subprocess.run, cmd, env=env, capture_output=True)
    assert again.returncode == 1 and json.loads(again.stdout)["error"] == "sale_state_present"
    with pytest.raises(SaleStatePresent):
        await _reconciler(core).reconcile(sale.id)
    forced = await _reconciler(core).reconcile(sale.id, force=True)
    assert forced.orders == 26 and forced.remaining == 24
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
    assert report.ok, report.to_json()


async def test_start_up_rebuilds_a_wiped_running_sale(
    aiohttp_client, core: Core, settings: Settings, auth: Auth
) -> None:  # type: ignore[no-untyped-def]
    sale = await core.sale(quantity=10, limit=1)
    idle = await core.sale(quantity=5, limit=1)  # intact: left alone
    for i in range(6):
        await core.sales.buy(sale.id, f"u{i}", "k")
    await core.sales.buy(idle.id, "z", "k")
    await Persister(core.redis, core.ledger, core.prefix, consumer="p").drain(sale.id)
    await _wipe(core, sale.id)
    await core.redis.delete(f"{core.prefix}:sales:active")  # a wiped instance lost it too
    seq_before = await core.redis.hget(core.sales.keys(idle.id).meta, "seq")

    client: TestClient = await aiohttp_client(create_app(settings))
    try:
        assert await core.redis.hget(core.sales.keys(idle.id).meta, "seq") == seq_before
        statuses = Counter([(await buy(client, auth, sale.id, f"v{i}", "k"))[0] for i in range(6)])
        assert statuses == {201: 4, 409: 2}
        r = await client.get(f"/api/sales/{sale.id}/audit", headers=auth("admin", "ops"))
        report = await r.json()
        assert r.status == 200 and report["ok"], report
        assert report["figures"]["reserved"] == 10 and report["figures"]["remaining"] == 0
        assert {sale.id, idle.id} <= set(await core.sales.active_sale_ids())
    finally:
        await client.close()


async def test_group_and_coupon_state_only_redis_held_is_not_rebuilt_and_the_audit_holds(
    core: Core,
) -> None:
    groups = GroupBuys(core.redis, core.sales, core.prefix)
    coupons = Coupons(core.redis, core.sales, core.prefix)
    try:
        sale = await core.sale(quantity=20, limit=2)
        await groups.offer(sale.id, 3000, 3, 60, OPS)
        member = await groups.open_group(sale.id, "ann", "g")  # an open group: one of three
        drop = await coupons.drop(sale.id, "amount", 500, 5, 600, by=OPS)
        await coupons.claim(drop.id, "bob")
        paid = (await core.sales.buy(sale.id, "bob", "k")).order
        await coupons.pay(paid.id, "bob", drop.id)
        await Persister(core.redis, core.ledger, core.prefix, consumer="p").drain(sale.id)
        await _wipe(core, sale.id)

        rebuilt = await _reconciler(core).reconcile(sale.id)
        assert (rebuilt.remaining, rebuilt.reserved, rebuilt.paid) == (18, 1, 1)
        # The group's member order is an ordinary hold now, due at the group's deadline.
        due = await core.redis.zscore(core.sales.keys(sale.id).holds, member.order.id)
        assert due == member.order.expires_at_ms == member.group.deadline_ms
        with pytest.raises(NoGroupOffer):  # offers and groups lived only in Redis
            await groups.open_group(sale.id, "cy", "g")
        with pytest.raises(CouponNotFound):
            await coupons.claim(drop.id, "cy")
        assert await core.ledger.redemption(paid.id) == (drop.id, 500)  # SQL kept this
        report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
        assert report.ok, report.to_json()
    finally:
        await groups.close()
        await coupons.close()


def _member_sales(core: Core) -> SaleService:
    """A sale service that charges members, as a process started at this point would build it."""
    prices = MemberPrices(Members(core.db), core.ledger, core.catalog, core.redis, core.prefix)
    return SaleService(core.redis, core.ledger, core.catalog, core.prefix, member_prices=prices)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_rebuilt_sale_charges_members_its_own_member_price_not_the_products(
    core: Core,
) -> None:
    await core.catalog.create_stream("show-kept-mprice", "hana")
    await Members(core.db).join("hana", "amy")
    lamp = await core.catalog.create_product("Lamp", 4500, member_price_cents=3900)
    vase = await core.catalog.create_product("Vase", 4500)  # no member price when sold
    before = _member_sales(core)
    try:
        sold = []
        for product in (lamp, vase, vase):
            sale = await before.create_sale(product.id, 10, 2, OPS, stream_id="show-kept-mprice")
            sold.append((await before.open_sale(sale.id)).id)
        assert (await before.buy(sold[0], "amy", "k1")).order.unit_price_cents == 3900
    finally:
        await before.close()
    # The third sale is as one made before SQL kept a sale's member price (migration 0013).
    async with core.db.transaction() as s:
        await s.execute(update(Sale).where(Sale.id == sold[2]).values(member_price_cents=None))
    # Mid-sale, the owner changes then clears the lamp's member price and gives the vase one.
    await core.catalog.update_product(lamp.id, OPS, {"member_price_cents": 3000})
    await core.catalog.update_product(lamp.id, OPS, {"member_price_cents": None})
    await core.catalog.update_product(vase.id, OPS, {"member_price_cents": 2000})
    for sale_id in sold:
        await Persister(core.redis, core.ledger, core.prefix, consumer="p").drain(sale_id)
        assert await _wipe(core, sale_id) >= 1
        await _reconciler(core).reconcile(sale_id)

    after = _member_sales(core)
    try:
        amy = [(await after.buy(sale_id, "amy", "k2")).order.unit_price_cents for sale_id in sold]
        bob = (await after.buy(sold[0], "bob", "k1")).order.unit_price_cents
    finally:
        await after.close()
    # Each sale as it was made; the old row falls back to the product's member price of now.
    assert amy == [3900, 4500, 2000] and bob == 4500
    for sale_id in sold:
        report = await audit_sale(core.redis, core.ledger, core.prefix, sale_id)
        assert report.ok, report.to_json()
