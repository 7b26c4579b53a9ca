"""The buy coalescer, driven by an in-memory batch runner (no Redis needed for the protocol)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from flashsale.coalescer import BuyRequest, Coalescer


class Recorder:
    """A batch runner that answers each request with its own user and records batch sizes."""

    def __init__(self, delay: float = 0.01, fail: bool = False) -> None:
        self.batches: list[int] = []
        self.delay = delay
        self.fail = fail

    async def __call__(self, sale_id: int, batch: Sequence[BuyRequest]) -> list[object]:
        self.batches.append(len(batch))
        await asyncio.sleep(self.delay)
        if self.fail:
            raise ConnectionError("redis down")
        return [f"{sale_id}:{user}:{key}:{qty}" for user, key, qty, _member in batch]


async def test_concurrent_buys_share_calls_but_keep_their_own_answers() -> None:
    runner = Recorder()
    c = Coalescer(runner, max_batch=64, max_inflight=2)
    replies = await asyncio.gather(*[c.submit(7, (f"u{i}", "k", 1, 0)) for i in range(300)])
    assert replies == [f"7:u{i}:k:1" for i in range(300)]
    assert sum(runner.batches) == 300
    assert len(runner.batches) < 20 and max(runner.batches) <= 64
    await c.close()


async def test_a_lone_buy_runs_at_once() -> None:
    runner = Recorder(delay=0)
    c = Coalescer(runner)
    assert await asyncio.wait_for(c.submit(1, ("amy", "k", 2, 0)), 1) == "1:amy:k:2"
    assert runner.batches == [1]
    await c.close()


async def test_sales_are_batched_separately() -> None:
    runner = Recorder()
    c = Coalescer(runner, max_inflight=1)
    a, b = await asyncio.gather(c.submit(1, ("x", "k", 1, 0)), c.submit(2, ("x", "k", 1, 0)))
    assert (a, b) == ("1:x:k:1", "2:x:k:1")
    await c.close()


async def test_a_failed_call_fails_every_buyer_in_it() -> None:
    c = Coalescer(Recorder(fail=True))
    results = await asyncio.gather(
        *[c.submit(1, (f"u{i}", "k", 1, 0)) for i in range(10)], return_exceptions=True
    )
    assert all(isinstance(r, ConnectionError) for r in results)
    await c.close()
    with pytest.raises(RuntimeError):
        await c.submit(1, ("u", "k", 1, 0))
