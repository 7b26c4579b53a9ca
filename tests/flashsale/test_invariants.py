"""Correctness under concurrency: no oversell, exactly-once stock return, idempotent retries."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from flashsale.audit import audit_sale
from flashsale.errors import Ended, HoldExpired, RedisUnavailable
from flashsale.persister import Persister
from inventory.errors import DomainError
from tests.flashsale.conftest import Core
from tests.flashsale.helpers import Auth, make_sale


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_5000_concurrent_buyers_stock_100(client: TestClient, auth: Auth) -> None:
    sale = await make_sale(client, auth, quantity=100, limit=2)
    sid = sale["id"]
    users = [f"u{i}" for i in range(2500)]
    headers = {u: auth("viewer", u) for u in users}

    async def attempt(n: int) -> tuple[int, dict[str, Any]]:
        user = users[n % len(users)]
        r = await client.post(
            f"/api/sales/{sid}/buy", headers={**headers[user], "Idempotency-Key": f"tap-{n}"}
        )
        return r.status, await r.json()

    results = await asyncio.gather(*[attempt(n) for n in range(5000)])
    statuses = Counter(s for s, _ in results)
    assert statuses[201] == 100, statuses
    assert set(statuses) <= {201, 409}, statuses
    orders = [b["order"] for s, b in results if s == 201]
    assert len({o["id"] for o in orders}) == 100
    per_user = Counter(o["user_id"] for o in orders)
    assert max(per_user.values()) <= 2
    assert {b["error"] for s, b in results if s == 409} == {"sold_out"}

    r = await client.get(f"/api/sales/{sid}/audit", headers=auth("admin", "ops"))
    report = await r.json()
    assert r.status == 200, report
    assert report["ok"] and report["figures"]["reserved"] == 100
    assert report["figures"]["remaining"] == 0 and report["figures"]["sql_orders"] == 100


async def test_concurrent_retries_with_one_key_give_one_order(
    client: TestClient, auth: Auth
) -> None:
    sale = await make_sale(client, auth, quantity=10, limit=5)
    headers = {**auth("viewer", "amy"), "Idempotency-Key": "tap-once"}
    rs = await asyncio.gather(
        *[client.post(f"/api/sales/{sale['id']}/buy", headers=headers) for _ in range(50)]
    )
    bodies = [await r.json() for r in rs]
    assert all(r.status == 201 for r in rs), bodies[:3]
    assert len({b["order"]["id"] for b in bodies}) == 1
    assert sum(1 for r in rs if r.headers.get("Idempotent-Replayed") == "true") == 49
    r = await client.get(f"/api/sales/{sale['id']}")
    assert (await r.json())["remaining"] == 9


async def test_failed_attempt_is_remembered_by_key(core: Core) -> None:
    sale = await core.sale(quantity=1, limit=1)
    await core.sales.buy(sale.id, "amy", "a")
    with pytest.raises(Exception) as first:
        await core.sales.buy(sale.id, "bob", "b")
    order = (await core.sales.buy(sale.id, "amy", "a")).order
    await core.sales.cancel(order.id, "amy")
    # Stock is back, but bob's retry of the same attempt gets the first answer.
    with pytest.raises(type(first.value)):
        await core.sales.buy(sale.id, "bob", "b")
    assert (await core.sales.buy(sale.id, "bob", "b2")).remaining == 0


async def test_expiry_racing_pay_returns_stock_once_or_never(core: Core) -> None:
    sale = await core.sale(quantity=300, limit=1, hold_s=1)
    results = await asyncio.gather(*[core.sales.buy(sale.id, f"u{i}", "k") for i in range(300)])
    orders = [r.order for r in results]
    # Both outcomes exist whatever the machine's load: the first 20 are paid at once, long
    # before their 1 s hold ends, and the last 20 are never paid. The 260 in between race the
    # deadline, which is what this test is about.
    early = await asyncio.gather(*[core.sales.pay(o.id, o.user_id) for o in orders[:20]])
    racing, never = orders[20:280], orders[280:]
    expires = racing[0].expires_at_ms / 1000
    # Land the payments around the deadline while sweepers expire holds as fast as they can.
    await asyncio.sleep(max(0.0, expires - time.time() - 0.03))

    async def sweep() -> None:
        for _ in range(40):
            await core.sales.expire_due(sale.id, limit=50)
            await asyncio.sleep(0.002)

    async def pay(i: int) -> str:
        await asyncio.sleep((i % 60) / 1000)
        try:
            return (await core.sales.pay(racing[i].id, racing[i].user_id)).state
        except HoldExpired:
            return "expired"

    paid_states, *_ = await asyncio.gather(
        asyncio.gather(*[pay(i) for i in range(len(racing))]), sweep(), sweep()
    )
    await asyncio.sleep(max(0.0, never[-1].expires_at_ms / 1000 - time.time()) + 0.05)
    await core.sales.expire_due(sale.id)
    final = {o.id: (await core.sales.get_order(o.id)).state for o in orders}
    assert set(final.values()) <= {"paid", "expired"}
    assert [o.state for o in early] == ["paid"] * 20
    assert [final[o.id] for o in orders[:20]] == ["paid"] * 20
    assert [final[o.id] for o in never] == ["expired"] * 20
    # Every racing buyer was told the truth: a reported payment stuck, a reported expiry is real.
    assert [final[o.id] for o in racing] == list(paid_states)
    n_expired = sum(1 for s in final.values() if s == "expired")
    view = await core.sales.get_sale(sale.id)
    assert view.remaining == n_expired  # each expiry returned its unit exactly once
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
    assert report.ok, report.to_json()


async def test_persister_crash_loses_and_duplicates_nothing(core: Core) -> None:
    sale = await core.sale(quantity=1000, limit=1)
    first = Persister(core.redis, core.ledger, core.prefix, consumer="p1", claim_idle_ms=200)

    async def buyers(start: int) -> None:
        for i in range(start, start + 200):
            await core.sales.buy(sale.id, f"u{i}", "k")

    await buyers(0)
    # p1 reads a batch and dies before committing it: the events stay pending under p1.
    taken = await first.read(sale.id)
    assert len(taken) == 200
    await buyers(200)
    # p1 also commits part of the next batch, then "crashes" mid-stream.
    more = await first.read(sale.id)
    await first.commit(sale.id, more[:50])
    assert len(await core.ledger.orders_for_sale(sale.id)) == 50

    # A new persister claims what the dead one held once it has been idle long enough.
    await asyncio.sleep(0.3)
    second = Persister(core.redis, core.ledger, core.prefix, consumer="p2", claim_idle_ms=200)
    for _ in range(20):
        if not await second.step():
            break
    rows = await core.ledger.orders_for_sale(sale.id)
    assert len(rows) == 400 and len({r.id for r in rows}) == 400
    # The dead consumer's late commit (a zombie) changes nothing.
    await first.commit(sale.id, taken)
    assert len(await core.ledger.orders_for_sale(sale.id)) == 400
    pending = await core.redis.xpending(core.sales.keys(sale.id).events, "persister")
    assert pending["pending"] == 0
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id, sync=False)
    assert report.ok, report.to_json()


async def test_audit_reports_broken_invariants(core: Core) -> None:
    sale = await core.sale(quantity=10, limit=1)
    await core.sales.buy(sale.id, "amy", "k")
    assert (await audit_sale(core.redis, core.ledger, core.prefix, sale.id)).ok
    await core.redis.hincrby(core.sales.keys(sale.id).meta, "remaining", 1)  # a unit from nowhere
    await core.redis.hincrby(core.sales.keys(sale.id).users, "amy", 5)
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale.id)
    assert not report.ok
    assert report.checks["stock_conserved"] is False
    assert report.checks["user_counters_match_orders"] is False


async def test_retry_after_the_sale_ended_still_gets_the_order(core: Core) -> None:
    sale = await core.sale(quantity=5, limit=1)
    first = await core.sales.buy(sale.id, "amy", "k1")
    await core.sales.close_sale(sale.id)
    again = await core.sales.buy(sale.id, "amy", "k1")
    assert again.duplicate and again.order.id == first.order.id
    with pytest.raises(Ended):
        await core.sales.buy(sale.id, "amy", "k2")


async def test_distinct_attempts_per_buyer_are_capped(core: Core) -> None:
    sale = await core.sale(quantity=1, limit=1)
    await core.sales.buy(sale.id, "amy", "win")
    refusals: Counter[str] = Counter()
    for i in range(120):
        try:
            await core.sales.buy(sale.id, "bob", f"k{i}")
        except DomainError as exc:
            refusals[exc.code] += 1
    assert refusals == {"sold_out": 100, "too_many_attempts": 20}
    fields = await core.redis.hlen(core.sales.keys(sale.id).idem)
    assert fields <= 1 + 1 + 100 + 1  # amy's key and counter, bob's 100 answers and counter


async def test_persister_reclaims_dead_consumers_events_on_every_sale(core: Core) -> None:
    sales = [await core.sale(quantity=10, limit=1) for _ in range(3)]
    dead = Persister(core.redis, core.ledger, core.prefix, consumer="dead")
    for sale in sales:
        await core.sales.buy(sale.id, "amy", "k")
        assert len(await dead.read(sale.id)) == 1  # read, never committed
    await asyncio.sleep(0.3)
    alive = Persister(core.redis, core.ledger, core.prefix, consumer="alive", claim_idle_ms=200)
    for _ in range(10):
        await alive.step()
    for sale in sales:
        assert len(await core.ledger.orders_for_sale(sale.id)) == 1, sale.id


async def test_a_sale_that_sold_is_never_rebuilt_with_full_stock(core: Core) -> None:
    sale = await core.sale(quantity=3, limit=1)
    await core.sales.buy(sale.id, "amy", "k")
    await Persister(core.redis, core.ledger, core.prefix).drain(sale.id)
    await core.redis.delete(*core.sales.keys(sale.id).for_buy())  # Redis lost the sale
    with pytest.raises(RedisUnavailable):
        await core.sales.open_sale(sale.id)
    assert (await core.sales.get_sale(sale.id)).remaining == 2  # from SQL, not a fresh 3


async def test_a_broken_sale_does_not_stop_the_persister(core: Core) -> None:
    broken, fine = await core.sale(quantity=5), await core.sale(quantity=5)
    persister = Persister(core.redis, core.ledger, core.prefix, consumer="p")
    await core.sales.buy(broken.id, "amy", "k")
    await persister.step()
    await core.redis.delete(core.sales.keys(broken.id).events)  # stream and group gone
    await core.redis.xadd(core.sales.keys(broken.id).events, {"x": "1"})  # a group-less stream
    await core.sales.buy(fine.id, "amy", "k")
    await persister.step()
    assert len(await core.ledger.orders_for_sale(fine.id)) == 1
    await persister.step()  # the group is re-created, the junk entry is skipped


async def test_remaining_many_reads_every_sales_stock_at_once(core: Core) -> None:
    a, b = await core.sale(3), await core.sale(5)
    await core.sales.buy(a.id, "amy", "k")
    assert await core.sales.remaining_many([a.id, b.id, 999_999]) == [2, 5, None]
