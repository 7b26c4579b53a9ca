"""Reads shared by concurrent callers, each of which gets a read that began after it asked.

When a show goes live a thousand viewers join per second, and each join's snapshot read the
room's sales and group offers from Redis (and, on a cold cache, SQL) on its own. A plain memo
cannot be shared here: a joiner must see sales at least as new as the room events its
snapshot covers, so a read that began before it asked is too old for it. So at most one read
per key runs at a time; everyone who asks meanwhile waits for the next read, which starts when
the current one ends and serves them all (the first of them to wake runs it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

from flashsale.memo import settle_with

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: Loads the value for a version at least as new as every caller's.
Load = Callable[[int], Awaitable[V]]


class _Next(Generic[V]):
    """The read that starts after the running one: its future and the newest version asked."""

    __slots__ = ("fut", "version")

    def __init__(self, fut: asyncio.Future[V], version: int) -> None:
        self.fut = fut
        self.version = version


class SharedRead(Generic[K, V]):
    """One read per key at a time, shared by every caller that asked before it began."""

    def __init__(self) -> None:
        self._running: dict[K, asyncio.Future[V]] = {}
        self._next: dict[K, _Next[V]] = {}

    async def get(self, key: K, version: int, load: Load[V]) -> V:
        """A value read after this call began, for a version of at least ``version``."""
        while True:
            running = self._running.get(key)
            if running is None:
                # Whoever waits for a next read asked before now: this read serves them too.
                nxt = self._next.pop(key, None)
                if nxt is None:
                    return await self._lead(key, version, load, None)
                return await self._lead(key, max(version, nxt.version), load, nxt.fut)
            nxt = self._next.get(key)
            if nxt is None:
                nxt = self._next[key] = _Next(asyncio.get_running_loop().create_future(), version)
            else:
                nxt.version = max(nxt.version, version)
            await self._settled(running)
            if self._next.get(key) is nxt:
                continue  # nobody has started it yet: start it (or wait for the read running)
            try:
                # shield: a waiter cancelled must not cancel the read the others share.
                return await asyncio.shield(nxt.fut)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if not nxt.fut.cancelled() or (task is not None and task.cancelling()):
                    raise
            # The reader was cancelled, not this caller: go round (and maybe read it here).

    @staticmethod
    async def _settled(fut: asyncio.Future[V]) -> None:
        """Wait for ``fut`` to end, however it ends (only this caller's own cancel escapes)."""
        try:
            await asyncio.shield(fut)
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        except Exception:  # its own callers hear of it; the next read tries again
            pass

    async def _lead(self, key: K, version: int, load: Load[V], fut: asyncio.Future[V] | None) -> V:
        fut = fut or asyncio.get_running_loop().create_future()
        self._running[key] = fut
        try:
            return await settle_with(fut, load(version))
        finally:
            del self._running[key]
