"""Live auctions on real Redis and SQL: one winner per lot, the highest valid bid."""

from __future__ import annotations

import asyncio
import itertools
import random
from collections.abc import AsyncIterator, Callable

import pytest

from flashsale.auction import Auctions, AuctionSweeper
from flashsale.audit import audit_sale
from flashsale.errors import NotOpen
from flashsale.lot import AuctionEvent, BidTooLow, LotClosed, LotNotOpen, NoRunnerUp, OwnLot
from flashsale.persister import Persister
from flashsale.reaper import Reaper
from flashsale.sweeper import Sweeper
from inventory.errors import DomainError
from tests.flashsale.conftest import OPS, Core


class Heard:
    """An observer that keeps every lot event."""

    def __init__(self) -> None:
        self.events: list[AuctionEvent] = []

    async def auction_event(self, event: AuctionEvent) -> None:
        """Keep ``event``."""
        self.events.append(event)


@pytest.fixture
async def heard() -> Heard:
    """The events the auctions announce."""
    return Heard()


@pytest.fixture
async def auctions(core: Core, heard: Heard) -> AsyncIterator[Auctions]:
    """Auctions over the core's sale service, with the sweeper, reaper and persister running."""
    auctions = Auctions(core.redis, core.sales, core.prefix, observer=heard)
    workers: list[Sweeper | Persister] = [
        AuctionSweeper(auctions, 0.02),
        Reaper(core.sales, 0.05),
        Persister(core.redis, core.ledger, core.prefix, interval_s=0.02),
    ]
    for w in workers:
        w.start()
    yield auctions
    for w in workers:
        await w.close()
    await auctions.close()


async def until_closed(auctions: Auctions, lot_id: int, timeout_s: float = 15.0) -> str:
    """Wait for the sweeper to close the lot; returns its final state."""
    for _ in range(int(timeout_s / 0.02)):
        lot = await auctions.get_lot(lot_id)
        if lot.state not in ("scheduled", "open"):
            return lot.state
        await asyncio.sleep(0.02)
    raise AssertionError(f"lot {lot_id} never closed")


async def keys_naming(core: Core, user: str) -> list[bytes]:
    """The Redis keys (hashes, lists, sets, sorted sets) whose contents name ``user``."""
    found = []
    for key in await core.redis.keys(f"{core.prefix}:*"):
        kind = (await core.redis.type(key)).decode()
        dump = {
            "hash": core.redis.hgetall,
            "list": lambda k: core.redis.lrange(k, 0, -1),
            "set": core.redis.smembers,
            "zset": lambda k: core.redis.zrange(k, 0, -1),
        }.get(kind)
        if dump is not None and user.encode() in repr(await dump(key)).encode():
            found.append(key)
    return found


async def until_heard(heard: Heard, pred: Callable[[AuctionEvent], bool]) -> None:
    """Wait until an announced event matches ``pred`` (the room hears bids asynchronously)."""
    for _ in range(250):
        if any(pred(e) for e in heard.events):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the event was never announced")


async def audit_ok(core: Core, sale_id: int) -> None:
    """Fail with the audit's problems unless every check holds."""
    report = await audit_sale(core.redis, core.ledger, core.prefix, sale_id)
    assert report.ok, report.to_json()
    assert "auction_one_winner_with_order" in report.checks


