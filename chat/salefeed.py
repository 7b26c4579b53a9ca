"""Turns flash-sale events into room events: phase changes once, stock and buyers throttled."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.protocol import encode
from chat.saleannouncer import SaleAnnouncer
from flashsale.events import SaleEvent
from flashsale.keys import SaleKeys

if TYPE_CHECKING:
    from flashsale.service import SaleService

log = logging.getLogger("livesell.chat")

#: Sale event kinds that may change a sale's phase (a buy that leaves stock cannot).
PHASE_CHANGES = ("scheduled", "opened", "closed", "sold_out", "cancelled", "expired")
MAX_BUYERS_SHOWN = 5


@dataclass(slots=True)
class _Stock:
    stream_id: str | None
    bought: int = 0
    buyers: list[str | None] = field(default_factory=list)


class SaleFeed:
    """Implements the room side of ``flashsale.events.SaleObserver``.

    ``observe`` never blocks the buyer: a change that may move the sale to another phase pokes
    the SaleAnnouncer, which publishes sequenced ``sale`` events; stock changes only mark the
    sale dirty, and ``flush_stock`` (called at most 5 times a second) sends the current
    remaining stock, read fresh from Redis, with the recent buyers. So a sale selling 10,000
    units a second still costs each room 5 frames/s.
    """

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        room_log: RoomLog,
        keys_of: Callable[[str], RoomKeys],
        sweep_s: float = 1.0,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._keys_of = keys_of
        self._sales: SaleService | None = None
        self.announcer = SaleAnnouncer(redis, room_log, keys_of, sweep_s)
        self._dirty: dict[int, _Stock] = {}

    def attach(self, sales: SaleService) -> None:
        """Use ``sales`` to describe sales in events (called once the service exists)."""
        self._sales = sales
        self.announcer.sales = sales

    @property
    def sales(self) -> SaleService | None:
        """The attached sale service, if any."""
        return self._sales

    def observe(self, event: SaleEvent) -> None:
        """Take one sale event without blocking."""
        # The stream may be unknown to this process (a buy here of a sale created elsewhere):
        # the announcer and the stock flush find it in the sale's own state.
        if event.kind in PHASE_CHANGES:
            self.announcer.poke(event.sale_id)
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
        """Announce phase changes of sales in their rooms (see SaleAnnouncer)."""
        await self.announcer.run()

    async def flush_stock(self) -> None:
        """Broadcast one ``stock`` event per sale that changed since the last flush."""
        dirty, self._dirty = self._dirty, {}
        if not dirty:
            return
        items = list(dirty.items())
        async with self._redis.pipeline(transaction=False) as p:
            for sale_id, _ in items:
                p.hmget(SaleKeys.of(self._prefix, sale_id).meta, ["remaining", "stream"])
            live = await p.execute()
            for (sale_id, stock), (left, stream) in zip(items, live, strict=True):
                stream_id = stock.stream_id or (stream.decode() if stream else None)
                if left is None or not stream_id:
                    continue
                event = {
                    "type": "stock",
                    "sale_id": sale_id,
                    "remaining": int(left),
                    "bought": stock.bought,
                    "buyers": stock.buyers,
                }
                p.publish(self._keys_of(stream_id).channel, encode(event))
            await p.execute()
