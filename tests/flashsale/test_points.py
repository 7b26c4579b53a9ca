"""Members and points on real SQL and Redis: a ledger that never goes negative."""

from __future__ import annotations

import asyncio

import pytest

from flashsale.errors import HoldExpired
from flashsale.persister import Persister
from flashsale.points import PointsCheckout, points_accrual
from flashsale.view import SaleView
from inventory.errors import DomainError
from inventory.members import InsufficientPoints, Members, NotAMember
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