async def test_500_bidders_in_the_closing_second_of_20_lots(core: Core, auctions: Auctions) -> None:
    """Each lot has one winner, the highest accepted bid; late bids extend the end; no bid low."""
    product = await core.catalog.create_product("Vase", 1000)
    lots = []
    for _ in range(20):
        lot = await auctions.create_lot(product.id, OPS, start_cents=1000, increment_cents=50,
                                        duration_s=2, window_s=1, extend_s=1)  # fmt: skip
        lots.append(await auctions.open_lot(lot.id))
    rng = random.Random(13)
    # The closing second: by Redis's clock, under one second before the (common) end.
    clock = (await auctions.get_lot(lots[0].id)).clock_ms
    await asyncio.sleep(max(0.0, (lots[0].end_ms - clock - 900) / 1000))
    accepted: dict[int, list[tuple[int, str]]] = {lot.id: [] for lot in lots}
    refused = 0

    async def bidder(n: int) -> None:
        nonlocal refused
        for attempt in range(3):
            lot = lots[rng.randrange(len(lots))]
            current = await auctions.get_lot(lot.id)
            amount = current.next_bid_cents + rng.randrange(0, 120)
            try:
                result = await auctions.bid(lot.id, f"b{n}", f"k{attempt}", amount)
                accepted[lot.id].append((result.amount_cents, f"b{n}"))
            except (BidTooLow, LotClosed):
                refused += 1

    await asyncio.gather(*(bidder(n) for n in range(500)))
    assert refused  # bids raced: some came in under the new least bid
    for lot in lots:
        assert await until_closed(auctions, lot.id) == "won"
    for lot in lots:
        final = await auctions.get_lot(lot.id)
        history = await auctions.bid_history(lot.id, limit=10_000)
        assert len(history) == len(accepted[lot.id]) == final.bids
        best_amount, best_user = max(accepted[lot.id])
        assert (final.winner, final.price_cents) == (best_user, best_amount)
        # Every accepted bid came in the last second: the end is the last bid plus the extension.
        assert final.end_ms == history[0]["at_ms"] + 1000  # type: ignore[operator]
        assert final.end_ms > lots[0].end_ms
        amounts = [int(str(h["amount_cents"])) for h in reversed(history)]
        assert all(b >= a + 50 for a, b in itertools.pairwise(amounts))
        order = await core.sales.get_order(final.order_id or "")
        assert (order.state, order.user_id, order.unit_price_cents) == (
            "reserved", best_user, best_amount
        )  # fmt: skip
        await audit_ok(core, lot.id)
    with pytest.raises(LotClosed):
        await auctions.bid(lots[0].id, "late", "k", 10**9)


async def test_bids_are_idempotent_refused_before_open_and_not_buyable(
    core: Core, auctions: Auctions, heard: Heard
) -> None:
    """A retried bid replays its answer; a lot is never bought first-come-first-served."""
    product = await core.catalog.create_product("Clock", 1000)
    lot = await auctions.create_lot(product.id, OPS, 500, 100, duration_s=30, reserve_cents=0)
    with pytest.raises(LotNotOpen):
        await auctions.bid(lot.id, "ann", "k1", 500)
    await auctions.open_lot(lot.id)
    with pytest.raises(BidTooLow):
        await auctions.bid(lot.id, "ann", "k0", 499)
    with pytest.raises(OwnLot):  # its seller may not bid its price up
        await auctions.bid(lot.id, OPS.user_id, "k0", 500)
    first = await auctions.bid(lot.id, "ann", "k1", 500, public_name="Ann")
    await until_heard(heard, lambda e: e.lot["bid_cents"] == 500)
    again = await auctions.bid(lot.id, "ann", "k1", 500)
    assert (first.duplicate, again.duplicate, again.amount_cents) == (False, True, 500)
    with pytest.raises(BidTooLow):
        await auctions.bid(lot.id, "bob", "k1", 599)
    await auctions.bid(lot.id, "bob", "k1", 600)
    with pytest.raises(NotOpen):
        await core.sales.buy(lot.id, "cat", "k1")
    now = await auctions.get_lot(lot.id)
    assert (now.bid_cents, now.bids, now.next_bid_cents, now.leader_name) == (600, 2, 700, None)
    await until_heard(heard, lambda e: e.lot["bid_cents"] == 600)
    kinds = [e.kind for e in heard.events]
    assert kinds == ["lot_opened", "bid_accepted", "bid_accepted"]
    # The room never hears a bidder's id, and the opted-in name only while they lead.
    assert heard.events[1].lot["leader_name"] == "Ann"
    assert all(e.lot["winner"] is None for e in heard.events)


