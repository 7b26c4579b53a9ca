"""Coupon drops on real Redis: first come first served, one per user, used once at pay."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from flashsale.audit import audit_sale
from flashsale.coupons import (
    BelowMinimumSpend,
    CouponExpired,
    CouponNotClaimed,
    CouponNotFound,
    Coupons,
    CouponsGone,
    CouponUsed,
)
from flashsale.errors import BadSaleInput, HoldExpired, OrderNotFound, OrderStateConflict
from inventory.errors import DomainError
from tests.flashsale.conftest import OPS, Core


@pytest.fixture
async def coupons(core: Core) -> AsyncIterator[Coupons]:
    """Coupon drops over the core's sale service."""
    coupons = Coupons(core.redis, core.sales, core.prefix)
    yield coupons
    await coupons.close()


async def test_a_drop_of_100_to_3000_claimers_gives_exactly_100_one_per_user(
    core: Core, coupons: Coupons
) -> None:
    sale = await core.sale(quantity=10)
    drop = await coupons.drop(sale.id, "amount", 500, count=100, expires_s=60, by=OPS)
    # 3,000 claims: 2,000 users, a thousand of whom tap twice at once.
    users = [f"u{n % 2000}" for n in range(3000)]
    outcomes: Counter[str] = Counter()
    winners: Counter[str] = Counter()

    async def claim(user: str) -> None:
        try:
            got = await coupons.claim(drop.id, user)
        except DomainError as exc:
            outcomes[exc.code] += 1
            return
        outcomes["replay" if got.duplicate else "claimed"] += 1
        if not got.duplicate:
            winners[user] += 1

    await asyncio.gather(*[claim(u) for u in users])
    assert outcomes["claimed"] == 100, outcomes
    assert set(outcomes) <= {"claimed", "replay", "coupons_gone"}, outcomes
    assert max(winners.values()) == 1 and len(winners) == 100
    assert (await coupons.get_drop(drop.id)).left == 0
    with pytest.raises(CouponsGone):
        await coupons.claim(drop.id, "latecomer")
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
    assert report.ok and report.checks["coupons_accounted"], report.to_json()
    assert report.figures["coupons_claimed"] == 100


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_coupon_discounts_one_reserved_order_once(core: Core, coupons: Coupons) -> None:
    sale = await core.sale(quantity=10, limit=3)  # 45.00 each
    off = await coupons.drop(sale.id, "amount", 1000, count=5, expires_s=60, by=OPS)
    pct = await coupons.drop(
        sale.id, "percent", 15, count=5, expires_s=60, min_spend_cents=9000, by=OPS
    )
    first = (await core.sales.buy(sale.id, "amy", "a")).order
    second = (await core.sales.buy(sale.id, "amy", "b", qty=2)).order
    with pytest.raises(CouponNotClaimed):
        await coupons.pay(first.id, "amy", off.id)
    await coupons.claim(off.id, "amy")
    assert (await coupons.claim(off.id, "amy")).duplicate
    with pytest.raises(OrderNotFound):  # someone else's order reads as missing
        await coupons.pay(first.id, "bob", off.id)
    paid = await coupons.pay(first.id, "amy", off.id)
    assert paid.discount_cents == 1000 and paid.to_json()["charged_cents"] == 3500
    assert paid.order.state == "paid"
    assert (await coupons.pay(first.id, "amy", off.id)) == paid  # a retry replays
    with pytest.raises(CouponUsed):
        await coupons.pay(second.id, "amy", off.id)
    with pytest.raises(OrderStateConflict):
        await coupons.pay(first.id, "amy", pct.id)
    await coupons.claim(pct.id, "amy")
    assert (await coupons.pay(second.id, "amy", pct.id)).discount_cents == 1350  # 15% of 90.00
    assert await coupons.redemption(first.id) == (off.id, 1000)
    # The orders were paid by the same atomic step: stock and counters still add up.
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
    assert report.ok, report.to_json()
    assert report.figures["paid"] == 3 and report.figures["coupons_used"] == 2
    # The audit drained the events into SQL: the discount is recorded with the order.
    assert await core.ledger.redemption(first.id) == (off.id, 1000)
    assert await core.ledger.redemption(second.id) == (pct.id, 1350)


async def test_coupon_terms_are_enforced(core: Core, coupons: Coupons) -> None:
    sale = await core.sale(quantity=10, limit=2, hold_s=1)
    big = await coupons.drop(
        sale.id, "amount", 100, count=5, expires_s=60, min_spend_cents=5000, by=OPS
    )
    soon = await coupons.drop(sale.id, "amount", 100, count=5, expires_s=1, by=OPS)
    order = (await core.sales.buy(sale.id, "amy", "a")).order
    await coupons.claim(big.id, "amy")
    with pytest.raises(BelowMinimumSpend):
        await coupons.pay(order.id, "amy", big.id)
    await coupons.claim(soon.id, "amy")
    await asyncio.sleep(1.1)
    with pytest.raises(CouponExpired):
        await coupons.claim(soon.id, "bob")
    with pytest.raises(HoldExpired):  # the hold ran out first: the order expires, as on pay
        await coupons.pay(order.id, "amy", soon.id)
    assert (await core.sales.get_order(order.id)).state == "expired"
    fresh = (await core.sales.buy(sale.id, "amy", "b")).order
    with pytest.raises(CouponExpired):
        await coupons.pay(fresh.id, "amy", soon.id)
    other = await core.sale(quantity=1)
    with pytest.raises(CouponNotFound):  # a drop applies to its own sale's orders only
        await coupons.pay(fresh.id, "amy", f"{other.id}-c1")
    with pytest.raises(BadSaleInput):
        await coupons.drop(sale.id, "percent", 101, count=1, expires_s=60, by=OPS)


async def test_one_coupon_raced_onto_two_orders_is_used_once(core: Core, coupons: Coupons) -> None:
    sale = await core.sale(quantity=50, limit=50)
    drop = await coupons.drop(sale.id, "percent", 50, count=1, expires_s=60, by=OPS)
    await coupons.claim(drop.id, "amy")
    orders = [(await core.sales.buy(sale.id, "amy", f"k{n}")).order for n in range(20)]
    results = await asyncio.gather(
        *[coupons.pay(o.id, "amy", drop.id) for o in orders], return_exceptions=True
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    assert len(ok) == 1 and ok[0].discount_cents == 2250
    assert {type(r) for r in results if isinstance(r, BaseException)} == {CouponUsed}
