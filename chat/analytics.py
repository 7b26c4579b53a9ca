"""Show counters in Redis: taps, chat, buy attempts and card views, tallied per minute.

The hot paths only add to an in-process ``Counter`` (a dict increment); ``flush()`` moves the
tallies into one Redis hash per room (``<room>:an``, field ``<minute_ms>|<metric>``) with one
pipeline of HINCRBYs. Counts are aggregates: no user id ever reaches these keys.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from redis.asyncio import Redis

from chat.keys import RoomKeys
from inventory.errors import DomainError

log = logging.getLogger("livesell.chat")

#: Counters live this long after their last write; the roll-up copies them to SQL well before.
TTL_S = 7 * 24 * 3600
MINUTE_MS = 60_000
#: Metrics a page may report through the beacon (per sale: ``card_view:<sale_id>``).
BEACON_METRICS = frozenset({"card_view", "card_click"})


def minute_of(at_ms: int) -> int:
    """The start of the minute ``at_ms`` falls in."""
    return at_ms - at_ms % MINUTE_MS


def counters_key(prefix: str, stream_id: str) -> str:
    """The room's analytics hash (same hash tag as the room's other keys)."""
    return f"{RoomKeys.of(prefix, stream_id).base}:an"


class CounterStore(Protocol):
    """Where rolled-up counters go (``inventory.analytics.ShowAnalytics``)."""

    async def store(self, stream_id: str, counters: dict[tuple[int, str], int]) -> None:
        """Replace the stream's counters with these absolute totals."""
        ...


class Tally(Protocol):
    """Counts show figures on the hot paths (must not block)."""

    def hit(self, stream_id: str, metric: str, n: int = 1) -> None:
        """Count ``n`` of ``metric`` in the stream's current minute."""
        ...

    def sale_hit(self, sale_id: int, metric: str, n: int = 1) -> None:
        """Count ``n`` of ``metric`` (made ``<metric>:<sale_id>``) on the sale's stream."""
        ...


class NullTally:
    """A tally that counts nothing (rooms built without analytics, e.g. in tests)."""

    def hit(self, stream_id: str, metric: str, n: int = 1) -> None:
        """Ignore the count."""

    def sale_hit(self, sale_id: int, metric: str, n: int = 1) -> None:
        """Ignore the count."""


NULL_TALLY = NullTally()


class ShowTally:
    """Buffers per-minute counts in process; ``flush`` adds them to Redis in one pipeline."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        stream_of: Callable[[int], Awaitable[str | None]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._stream_of = stream_of
        self._clock = clock
        self._pending: dict[str, Counter[str]] = {}
        self._by_sale: Counter[tuple[int, str]] = Counter()

    def hit(self, stream_id: str, metric: str, n: int = 1) -> None:
        """Count ``n`` of ``metric`` in the stream's current minute."""
        minute = minute_of(int(self._clock() * 1000))
        self._pending.setdefault(stream_id, Counter())[f"{minute}|{metric}"] += n

    def sale_hit(self, sale_id: int, metric: str, n: int = 1) -> None:
        """Count ``n`` of ``<metric>:<sale_id>``; its stream is looked up at flush, off the path."""
        minute = minute_of(int(self._clock() * 1000))
        self._by_sale[(sale_id, f"{minute}|{metric}:{sale_id}")] += n

    async def flush(self) -> int:
        """Add the buffered counts to Redis; returns the rooms written."""
        by_sale, self._by_sale = self._by_sale, Counter()
        for (sale_id, field), n in by_sale.items():
            try:
                stream_id = await self._stream_of(sale_id)
            except DomainError:  # a buy attempt on a sale that does not exist counts nowhere
                continue
            if stream_id is not None:
                self._pending.setdefault(stream_id, Counter())[field] += n
        pending, self._pending = self._pending, {}
        if not pending:
            return 0
        async with self._redis.pipeline(transaction=False) as p:
            for stream_id, counts in pending.items():
                key = counters_key(self._prefix, stream_id)
                for field, n in counts.items():
                    p.hincrby(key, field, n)
                p.expire(key, TTL_S)
            await p.execute()
        return len(pending)

    async def sample_viewers(self, stream_ids: Iterable[str], interval_s: float) -> int:
        """Record each room's viewer count once per ``interval_s`` across all processes.

        A ``SET NX`` slot per room and interval lets exactly one process sample it, so the sum
        of samples times the interval is the watch time whatever the number of workers.
        """
        now_ms = int(self._clock() * 1000)
        slot = now_ms // int(interval_s * 1000)
        sampled = 0
        for stream_id in stream_ids:
            room = RoomKeys.of(self._prefix, stream_id)
            gate = f"{room.base}:an:slot:{slot}"
            if not await self._redis.set(gate, 1, nx=True, ex=max(2, int(interval_s * 3))):
                continue
            viewers = int(await self._redis.hget(room.state, "viewers") or 0)
            await record_viewers(
                self._redis, counters_key(self._prefix, stream_id), minute_of(now_ms), viewers,
                int(interval_s * 1000),
            )  # fmt: skip
            sampled += 1
        return sampled

    async def counters(self, stream_id: str) -> dict[tuple[int, str], int]:
        """The room's counters in Redis as ``{(minute_ms, metric): value}``."""
        return await read_counters(self._redis, counters_key(self._prefix, stream_id))


