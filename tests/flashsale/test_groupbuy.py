"""Group buys on real Redis and SQL: groups fill whole or release everything, once."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from flashsale.audit import audit_sale
from flashsale.errors import LimitReached, SoldOut
from flashsale.group import sale_id_of_group
from flashsale.groupbuy import (
    GroupBuys,
    GroupExpired,
    GroupFull,
    LeftGroup,
    NoGroupOffer,
)
from flashsale.groupreaper import GroupReaper
from flashsale.persister import Persister
from flashsale.reaper import Reaper
from flashsale.view import SaleView
from inventory.errors import DomainError
from tests.flashsale.conftest import OPS, Core


@pytest.fixture
async def groups(core: Core) -> AsyncIterator[GroupBuys]:
    """Group buys over the core's sale service."""
    groups = GroupBuys(core.redis, core.sales, core.prefix)
    yield groups
    await groups.close()


@pytest.fixture
async def workers(core: Core, groups: GroupBuys) -> AsyncIterator[None]:
    """The background workers a server runs: both reapers and the persister."""
    reaper, greaper = Reaper(core.sales, 0.05), GroupReaper(groups, 0.05)
    persister = Persister(core.redis, core.ledger, core.prefix, interval_s=0.02)
    for w in (reaper, greaper, persister):
        w.start()
    yield
    for w in (reaper, greaper, persister):
        await w.close()


async def offered(core: Core, groups: GroupBuys, quantity: int, size: int = 3, ttl_s: int = 60,
                  limit: int = 1) -> SaleView:  # fmt: skip
    """An open sale with a group offer at 30.00."""
    sale = await core.sale(quantity=quantity, limit=limit)
    await groups.offer(sale.id, 3000, size, ttl_s, OPS)
    return sale


async def audit_ok(core: Core, sale_id: int) -> dict[str, object]:
    """Run the audit; fail with its problems unless every check holds."""
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale_id)
    assert report.ok, report.to_json()
    return report.figures


async def test_a_group_fills_into_orders_at_the_group_price(core: Core, groups: GroupBuys) -> None:
    sale = await offered(core, groups, quantity=10)
    opened = await groups.open_group(sale.id, "amy", "k1")
    gid = opened.group.id
    assert sale_id_of_group(gid) == sale.id and opened.group.state == "open"
    assert opened.order.unit_price_cents == 3000 and opened.order.state == "reserved"
    # The opener's retry replays; a second join by the same user replays too.
    assert (await groups.open_group(sale.id, "amy", "k1")).order.id == opened.order.id
    await groups.join_group(gid, "bob")
    again = await groups.join_group(gid, "bob")
    assert again.duplicate and len(again.group.members) == 2
    last = await groups.join_group(gid, "cy")
    assert last.group.state == "filled" and len(last.group.members) == 3
    with pytest.raises(GroupFull):
        await groups.join_group(gid, "dan")
    orders = [await core.sales.get_order(o) for _, o in last.group.members]
    assert {o.state for o in orders} == {"reserved"}
    # Filling starts every member's payment hold (300 s) from the fill.
    assert all(o.expires_at_ms >= last.order.created_at_ms + 299_000 for o in orders)
    assert last.remaining == 7
    await core.sales.pay(orders[0].id, "amy")
    figures = await audit_ok(core, sale.id)
    assert figures["groups_filled"] == 1 and figures["paid"] == 1 and figures["reserved"] == 2


