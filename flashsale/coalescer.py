"""Coalesce concurrent buys of one sale into one script call, each buyer keeping its answer."""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from inventory.tasks import cancel_all, supervise

BuyRequest = tuple[str, str, int, int]  # user, idempotency key, qty, member (1/0)
#: A request to one sale's batch script (a buy, a group join, a coupon claim).
Req = TypeVar("Req")
RunBatch = Callable[[int, Sequence[Req]], Awaitable[list[Any]]]


class Coalescer(Generic[Req]):
    """Batches buys per sale.

    At low load each buy runs alone at once. Under load up to ``max_inflight`` calls per sale
    run concurrently and requests that arrive meanwhile ride the next call together, so the
    round-trip and script overhead are shared while no request waits on a timer.
    """

    def __init__(
        self, run_batch: RunBatch[Req], max_batch: int = 64, max_inflight: int = 4
    ) -> None:
        self._run = run_batch
        self._max_batch = max_batch
        self._max_inflight = max_inflight
        self._pending: dict[int, deque[tuple[Req, asyncio.Future[Any]]]] = defaultdict(deque)
        self._inflight: dict[int, int] = defaultdict(int)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False

    async def submit(self, sale_id: int, request: Req) -> Any:
        """Queue one buy and wait for its own reply."""
        if self._closed:
            raise RuntimeError("coalescer closed")
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[sale_id].append((request, fut))
        if self._inflight[sale_id] < self._max_inflight:
            self._inflight[sale_id] += 1
            task = supervise(self._drain(sale_id), f"buy-batch-{sale_id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return await fut

    async def _drain(self, sale_id: int) -> None:
        queue = self._pending[sale_id]
        try:
            while queue:
                batch = [queue.popleft() for _ in range(min(self._max_batch, len(queue)))]
                live = [(req, fut) for req, fut in batch if not fut.cancelled()]
                if not live:
                    continue
                try:
                    replies = await self._run(sale_id, [req for req, _ in live])
                except BaseException as exc:
                    for _, fut in live:
                        if not fut.done():
                            fut.set_exception(exc if isinstance(exc, Exception) else RuntimeError())
                    if not isinstance(exc, Exception):
                        raise
                    continue
                for (_, fut), reply in zip(live, replies, strict=True):
                    if not fut.done():
                        fut.set_result(reply)
        finally:
            self._inflight[sale_id] -= 1
            if not self._inflight[sale_id] and not queue:
                self._inflight.pop(sale_id, None)
                self._pending.pop(sale_id, None)

    async def close(self) -> None:
        """Stop every in-flight batch."""
        self._closed = True
        await cancel_all(list(self._tasks))
