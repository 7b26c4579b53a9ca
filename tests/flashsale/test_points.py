"""Members and points on real SQL and Redis: a ledger that never goes negative."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from flashsale.errors import HoldExpired
from flashsale.groupbuy import GroupBuys
from flashsale.keys import SaleKeys
from flashsale.persister import Persister
from flashsale.points import PointsCheckout, points_accrual
from flashsale.reaper import Reaper
from flashsale.view import SaleView
from inventory.errors import DomainError
from inventory.ledger import Ledger
from inventory.members import InsufficientPoints, Members, NotAMember
from inventory.models import PointsEntry
from tests.flashsale.conftest import OPS, Core


async def show_sale(core: Core, quantity: int = 10, hold_s: int = 300) -> SaleView:
    """An open sale of 45.00 lamps in hana's show."""
    await core.catalog.create_stream("show1", "hana")
    product = await core.catalog.create_product("Lamp", 4500)
    sale = await core.sales.create_sale(product.id, quantity, 5, OPS, hold_s=hold_s,
                                        stream_id="show1")  # fmt: skip
    return await core.sales.open_sale(sale.id)


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_concurrent_spends_never_take_points_below_zero(core: Core) -> None:
    members = Members(core.db)
    await members.join("hana", "amy")
    assert await members.credit("hana", "amy", 100, "gift", "welcome")
    assert not await members.credit("hana", "amy", 100, "gift", "welcome")  # once per ref

    async def spend(n: int) -> int | str:
        try:
            return await members.spend("hana", "amy", 30, ref=f"order-{n}")
        except DomainError as exc:
            return exc.code

    results = await asyncio.gather(*[spend(n) for n in range(50)])
    assert sorted(r for r in results if isinstance(r, int)) == [10, 40, 70]
    assert results.count("insufficient_points") == 47
    got = await members.membership("hana", "amy")
    assert got is not None and got.balance == 10
    winner = next(n for n, r in enumerate(results) if isinstance(r, int))
    assert await members.spend("hana", "amy", 30, ref=f"order-{winner}") == 10  # a replay
    with pytest.raises(InsufficientPoints):
        await members.spend("hana", "amy", 11, ref="order-x")
    with pytest.raises(NotAMember):
        await members.spend("hana", "bob", 1, ref="order-y")


async def test_members_earn_on_paid_orders_and_spend_at_checkout(core: Core) -> None:
    members = Members(core.db)
    checkout = PointsCheckout(core.sales, core.catalog, members)
    sale = await show_sale(core, hold_s=1)
    await members.join("hana", "amy")
    first = (await core.sales.buy(sale.id, "amy", "a", qty=2)).order
    await core.sales.pay(first.id, "amy")
    stranger = (await core.sales.buy(sale.id, "bob", "b")).order
    await core.sales.pay(stranger.id, "bob")
    await Persister(core.redis, core.ledger, core.prefix, consumer="t").drain(sale.id)
    accrual = points_accrual(members)
    assert await accrual.sweep() == 1  # bob is no member; amy's 90.00 earn 90 points
    assert await accrual.sweep() == 0
    amy = await members.membership("hana", "amy")
    assert amy is not None and amy.balance == 90

    second = (await core.sales.buy(sale.id, "amy", "c")).order
    paid = await checkout.pay(second.id, "amy", 50)
    assert paid.order.state == "paid" and paid.to_json()["charged_cents"] == 4450
    assert paid.balance == 40
    with pytest.raises(DomainError):
        await checkout.pay(second.id, "amy", 10)  # already paid

    late = (await core.sales.buy(sale.id, "amy", "d")).order
    await asyncio.sleep(1.1)
    with pytest.raises(HoldExpired):
        await checkout.pay(late.id, "amy", 40)
    amy = await members.membership("hana", "amy")
    assert amy is not None and amy.balance == 40  # the refused payment's points came back


