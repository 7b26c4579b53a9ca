"""The single-flight memo behind the hot paths' SQL lookups (sale -> stream, sale -> host)."""

from __future__ import annotations

import asyncio

import pytest

from flashsale.memo import Memo


class Loader:
    """Counts loads; each waits for ``release`` so callers pile up behind the first."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.fail_first = False

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.fail_first and self.calls == 1:
            raise LookupError("sale 7 not found")
        return f"host-{self.calls}"


async def test_a_rush_of_callers_loads_the_key_once() -> None:
    memo: Memo[int, str] = Memo()
    load = Loader()
    callers = [asyncio.create_task(memo.get(7, load)) for _ in range(5000)]
    await asyncio.sleep(0)
    load.release.set()
    assert set(await asyncio.gather(*callers)) == {"host-1"}
    assert load.calls == 1
    assert await memo.get(7, load) == "host-1" and load.calls == 1
    assert memo.known(7) == "host-1" and memo.known(8) is None


async def test_a_failed_load_reaches_every_waiter_and_is_not_kept() -> None:
    memo: Memo[int, str] = Memo()
    load = Loader()
    load.fail_first = True
    callers = [asyncio.create_task(memo.get(7, load)) for _ in range(3)]
    await asyncio.sleep(0)
    load.release.set()
    results = await asyncio.gather(*callers, return_exceptions=True)
    assert all(isinstance(r, LookupError) for r in results)
    assert await memo.get(7, load) == "host-2"  # tried again, not the failure remembered


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load() -> None:
    memo: Memo[int, str] = Memo()
    load = Loader()
    first = asyncio.create_task(memo.get(7, load))
    waiter = asyncio.create_task(memo.get(7, load))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    load.release.set()
    assert await first == "host-1" and load.calls == 1


async def test_when_the_loader_is_cancelled_a_waiter_loads_instead() -> None:
    memo: Memo[int, str] = Memo()
    load = Loader()
    first = asyncio.create_task(memo.get(7, load))
    await asyncio.sleep(0)
    second = asyncio.create_task(memo.get(7, load))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    load.release.set()
    assert await second == "host-2"
    assert first.cancelled()


async def test_the_memo_is_bounded() -> None:
    memo: Memo[int, int] = Memo(max_entries=3)

    async def value() -> int:
        return 1

    for key in range(10):
        await memo.get(key, value)
    assert sum(memo.known(k) is not None for k in range(10)) <= 3
