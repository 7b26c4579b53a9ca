"""Coalesce concurrent bids of many lots into one pipelined round trip, each bid keeping its answer.

The sale coalescer (``flashsale.coalescer``) batches one sale's buys: a rush on one sale rides a
few calls. A closing-second rush spreads over many lots, so batching per lot still made one
round trip per lot per turn, and each lot's batch was a handful of bids. Here every lot with
bids waiting gets its batch into the same call (the caller pipelines one script call per lot),
at most ``max_inflight`` such calls at a time; no request waits on a timer.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from inventory.tasks import cancel_all, supervise

Req = TypeVar("Req")
#: Runs every lot's batch; per lot the replies in order, or the error that lot's batch met.
RunMany = Callable[
    [Mapping[int, Sequence[Req]]], Awaitable[Mapping[int, "list[Any] | BaseException"]]
]


class LotBatcher(Generic[Req]):
    """Batches requests of many keys (lots) into shared calls of ``run_many``."""

    def __init__(self, run_many: RunMany[Req], max_batch: int = 64, max_inflight: int = 2) -> None:
        self._run = run_many
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: dict[int, deque[tuple[Req, asyncio.Future[Any]]]] = {}
        self._inflight = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    async def submit(self, key: int, request: Req) -> Any:
        """Queue one request of ``key`` and wait for its own reply."""
        if self._closed:
            raise RuntimeError("batcher closed")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.setdefault(key, deque()).append((request, fut))
        if self._inflight < self._max_inflight:
            self._inflight += 1
            task = supervise(self._drain(), "lot-bid-batch")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    def _take(self) -> dict[int, list[tuple[Req, asyncio.Future[Any]]]]:
        taken: dict[int, list[tuple[Req, asyncio.Future[Any]]]] = {}
        for key, queue in list(self._pending.items()):
            batch = [queue.popleft() for _ in range(min(self._max_batch, len(queue)))]
            if not queue:
                del self._pending[key]
            live = [(req, fut) for req, fut in batch if not fut.cancelled()]
            if live:
                taken[key] = live
        return taken

    async def _drain(self) -> None:
        try:
            while self._pending:
                taken = self._take()
                if not taken:
                    continue
                try:
                    results = await self._run({k: [r for r, _ in v] for k, v in taken.items()})
                except BaseException as exc:
                    for live in taken.values():
                        _fail(live, exc)
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for key, live in taken.items():
                    replies = results[key]
                    if isinstance(replies, BaseException):
                        _fail(live, replies)
                        continue
                    for (_, fut), reply in zip(live, replies, strict=True):
                        if not fut.done():
                            fut.set_result(reply)
        finally:
            # No await between the loop's last look at _pending and this: a request queued
            # meanwhile was either taken by the loop or finds a free slot and starts a drain.
            self._inflight -= 1

    async def close(self) -> None:
        """Stop every in-flight call."""
        self._closed = True
        await cancel_all(list(self._tasks))


def _fail(live: Sequence[tuple[Any, asyncio.Future[Any]]], exc: BaseException) -> None:
    for _, fut in live:
        if not fut.done():
            fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError("cancelled"))