async def test_an_expired_group_releases_units_once_and_owes_refunds(
    core: Core, groups: GroupBuys, workers: None
) -> None:
    sale = await offered(core, groups, quantity=5, ttl_s=1)
    opened = await groups.open_group(sale.id, "amy", "k1")
    joined = await groups.join_group(opened.group.id, "bob")
    await core.sales.pay(joined.order.id, "bob")  # paying early is allowed
    assert (await core.sales.get_sale(sale.id)).remaining == 3
    await asyncio.sleep(1.5)
    group = await groups.get_group(opened.group.id)
    assert group.state == "expired"
    with pytest.raises(GroupExpired):
        await groups.join_group(group.id, "cy")
    assert (await core.sales.get_order(opened.order.id)).state == "expired"
    assert (await core.sales.get_order(joined.order.id)).state == "refund"
    assert (await core.sales.get_sale(sale.id)).remaining == 5
    assert await groups.expire_due(sale.id) == 0  # nothing is released twice
    figures = await audit_ok(core, sale.id)
    assert figures["refund_orders"] == 1 and figures["remaining"] == 5
    row = await core.ledger.get_order(joined.order.id)
    assert row is not None and row.state == "refund"  # the persister keeps it in SQL


async def test_a_member_who_cancels_before_the_fill_frees_the_place(
    core: Core, groups: GroupBuys
) -> None:
    sale = await offered(core, groups, quantity=10)
    opened = await groups.open_group(sale.id, "amy", "k1")
    bob = await groups.join_group(opened.group.id, "bob")
    await core.sales.cancel(bob.order.id, "bob")
    with pytest.raises(LeftGroup):
        await groups.join_group(opened.group.id, "bob")
    assert (await groups.join_group(opened.group.id, "cy")).group.state == "open"
    filled = await groups.join_group(opened.group.id, "dan")
    assert filled.group.state == "filled"
    assert [u for u, _ in filled.group.members] == ["amy", "cy", "dan"]
    await audit_ok(core, sale.id)


async def test_the_per_user_limit_spans_groups_and_the_flash_sale(
    core: Core, groups: GroupBuys
) -> None:
    sale = await offered(core, groups, quantity=10, limit=2)
    await core.sales.buy(sale.id, "amy", "flash")
    first = await groups.open_group(sale.id, "bob", "k")
    await groups.join_group(first.group.id, "amy")
    second = await groups.open_group(sale.id, "cy", "k")
    with pytest.raises(LimitReached):
        await groups.join_group(second.group.id, "amy")
    with pytest.raises(LimitReached):
        await groups.open_group(sale.id, "amy", "k")
    with pytest.raises(LimitReached):
        await core.sales.buy(sale.id, "amy", "flash2")
    await audit_ok(core, sale.id)


async def test_groups_need_an_open_offer(core: Core, groups: GroupBuys) -> None:
    sale = await core.sale(quantity=3)
    with pytest.raises(NoGroupOffer):
        await groups.open_group(sale.id, "amy", "k")
    await groups.offer(sale.id, 1000, 2, 60, OPS)
    opened = await groups.open_group(sale.id, "amy", "k")
    await groups.close_offer(sale.id)
    with pytest.raises(NoGroupOffer):
        await groups.join_group(opened.group.id, "bob")


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_2000_joiners_race_for_100_groups_of_3_while_groups_expire(
    core: Core, groups: GroupBuys, workers: None
) -> None:
    sale = await offered(core, groups, quantity=300, ttl_s=4)
    opened = await asyncio.gather(
        *[groups.open_group(sale.id, f"o{i}", "open") for i in range(100)]
    )
    ids = [r.group.id for r in opened]
    rng = random.Random(12)
    # Groups 0-59 draw a crowd; 60-99 get one joiner each (then stay short and expire), some
    # of whom pay first (so the expiry owes refunds), and latecomers arrive after deadlines.
    plan = [(f"j{n}", ids[rng.randrange(60)], 0.0, False) for n in range(1880)]
    plan += [(f"s{n}", ids[60 + n], 0.0, n % 2 == 0) for n in range(40)]
    plan += [(f"late{n}", ids[rng.randrange(100)], 5.0, False) for n in range(80)]
    rng.shuffle(plan)
    outcomes: Counter[str] = Counter()

    async def join(user: str, gid: str, delay: float, pay: bool) -> None:
        await asyncio.sleep(delay + rng.random() * 0.3)
        try:
            got = await groups.join_group(gid, user)
        except DomainError as exc:
            outcomes[exc.code] += 1
            return
        outcomes["joined"] += 1
        if pay:
            await core.sales.pay(got.order.id, user)

    await asyncio.gather(*[join(*p) for p in plan])
    await asyncio.sleep(0.5)  # the group reaper's last pass over deadlines just gone
    assert await groups.expire_due(sale.id) == 0
    assert outcomes["joined"] == 2 * 60 + 40, outcomes
    assert set(outcomes) <= {"joined", "group_full", "group_expired"}, outcomes
    assert outcomes["group_expired"] > 0 and outcomes["group_full"] > 0, outcomes
    final = [await groups.get_group(g) for g in ids]
    states = Counter(g.state for g in final)
    assert states == {"filled": 60, "expired": 40}, states
    for g in final:
        users = [u for u, _ in g.members]
        assert len(users) == len(set(users)), g
        orders = [await core.sales.get_order(o) for _, o in g.members]
        if g.state == "filled":
            assert len(users) == 3 and {o.state for o in orders} == {"reserved"}
        else:
            assert len(users) == 2 and {o.state for o in orders} <= {"expired", "refund"}
    figures = await audit_ok(core, sale.id)
    assert figures["reserved"] == 180 and figures["remaining"] == 120
    assert figures["refund_orders"] == 20 and figures["groups_filled"] == 60


