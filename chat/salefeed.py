"""Turns flash-sale events into room events: lifecycle in order, stock and buyers throttled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis

from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.protocol import encode
from flashsale.events import SaleEvent
from flashsale.keys import SaleKeys

if TYPE_CHECKING:
    from flashsale.service import SaleService

log = logging.getLogger("livesell.chat")

#: Sale event kinds that become sequenced ``sale`` events (the rest only move the stock).
LIFECYCLE = ("scheduled", "opened", "closed", "sold_out")
MAX_BUYERS_SHOWN = 5


@dataclass(slots=True)
class _Stock:
    stream_id: str
    bought: int = 0
    buyers: list[str | None] = field(default_factory=list)


class SaleFeed:
    """Implements the room side of ``flashsale.events.SaleObserver``.

    ``observe`` never blocks the buyer: lifecycle events go to a bounded queue that one task
    publishes in order; stock changes only mark the sale dirty, and ``flush_stock`` (called at
    most 5 times a second) sends the current remaining stock, read fresh from Redis, with the
    recent buyers. So a sale selling 10,000 units a second still costs each room 5 frames/s.
    """

    def __init__(
        self, redis: Redis, prefix: str, room_log: RoomLog, keys_of: Callable[[str], RoomKeys]
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._log = room_log
        self._keys_of = keys_of
        self._sales: SaleService | None = None
        self._queue: asyncio.Queue[SaleEvent] = asyncio.Queue(maxsize=10_000)
        self._dirty: dict[int, _Stock] = {}

    def attach(self, sales: SaleService) -> None:
        """Use ``sales`` to describe sales in events (called once the service exists)."""
        self._sales = sales

    @property
    def sales(self) -> SaleService | None:
        """The attached sale service, if any."""
        return self._sales

    def observe(self, event: SaleEvent) -> None:
        """Take one sale event without blocking."""
        if event.stream_id is None:
            return
        if event.kind in LIFECYCLE:
            try:
                self._queue.put_nowait(event)
            except asyncio.QueueFull:
                log.warning("sale feed full; dropped %s of sale %s", event.kind, event.sale_id)
        if event.kind != "scheduled":
            stock = self._dirty.get(event.sale_id)
            if stock is None:
                stock = self._dirty[event.sale_id] = _Stock(event.stream_id)
            if event.kind == "reserved":
                stock.bought += event.qty
                if len(stock.buyers) < MAX_BUYERS_SHOWN:
                    # Anonymous unless the buyer opted in: never the user id.
                    stock.buyers.append(event.public_name)

    async def run(self) -> None:
        """Publish lifecycle events in order, each with the sale's current description."""
        while True:
            event = await self._queue.get()
            try:
                await self._publish_lifecycle(event)
            except Exception:
                log.exception("could not publish sale %s %s", event.sale_id, event.kind)

    async def _publish_lifecycle(self, event: SaleEvent) -> None:
        assert event.stream_id is not None
        sale: dict[str, Any] = {"id": event.sale_id, "remaining": event.remaining}
        if self._sales is not None:
            sale = (await self._sales.get_sale(event.sale_id)).to_json()
        if event.kind == "sold_out":
            sale["remaining"] = 0
        await self._log.publish(
            self._keys_of(event.stream_id),
            {"type": "sale", "phase": event.kind, "sale": sale, "at_ms": event.at_ms},
        )

    async def flush_stock(self) -> None:
        """Broadcast one ``stock`` event per sale that changed since the last flush."""
        dirty, self._dirty = self._dirty, {}
        if not dirty:
            return
        items = list(dirty.items())
        async with self._redis.pipeline(transaction=False) as p:
            for sale_id, _ in items:
                p.hget(SaleKeys.of(self._prefix, sale_id).meta, "remaining")
            remaining = await p.execute()
            for (sale_id, stock), left in zip(items, remaining, strict=True):
                if left is None:
                    continue
                event = {
                    "type": "stock",
                    "sale_id": sale_id,
                    "remaining": int(left),
                    "bought": stock.bought,
                    "buyers": stock.buyers,
                }
                p.publish(self._keys_of(stock.stream_id).channel, encode(event))
            await p.execute()
