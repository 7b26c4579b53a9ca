"""A per-key async memo that loads each key once, however many callers ask at the same time.

A plain "if key not in cache: cache[key] = await load()" lets every caller that arrives before
the first load ends run its own load: when a sale opens, thousands of buyers of the same sale
arrive in one event-loop turn and each queued three SQL reads (the burst took 18 s, not 0.5 s).
Here the first caller's load is shared by all of them; a failed load is not kept.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


async def settle_with(fut: asyncio.Future[V], load: Awaitable[V]) -> V:
    """Await ``load`` and end ``fut`` the same way: its value, its error, or cancelled."""
    try:
        value = await load
    except asyncio.CancelledError:
        fut.cancel()
        raise
    except BaseException as exc:
        fut.set_exception(exc)
        fut.exception()  # retrieved: asyncio must not log it when nobody was waiting
        raise
    fut.set_result(value)
    return value


class Memo(Generic[K, V]):
    """Values that never change once loaded (a sale's stream, its host), loaded once per key."""

    def __init__(self, max_entries: int = 100_000) -> None:
        self._max = max_entries
        self._values: dict[K, V] = {}
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K, load: Callable[[], Awaitable[V]]) -> V:
        """The value for ``key``, from ``load()`` run once even under concurrent callers."""
        while True:
            try:
                return self._values[key]
            except KeyError:
                pass
            pending = self._loading.get(key)
            if pending is None:
                break
            # shield: a waiter cancelled must not cancel the load the others share. (Not
            # asyncio.wait: it unhooks its callback in O(waiters), quadratic in a rush.)
            try:
                return await asyncio.shield(pending)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not pending.cancelled() or (task is not None and task.cancelling()):
                    raise
            # The loader was cancelled, not this waiter: go round and load it here.
        fut: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = fut
        try:
            value = await settle_with(fut, load())
        finally:
            del self._loading[key]
        self.put(key, value)
        return value

    def put(self, key: K, value: V) -> None:
        """Remember a value learned elsewhere (a sale created in this process)."""
        if len(self._values) >= self._max:
            self._values.clear()
        self._values[key] = value

    def known(self, key: K) -> V | None:
        """The value if loaded, without loading it."""
        return self._values.get(key)
