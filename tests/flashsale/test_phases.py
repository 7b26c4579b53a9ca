"""flashsale/lua/phase.lua on real Redis: each transition recorded once, by Redis's clock."""

from __future__ import annotations

import asyncio
import time

from flashsale.phases import PhaseReport
from tests.flashsale.conftest import OPS, Core


async def look(core: Core, sale_id: int, known: int, n: int = 20) -> list[PhaseReport]:
    """``n`` concurrent lookers that all know transitions up to ``known``."""
    reports = await asyncio.gather(*(core.sales.phase(sale_id, known) for _ in range(n)))
    assert all(r is not None for r in reports)
    return [r for r in reports if r is not None]


async def test_each_transition_is_numbered_once_whoever_looks(core: Core) -> None:
    product = await core.catalog.create_product("Lamp", 4500)
    sale = await core.sales.create_sale(product.id, 2, 1, OPS, duration_s=1, hold_s=60)
    first = await core.sales.phase(sale.id)
    assert first is not None and [t.phase for t in first.transitions] == ["scheduled"]
    assert first.next_change_ms is None, "a scheduled sale waits for its host, not the clock"
    await core.sales.open_sale(sale.id, countdown_s=1)
    reports = await look(core, sale.id, first.number)
    assert {r.number for r in reports} == {2}, "twenty lookers, one transition"
    (countdown,) = reports[0].transitions
    assert countdown.phase == "countdown" and countdown.remaining == 2
    assert 500 <= (reports[0].next_change_ms or 0) <= 1000
    await asyncio.sleep(1.05)
    reports = await look(core, sale.id, 2)
    assert {r.number for r in reports} == {3}
    assert {(t.phase, t.at_ms >= t.starts_at_ms) for r in reports for t in r.transitions} == {
        ("opened", True)
    }
    for user in ("ann", "bob"):
        await core.sales.buy(sale.id, user, f"{user}-1")
    reports = await look(core, sale.id, 3)
    assert {(r.number, r.transitions[0].phase, r.transitions[0].remaining) for r in reports} == {
        (4, "sold_out", 0)
    }
    ann = await core.sales.buy(sale.id, "ann", "ann-1")
    await core.sales.cancel(ann.order.id)
    assert [t.phase for t in (await look(core, sale.id, 4, 5))[0].transitions] == ["restocked"]
    await asyncio.sleep(max(0, (reports[0].next_change_ms or 0) / 1000) + 0.05)
    last = (await look(core, sale.id, 5))[0]
    assert [(t.number, t.phase, t.remaining) for t in last.transitions] == [(6, "closed", 1)]
    assert last.next_change_ms is None
    again = await core.sales.phase(sale.id, 0)
    assert again is not None and [t.phase for t in again.transitions] == [
        "scheduled", "countdown", "opened", "sold_out", "restocked", "closed",
    ]  # fmt: skip


async def test_a_sale_that_opened_and_sold_out_unseen_still_says_it_opened(core: Core) -> None:
    product = await core.catalog.create_product("Lamp", 4500)
    sale = await core.sales.create_sale(product.id, 1, 1, OPS)
    await core.sales.open_sale(sale.id)
    await core.sales.buy(sale.id, "ann", "a-1")
    report = await core.sales.phase(sale.id)
    assert report is not None
    assert [(t.phase, t.state, t.remaining) for t in report.transitions] == [
        ("opened", "open", 0),
        ("sold_out", "open", 0),
    ]
    assert await core.sales.phase(10**9) is None, "no live state: nothing to say"


async def test_a_countdown_moved_by_open_is_announced_again(core: Core) -> None:
    product = await core.catalog.create_product("Lamp", 4500)
    start = int(time.time() * 1000) + 3_600_000  # in an hour
    sale = await core.sales.create_sale(product.id, 3, 1, OPS, starts_at_ms=start)
    first = await core.sales.phase(sale.id)
    assert first is not None
    assert [(t.phase, t.starts_at_ms) for t in first.transitions] == [("countdown", start)]
    opened = await core.sales.open_sale(sale.id, countdown_s=600)  # the host: "in 10 minutes"
    moved = await core.sales.phase(sale.id, first.number)
    assert moved is not None
    assert [(t.phase, t.starts_at_ms) for t in moved.transitions] == [
        ("countdown", opened.starts_at_ms)
    ]
    assert opened.starts_at_ms < start - 2_000_000
    again = await core.sales.phase(sale.id, moved.number)
    assert again is not None and again.transitions == [], "told once"


async def test_a_retired_sale_is_closed_in_sql_and_leaves_the_streams_list(core: Core) -> None:
    await core.catalog.create_stream("s1", "hostess", "show")
    product = await core.catalog.create_product("Lamp", 4500)
    sale = await core.sales.create_sale(product.id, 3, 1, OPS, stream_id="s1")
    await core.sales.open_sale(sale.id)
    await core.sales.close_sale(sale.id)
    await core.sales.phase(sale.id)  # the rooms hear it close
    assert await core.sales.retire_if_done(sale.id)
    assert (await core.ledger.get_sale(sale.id)).state == "closed"
    assert await core.sales.sales_for_stream("s1") == []


async def test_opening_a_sale_open_by_its_start_time_changes_nothing(core: Core) -> None:
    product = await core.catalog.create_product("Lamp", 4500)
    start = int(time.time() * 1000) + 200
    sale = await core.sales.create_sale(product.id, 3, 1, OPS, starts_at_ms=start)
    await asyncio.sleep(0.3)
    assert (await core.sales.get_sale(sale.id)).to_json()["state"] == "open"
    await core.sales.buy(sale.id, "ann", "k1")
    after = await core.sales.open_sale(sale.id, countdown_s=60)
    assert after.to_json()["state"] == "open" and after.starts_at_ms == start
    assert (await core.sales.buy(sale.id, "bob", "k2")).remaining == 1


async def test_a_sell_out_undone_before_the_next_look_is_still_told(core: Core) -> None:
    product = await core.catalog.create_product("Lamp", 4500)
    sale = await core.sales.create_sale(product.id, 1, 1, OPS)
    await core.sales.open_sale(sale.id)
    first = await core.sales.phase(sale.id)
    assert first is not None and [t.phase for t in first.transitions] == ["opened"]
    bought = await core.sales.buy(sale.id, "ann", "a-1")
    assert bought.remaining == 0
    await core.sales.cancel(bought.order.id)  # stock back before anyone looked
    report = await core.sales.phase(sale.id, first.number)
    assert report is not None
    assert [(t.phase, t.remaining) for t in report.transitions] == [
        ("sold_out", 0),
        ("restocked", 1),
    ]
    again = await core.sales.phase(sale.id, report.number)
    assert again is not None and again.transitions == [], "told once"