async def test_reserve_not_met_and_runner_up_offer(core: Core, auctions: Auctions) -> None:
    """Under the reserve nobody wins; an expired winner's lot goes to the runner-up at their bid."""
    product = await core.catalog.create_product("Ring", 1000)
    unsold = await auctions.create_lot(product.id, OPS, 100, 10, duration_s=1,
                                       reserve_cents=1000)  # fmt: skip
    await auctions.open_lot(unsold.id)
    await auctions.bid(unsold.id, "ann", "k", 500)
    # A 3 s hold: with 1 s, a loaded machine let it lapse before "bob still holds it" ran.
    lot = await auctions.create_lot(product.id, OPS, 100, 10, duration_s=1, hold_s=3)
    await auctions.open_lot(lot.id)
    await auctions.bid(lot.id, "ann", "k", 100)
    await auctions.bid(lot.id, "bob", "k", 150)
    with pytest.raises(NoRunnerUp):
        await auctions.offer_runner_up(lot.id)
    assert await until_closed(auctions, unsold.id) == "unsold"
    assert await until_closed(auctions, lot.id) == "won"
    await audit_ok(core, unsold.id)
    won = await auctions.get_lot(lot.id)
    assert won.winner == "bob"
    with pytest.raises(NoRunnerUp):  # bob still holds it
        await auctions.offer_runner_up(lot.id)
    for _ in range(200):  # the hold lapses (the reaper, by Redis's clock)
        if (await core.sales.get_order(won.order_id or "")).state == "expired":
            break
        await asyncio.sleep(0.05)
    second = await auctions.offer_runner_up(lot.id)
    assert (second.winner, second.price_cents) == ("ann", 100)
    paid = await core.sales.pay(second.order_id or "", "ann")
    assert paid.state == "paid"
    with pytest.raises(DomainError):
        await auctions.offer_runner_up(lot.id)
    await audit_ok(core, lot.id)


async def test_erasing_a_bidder_leaves_no_id_in_the_lot_and_the_audit_passes(
    core: Core, auctions: Auctions
) -> None:
    """DELETE /api/me/data's Redis pass pseudonymises bids, the winner and the winning order.

    A lot still running and a draw still open hold no order records yet: erased all the same.
    """
    from flashsale.draw import Draws
    from flashsale.privacy import SaleForgetter

    product = await core.catalog.create_product("Bowl", 1000)
    lot = await auctions.create_lot(product.id, OPS, 100, 10, duration_s=1)
    running = await auctions.create_lot(product.id, OPS, 100, 10, duration_s=60)
    for opened in (lot, running):
        await auctions.open_lot(opened.id)
    await auctions.bid(lot.id, "zed-erase", "k1", 100, public_name="Zed")
    await auctions.bid(lot.id, "amy", "k1", 110)
    await auctions.bid(lot.id, "zed-erase", "k2", 120, public_name="Zed")
    await auctions.bid(running.id, "zed-erase", "k1", 100, public_name="Zed")
    draws = Draws(core.redis, core.sales, core.prefix, b"entry key")
    drawn = await core.sales.create_sale(product.id, 1, 1, OPS, hold_s=300)
    await draws.create(drawn.id, window_s=600, by=OPS)
    await draws.enter(drawn.id, "zed-erase")
    assert await until_closed(auctions, lot.id) == "won"
    await SaleForgetter(core.redis, core.ledger, core.prefix).forget("zed-erase", "erased-1")
    assert await keys_naming(core, "zed-erase") == []
    assert (await auctions.get_lot(lot.id)).winner == "erased-1"
    assert (await auctions.bid_history(running.id))[0]["user_id"] == "erased-1"
    await audit_ok(core, lot.id)


async def test_bids_of_many_lots_share_a_round_trip_even_after_redis_forgets_the_script(
    core: Core, auctions: Auctions
) -> None:
    """Concurrent bids on several lots ride one pipeline; a NOSCRIPT reloads, no bid is lost."""
    product = await core.catalog.create_product("Jug", 1000)
    lots = [await auctions.create_lot(product.id, OPS, 100, 10, duration_s=30)
            for _ in range(3)]  # fmt: skip
    for lot in lots:
        await auctions.open_lot(lot.id)
    await core.redis.script_flush()  # as after a Redis restart or a Cluster failover
    bids = [auctions.bid(lot.id, f"u{n}", "k", 100 + 10 * n) for lot in lots for n in range(4)]
    results = await asyncio.gather(*bids, return_exceptions=True)
    assert all(not isinstance(r, BaseException) for r in results), results
    for lot in lots:
        now = await auctions.get_lot(lot.id)
        assert (now.bids, now.bid_cents) == (4, 130)
