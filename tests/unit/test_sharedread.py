"""The shared read behind join snapshots: one read at a time, none older than its caller."""

from __future__ import annotations

import asyncio
import itertools
import random

import pytest

from chat.sharedread import SharedRead


class Reads:
    """Counts reads; each waits for ``gate`` so callers pile up while one runs."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.gate = asyncio.Event()
        self.fail = False

    async def __call__(self, version: int) -> str:
        self.calls.append(version)
        await self.gate.wait()
        self.gate.clear()
        if self.fail:
            self.fail = False
            raise LookupError("redis away")
        return f"read-{len(self.calls)}@v{version}"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_callers_during_a_read_share_the_next_one_never_the_running_one() -> None:
    shared: SharedRead[str, str] = SharedRead()
    reads = Reads()
    first = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    # 1,000 joiners arrive while the first read runs: it began before them, so it is too old.
    later = [asyncio.create_task(shared.get("show", 1 + i % 3, reads)) for i in range(1000)]
    await settle()
    assert reads.calls == [1]
    reads.gate.set()
    assert await first == "read-1@v1"
    await settle()
    # One more read serves all of them, at the newest version any of them asked for.
    assert reads.calls == [1, 3]
    reads.gate.set()
    assert set(await asyncio.gather(*later)) == {"read-2@v3"}
    other = asyncio.create_task(shared.get("other-show", 1, reads))
    await settle()
    reads.gate.set()
    assert await other == "read-3@v1"  # keys do not wait for each other


async def test_a_failed_read_fails_its_callers_and_the_next_read_is_fresh() -> None:
    shared: SharedRead[str, str] = SharedRead()
    reads = Reads()
    reads.fail = True
    first = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    waiting = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    reads.gate.set()
    with pytest.raises(LookupError):
        await first
    await settle()
    reads.gate.set()
    assert await waiting == "read-2@v1"


async def test_a_cancelled_caller_neither_cancels_the_read_nor_strands_the_others() -> None:
    shared: SharedRead[str, str] = SharedRead()
    reads = Reads()
    first = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    leaver = asyncio.create_task(shared.get("show", 1, reads))
    stayer = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    leaver.cancel()
    await settle()
    reads.gate.set()
    assert await first == "read-1@v1"
    await settle()
    reads.gate.set()
    assert await stayer == "read-2@v1"
    # The leader of a read is cancelled: a caller waiting on it reads again itself.
    leader = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    follower_first = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    reads.gate.set()
    await leader
    await settle()
    # follower_first now leads the next read; cancel that leader mid-read.
    follower_second = asyncio.create_task(shared.get("show", 2, reads))
    await settle()
    assert reads.calls[-1] == 1 and len(reads.calls) == 4
    follower_first.cancel()
    await settle()
    reads.gate.set()
    assert await follower_second == "read-5@v2"


async def test_callers_arriving_at_any_moment_all_get_a_read_begun_after_they_asked() -> None:
    rng = random.Random(7)
    shared: SharedRead[str, int] = SharedRead()
    clock = itertools.count()
    reads = 0

    async def load(version: int) -> int:
        nonlocal reads
        reads += 1
        started = next(clock)
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
        return started

    async def caller() -> None:
        for _ in range(rng.randint(0, 60)):
            await asyncio.sleep(0)
        asked = next(clock)
        assert await shared.get("show", 1, load) > asked

    # Every caller is answered (none waits for a read nobody starts), by far fewer reads.
    await asyncio.wait_for(asyncio.gather(*(caller() for _ in range(2000))), 10)
    assert reads < 400


@pytest.mark.parametrize("ticks", [0, 1, 2, 3])
async def test_a_caller_arriving_as_a_read_ends_does_not_strand_those_waiting(ticks: int) -> None:
    shared: SharedRead[str, str] = SharedRead()
    reads = Reads()
    first = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    waiting = asyncio.create_task(shared.get("show", 1, reads))
    await settle()
    reads.gate.set()
    for _ in range(ticks):
        await asyncio.sleep(0)
    newcomer = asyncio.create_task(shared.get("show", 1, reads))
    await first
    for _ in range(20):  # the reads after the first: each runs when let through
        await settle()
        reads.gate.set()
    await asyncio.wait_for(asyncio.gather(waiting, newcomer), 2)