async def test_group_buys_and_the_flash_sale_never_oversell_together(
    core: Core, groups: GroupBuys, workers: None
) -> None:
    sale = await offered(core, groups, quantity=150, size=2, ttl_s=30)
    rng = random.Random(7)
    open_ids: list[str] = []
    sold: Counter[str] = Counter()

    async def flash(n: int) -> None:
        await asyncio.sleep(rng.random() * 0.2)  # interleave the two kinds of buyers
        try:
            await core.sales.buy(sale.id, f"f{n}", "tap")
            sold["flash"] += 1
        except SoldOut:
            sold["flash_sold_out"] += 1

    async def opener(n: int) -> None:
        await asyncio.sleep(rng.random() * 0.2)
        try:
            r = await groups.open_group(sale.id, f"g{n}", "open")
            open_ids.append(r.group.id)
            sold["group"] += 1
        except SoldOut:
            sold["group_sold_out"] += 1

    async def joiner(n: int) -> None:
        await asyncio.sleep(rng.random() * 0.2)
        if not open_ids:
            return
        try:
            await groups.join_group(rng.choice(open_ids), f"j{n}")
            sold["group"] += 1
        except DomainError as exc:
            sold[exc.code] += 1

    tasks = [flash(n) for n in range(600)] + [opener(n) for n in range(150)]
    tasks += [joiner(n) for n in range(600)]
    rng.shuffle(tasks)
    await asyncio.gather(*tasks)
    assert sold["flash"] + sold["group"] == 150, sold
    assert sold["flash"] > 0 and sold["group"] > 0, sold
    figures = await audit_ok(core, sale.id)
    assert figures["remaining"] == 0 and figures["reserved"] == 150


async def test_the_audit_catches_broken_groups_and_orphans(core: Core, groups: GroupBuys) -> None:
    sale = await offered(core, groups, quantity=10, size=2)
    filled = await groups.join_group((await groups.open_group(sale.id, "amy", "k")).group.id, "bob")
    lonely = await groups.open_group(sale.id, "cy", "k")
    await audit_ok(core, sale.id)
    k = groups.keys(sale.id)
    members = await core.redis.hget(k.members, filled.group.id)
    # A third member written into a filled group, and a reservation nothing will release.
    await core.redis.hset(k.members, filled.group.id, members + b",dan=" + lonely.order.id.encode())
    await core.redis.zrem(k.sale.holds, lonely.order.id)
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
    assert not report.checks["groups_whole"] and not report.checks["no_orphaned_reservation"]
    assert any("has 3 members, not 2" in p for p in report.problems), report.problems
