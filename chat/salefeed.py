"""Turns flash-sale events into room events: lifecycle in order, stock and buyers throttled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from chat.history import RoomLog
from chat.keys import RoomKeys
from flashsale.events import SaleEvent

if TYPE_CHECKING:
    from flashsale.service import BuyResult, SaleView

log = logging.getLogger("livesell.chat")

#: Sale event kinds that become sequenced ``sale`` events (the rest only move the stock).
LIFECYCLE = ("scheduled", "opened", "closed", "sold_out")
MAX_BUYERS_SHOWN = 5


class RoomSales(Protocol):
    """What the room asks of the sale service (``flashsale.service.SaleService``)."""

    async def buy(
        self,
        sale_id: int,
        user_id: str,
        idempotency_key: str,
        qty: int = 1,
        public_name: str | None = None,
    ) -> BuyResult:
        """Reserve units, exactly as the HTTP buy does."""
        ...

    async def get_sale(self, sale_id: int) -> SaleView:
        """The sale with its live state."""
        ...

    async def active_sale_for_stream(self, stream_id: str) -> SaleView | None:
        """The stream's current sale, for the join snapshot."""
        ...

    async def remaining_many(self, sale_ids: Sequence[int]) -> list[int | None]:
        """The live remaining stock of each sale (None: no live state)."""
        ...


@dataclass(slots=True)
class Stock:
    """What changed in one sale's stock since the last flush."""

    stream_id: str
    bought: int = 0
    buyers: list[str | None] = field(default_factory=list)


class SaleFeed:
    """The room's ``flashsale.events.SaleObserver``: buffers sale events for the announcer.

    It is built before the sale service (which reports to it) and needs nothing itself, so the
    two are wired by their constructors alone. ``sale_event`` never blocks the buyer: lifecycle
    events go to a bounded queue published in order; stock changes only mark the sale dirty.
    """

    def __init__(self, max_queued: int = 10_000) -> None:
        self._queue: asyncio.Queue[SaleEvent] = asyncio.Queue(maxsize=max_queued)
        self._dirty: dict[int, Stock] = {}

    def sale_event(self, event: SaleEvent) -> None:
        """flashsale.events.SaleObserver: take one sale event without blocking."""
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
                stock = self._dirty[event.sale_id] = Stock(event.stream_id)
            if event.kind == "reserved":
                stock.bought += event.qty
                if len(stock.buyers) < MAX_BUYERS_SHOWN:
                    # Anonymous unless the buyer opted in: never the user id.
                    stock.buyers.append(event.public_name)

    async def next_lifecycle(self) -> SaleEvent:
        """The oldest lifecycle event not yet announced (waits for one)."""
        return await self._queue.get()

    def take_stock(self) -> dict[int, Stock]:
        """The sales whose stock changed since the last call, and what changed."""
        dirty, self._dirty = self._dirty, {}
        return dirty


class SaleAnnouncer:
    """Publishes the feed's events in the rooms: ``sale`` events in order, ``stock`` throttled.

    ``flush_stock`` (called at most 5 times a second) sends each changed sale's remaining stock,
    asked fresh from the sale service, with its recent buyers. So a sale selling 10,000 units a
    second still costs each room 5 frames/s.
    """

    def __init__(
        self,
        feed: SaleFeed,
        sales: RoomSales,
        room_log: RoomLog,
        keys_of: Callable[[str], RoomKeys],
    ) -> None:
        self._feed = feed
        self._sales = sales
        self._log = room_log
        self._keys_of = keys_of

    async def run(self) -> None:
        """Publish lifecycle events in order, each with the sale's current description."""
        while True:
            event = await self._feed.next_lifecycle()
            try:
                await self._publish_lifecycle(event)
            except Exception:
                log.exception("could not publish sale %s %s", event.sale_id, event.kind)

    async def _publish_lifecycle(self, event: SaleEvent) -> None:
        assert event.stream_id is not None
        sale = (await self._sales.get_sale(event.sale_id)).to_json()
        if event.kind == "sold_out":
            sale["remaining"] = 0
        await self._log.publish(
            self._keys_of(event.stream_id),
            {"type": "sale", "phase": event.kind, "sale": sale, "at_ms": event.at_ms},
        )

    async def flush_stock(self) -> None:
        """Broadcast one ``stock`` event per sale that changed since the last flush."""
        items = list(self._feed.take_stock().items())
        if not items:
            return
        remaining = await self._sales.remaining_many([sale_id for sale_id, _ in items])
        events = [
            (
                self._keys_of(stock.stream_id),
                {
                    "type": "stock",
                    "sale_id": sale_id,
                    "remaining": left,
                    "bought": stock.bought,
                    "buyers": stock.buyers,
                },
            )
            for (sale_id, stock), left in zip(items, remaining, strict=True)
            if left is not None
        ]
        await self._log.broadcast_many(events)