async def lines_of(core: Core, user_id: str) -> dict[tuple[str, str], int]:
    """A member's ledger lines of hana's store: (reason, ref) -> delta."""
    async with core.db.session() as s:
        rows = await s.execute(
            select(PointsEntry.reason, PointsEntry.ref, PointsEntry.delta).where(
                PointsEntry.host_id == "hana", PointsEntry.user_id == user_id
            )
        )
        return {(reason, ref): delta for reason, ref, delta in rows.tuples()}


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql_empty"], indirect=True)
async def test_a_refunded_group_order_gives_points_back_and_takes_its_points_once(
    core: Core,
) -> None:
    members = Members(core.db)
    checkout = PointsCheckout(core.sales, core.catalog, members)
    groups = GroupBuys(core.redis, core.sales, core.prefix)
    persister = Persister(core.redis, core.ledger, core.prefix, consumer="t")
    sale = await show_sale(core, hold_s=1)
    await groups.offer(sale.id, 3000, size=3, ttl_s=1, by=OPS)
    for user, gift in (("amy", 100), ("bob", 5)):
        await members.join("hana", user)
        await members.credit("hana", user, gift, "gift", "welcome")
    # amy opens a group and pays 20 of its 30.00 with points; bob joins and pays in full.
    opened = await groups.open_group(sale.id, "amy", "k1")
    mine = opened.order
    await checkout.pay(mine.id, "amy", 20)
    theirs = (await groups.join_group(opened.group.id, "bob")).order
    await core.sales.pay(theirs.id, "bob")
    # A crash between a spend and its pay: bob's order is never paid and its hold runs out.
    stuck = (await core.sales.buy(sale.id, "bob", "s")).order
    await members.spend("hana", "bob", 5, ref=stuck.id)
    await persister.drain(sale.id)
    accrual = points_accrual(members)
    assert await accrual.sweep() == 2  # 30 points each for the two paid group orders
    assert await members.spend("hana", "amy", 110, ref="elsewhere") == 0  # amy spends it all
    await asyncio.sleep(1.1)
    assert await groups.expire_due(sale.id) == 1
    await Reaper(core.sales).sweep()  # the stuck order's hold runs out
    await persister.drain(sale.id)
    refunded = await core.ledger.get_order(mine.id)
    assert refunded is not None and refunded.state == "refund"

    # Three processes sweep at once: each line is undone exactly once.
    done = await asyncio.gather(*[points_accrual(members).sweep() for _ in range(3)])
    assert sum(done) == 4
    amy, bob = await lines_of(core, "amy"), await lines_of(core, "bob")
    # amy's 20 come back; her order earned 30 but she has only those 20: the reversal takes
    # 20 and stops at zero (the other 10 were spent and stay spent).
    assert amy[("unspend", mine.id)] == 20 and amy[("refund", mine.id)] == -20
    assert bob[("unspend", stuck.id)] == 5 and bob[("refund", theirs.id)] == -30
    assert ("unspend", theirs.id) not in bob  # nothing was spent on it

    # A replayed persister batch (the same events committed again) undoes nothing twice.
    stream = SaleKeys.of(core.prefix, sale.id).events
    await persister.commit(sale.id, await core.redis.xrange(stream))
    assert await accrual.sweep() == 0
    assert await lines_of(core, "amy") == amy and await lines_of(core, "bob") == bob
    balances = [await members.membership("hana", u) for u in ("amy", "bob")]
    assert [b.balance for b in balances if b is not None] == [0, 5]
    await groups.close()


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql_empty"], indirect=True)
async def test_the_persister_settles_points_as_it_writes_orders(core: Core) -> None:
    members = Members(core.db)
    persister = Persister(core.redis, Ledger(core.db, hooks=(members,)), core.prefix, "t")
    groups = GroupBuys(core.redis, core.sales, core.prefix)
    sale = await show_sale(core, hold_s=1)
    await groups.offer(sale.id, 3000, size=3, ttl_s=1, by=OPS)
    for user in ("amy", "bob"):
        await members.join("hana", user)
    mine = (await groups.open_group(sale.id, "amy", "k1")).order
    await core.sales.pay(mine.id, "amy")
    stuck = (await core.sales.buy(sale.id, "bob", "s")).order
    await members.credit("hana", "bob", 5, "gift", "welcome")
    await members.spend("hana", "bob", 5, ref=stuck.id)  # then the checkout "crashes"
    await persister.drain(sale.id)
    # No sweep ran: writing amy's paid order credited it.
    assert await lines_of(core, "amy") == {("order", mine.id): 30}
    await asyncio.sleep(1.1)
    assert await groups.expire_due(sale.id) == 1  # the group fails: amy's order is refunded
    await Reaper(core.sales).sweep()  # bob's hold runs out
    await persister.drain(sale.id)
    assert await lines_of(core, "amy") == {("order", mine.id): 30, ("refund", mine.id): -30}
    assert (await lines_of(core, "bob"))[("unspend", stuck.id)] == 5
    assert await points_accrual(members).sweep() == 0  # nothing left for the catch-up