async def record_viewers(redis: Redis, key: str, minute: int, viewers: int, span_ms: int) -> None:
    """Add one viewer sample (count over ``span_ms``) to the minute's sums and peak."""
    async with redis.pipeline(transaction=False) as p:
        p.hincrby(key, f"{minute}|viewer_samples", 1)
        p.hincrby(key, f"{minute}|viewer_sum", viewers)
        p.hincrby(key, f"{minute}|watch_ms", viewers * span_ms)
        p.hget(key, f"{minute}|viewers_peak")
        p.expire(key, TTL_S)
        replies = await p.execute()
    if int(replies[3] or 0) < viewers:  # one sampler per slot: no race on the peak
        await redis.hset(key, f"{minute}|viewers_peak", str(viewers))


async def read_counters(redis: Redis, key: str) -> dict[tuple[int, str], int]:
    """A room's counters hash as ``{(minute_ms, metric): value}``."""
    raw = await redis.hgetall(key)
    out: dict[tuple[int, str], int] = {}
    for field, value in raw.items():
        minute, _, metric = field.decode().partition("|")
        out[(int(minute), metric)] = int(value)
    return out


class AnalyticsRollup:
    """Flushes the tally, samples viewers of the live rooms and copies counters into SQL.

    Rooms ``rooms()`` names are followed, then ``linger_s`` more so a show's last minute lands.
    """

    def __init__(
        self,
        tally: ShowTally,
        store: CounterStore,
        rooms: Callable[[], Iterable[str]],
        interval_s: float = 5.0,
        linger_s: float = 120.0,
    ) -> None:
        self._tally = tally
        self._store = store
        self._rooms = rooms
        self._interval = interval_s
        self._linger = linger_s
        self._following: dict[str, float] = {}

    async def run(self) -> None:
        """Roll up every ``interval_s`` until cancelled (run it supervised)."""
        while True:
            try:
                await self.roll_once()
            except Exception:  # a Redis or SQL hiccup must not end the task: next pass retries
                log.exception("analytics roll-up pass failed")
            await asyncio.sleep(self._interval)

    async def roll_once(self) -> None:
        """One pass: flush, sample the live rooms, store every followed room's counters."""
        now = time.monotonic()
        live = list(self._rooms())
        for stream_id in live:
            self._following[stream_id] = now + self._linger
        await self._tally.flush()
        await self._tally.sample_viewers(live, self._interval)
        for stream_id, until in list(self._following.items()):
            await self.roll(stream_id)
            if until < now:
                del self._following[stream_id]

    async def roll(self, stream_id: str) -> None:
        """Copy one room's counters (after flushing this process's tally) into SQL."""
        await self._tally.flush()
        await self._store.store(stream_id, await self._tally.counters(stream_id))


async def forget_counters(redis: Redis, prefix: str, stream_id: str) -> None:
    """Drop a room's counters in Redis (a rehearsal's, before the stream becomes a real show)."""
    await redis.delete(counters_key(prefix, stream_id))
