"""Turns flash-sale events into room events: each phase change once, stock and buyers throttled.

flashsale/lua/phase.lua decides by Redis's clock whether a sale moved on (scheduled, countdown,
opened, sold_out, restocked, closed) and numbers each transition once. Every process looks:
right after a local open, close, buy that sold out, cancel or expiry (the feed's pokes), when
the clock alone moves a sale on (a countdown ends, a window runs out), and in a sweep of every
active sale. chat/lua/sale_events.lua then publishes the transitions a room has not had yet, so
if the process that saw a change dies before telling the room, the next one to look does.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from chat.history import RoomLog
from chat.keys import RoomKeys
from flashsale.events import SaleEvent
from inventory.errors import NotFound

if TYPE_CHECKING:
    from flashsale.phases import PhaseReport, Transition
    from flashsale.service import BuyResult
    from flashsale.view import SaleView
    from inventory.ledger import SaleRecord

log = logging.getLogger("livesell.chat")

#: Sale event kinds that may change a sale's phase (a buy that leaves stock cannot).
PHASE_CHANGES = ("scheduled", "opened", "closed", "sold_out", "cancelled", "expired")
MAX_BUYERS_SHOWN = 5
#: A sale whose phase the clock changes is looked at this soon after the change is due.
CLOCK_SLACK_S = 0.005
#: Sales the clock will not move (scheduled with no start, closed) are swept once in this many
#: sweeps: only another process changes them, and it announces that itself; the sweep is for
#: when it died first. The others (the clock times them too) are swept every time.
QUIET_SWEEPS = 10


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

    async def stream_of(self, sale_id: int) -> str | None:
        """The stream a sale sells in (None: none); SaleNotFound for an unknown sale."""
        ...

    async def sales_for_stream(self, stream_id: str) -> list[SaleRecord]:
        """The stream's sales not known to be closed, for the join snapshot."""
        ...

    async def live_views(self, records: Sequence[SaleRecord]) -> list[SaleView]:
        """The sales with their live state read now from Redis."""
        ...

    async def remaining_many(self, sale_ids: Sequence[int]) -> list[int | None]:
        """The live remaining stock of each sale (None: no live state)."""
        ...

    async def phase(self, sale_id: int, known: int = 0) -> PhaseReport | None:
        """Record the sale's phase transition if it has one; those after ``known``."""
        ...

    async def phases(self, known: Sequence[tuple[int, int]]) -> list[PhaseReport | None]:
        """``phase`` for each (sale id, known), in one round trip."""
        ...

    async def active_sale_ids(self) -> list[int]:
        """Every sale the background workers watch."""
        ...


class SocialEvents(Protocol):
    """Publishes group and coupon events in their rooms (``chat.social.SocialAnnouncer``)."""

    async def publish(self, events: Sequence[SaleEvent]) -> int:
        """Publish each event once in its room; returns how many were published now."""
        ...


@dataclass(slots=True)
class Stock:
    """What changed in one sale's stock since the last flush."""

    #: None when this process has not seen the sale's stream yet (asked at the flush).
    stream_id: str | None
    bought: int = 0
    buyers: list[str | None] = field(default_factory=list)


class SaleFeed:
    """The room's ``flashsale.events.SaleObserver``: buffers sale events for the announcer.

    It is built before the sale service (which reports to it) and needs nothing itself, so the
    two are wired by their constructors alone. ``sale_event`` never blocks the buyer: a change
    that may move the sale to another phase is a poke; stock changes only mark the sale dirty.
    """

    def __init__(self) -> None:
        self._poked: set[int] = set()
        self.wake = asyncio.Event()
        self._dirty: dict[int, Stock] = {}
        self._social: list[SaleEvent] = []

    def sale_event(self, event: SaleEvent) -> None:
        """flashsale.events.SaleObserver: take one sale event without blocking."""
        # The stream may be unknown here (a buy in this process of a sale created in another):
        # the announcer finds it in the sale's own state.
        if event.kind in PHASE_CHANGES:
            self._poked.add(event.sale_id)
            self.wake.set()
        if event.kind.startswith(("group_", "coupon_")):
            self._social.append(event)
            self.wake.set()
        if event.kind != "scheduled":
            stock = self._dirty.get(event.sale_id)
            if stock is None:
                stock = self._dirty[event.sale_id] = Stock(event.stream_id)
            if event.kind == "reserved":
                stock.bought += event.qty
                if len(stock.buyers) < MAX_BUYERS_SHOWN:
                    # Anonymous unless the buyer opted in: never the user id.
                    stock.buyers.append(event.public_name)

    def mark_stock(self, sale_id: int, stream_id: str) -> None:
        """Send the sale's live stock at the next flush even if no unit moved."""
        if sale_id not in self._dirty:
            self._dirty[sale_id] = Stock(stream_id)

    def take_poked(self) -> set[int]:
        """The sales poked since the last call."""
        poked, self._poked = self._poked, set()
        return poked

    def take_social(self) -> list[SaleEvent]:
        """The group and coupon events heard since the last call, in order."""
        social, self._social = self._social, []
        return social

    def take_stock(self) -> dict[int, Stock]:
        """The sales whose stock changed since the last call, and what changed."""
        dirty, self._dirty = self._dirty, {}
        return dirty


def sale_event(view: SaleView, t: Transition) -> dict[str, Any]:
    """The room's ``sale`` event for one transition: the sale as it was at that moment."""
    at = dataclasses.replace(
        view,
        state=t.state,
        starts_at_ms=t.starts_at_ms,
        ends_at_ms=t.ends_at_ms,
        remaining=t.remaining,
    )
    return {"type": "sale", "phase": t.phase, "sale": at.to_json(t.at_ms), "at_ms": t.at_ms}


class SaleAnnouncer:
    """Publishes sale events in the rooms: each phase transition once, ``stock`` throttled.

    ``run`` looks at sales when poked, when their clock says so, and every ``sweep_s``.
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
        social: SocialEvents,
        sweep_s: float = 1.0,
    ) -> None:
        self._feed = feed
        self._social = social
        self._sales = sales
        self._log = room_log
        self._keys_of = keys_of
        self._sweep_s = sweep_s
        #: Per sale: the last transition number its room is known to have published.
        self._known: dict[int, int] = {}
        #: Per sale: the fields that never change (product, price, quantity...), read once.
        self._views: dict[int, SaleView] = {}
        #: Per sale: when (loop time) the clock alone moves it to its next phase.
        self._due: dict[int, float] = {}
        #: Sales the clock will not move on (see QUIET_SWEEPS).
        self._quiet: set[int] = set()
        self._sweeps = 0

    async def run(self) -> None:
        """Look at poked, due and (every ``sweep_s``) all active sales, until cancelled."""
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            now = loop.time()
            wake_at = min([next_sweep, *self._due.values()])
            if not self._feed.wake.is_set() and wake_at > now:
                try:
                    await asyncio.wait_for(self._feed.wake.wait(), wake_at - now)
                except TimeoutError:
                    pass
            self._feed.wake.clear()
            now = loop.time()
            todo = self._feed.take_poked() | {s for s, t in self._due.items() if t <= now}
            if now >= next_sweep:
                next_sweep = now + self._sweep_s
                await self.sweep(todo)
            for sale_id in sorted(todo):
                try:
                    await self.check(sale_id)
                except Exception:
                    log.warning("sale announcer: sale %d not checked", sale_id, exc_info=True)
                    self._due[sale_id] = loop.time() + self._sweep_s
            social = self._feed.take_social()
            if social:
                try:
                    await self._social.publish(social)
                except Exception:
                    log.warning("sale announcer: %d group/coupon events lost", len(social),
                                exc_info=True)  # fmt: skip

    async def sweep(self, skip: set[int]) -> list[int]:
        """Look at the active sales not in ``skip`` (quiet ones less often) in one round trip.

        Returns the sales looked at.
        """
        try:
            active = set(await self._sales.active_sale_ids())
        except Exception:
            log.warning("sale announcer: cannot list active sales", exc_info=True)
            return []
        for gone in set(self._known) - active - skip:
            self._forget(gone)
        full = self._sweeps % QUIET_SWEEPS == 0
        self._sweeps += 1
        ids = sorted(s for s in active - skip if full or s not in self._quiet)
        try:
            reports = await self._sales.phases([(s, self._known.get(s, 0)) for s in ids])
        except Exception:
            log.warning("sale announcer: sweep of %d sales failed", len(ids), exc_info=True)
            return []
        for sale_id, report in zip(ids, reports, strict=True):
            try:
                await self._apply(sale_id, report)
            except Exception:
                log.warning("sale announcer: sale %d not checked", sale_id, exc_info=True)
        return ids

    def _forget(self, sale_id: int) -> None:
        self._known.pop(sale_id, None)
        self._views.pop(sale_id, None)
        self._due.pop(sale_id, None)
        self._quiet.discard(sale_id)

    async def check(self, sale_id: int) -> None:
        """Record the sale's transition if it has one, and publish what its room lacks."""
        await self._apply(sale_id, await self._sales.phase(sale_id, self._known.get(sale_id, 0)))

    async def _apply(self, sale_id: int, report: PhaseReport | None) -> None:
        if report is None:
            self._forget(sale_id)
            return
        self._due.pop(sale_id, None)
        if report.next_change_ms is None:
            self._quiet.add(sale_id)
        else:
            self._quiet.discard(sale_id)
            delay = report.next_change_ms / 1000 + CLOCK_SLACK_S
            self._due[sale_id] = asyncio.get_running_loop().time() + delay
        if report.stream_id is None or not report.transitions:
            self._known[sale_id] = report.number
            return
        view = self._views.get(sale_id)
        if view is None:
            try:
                view = self._views[sale_id] = await self._sales.get_sale(sale_id)
            except NotFound:
                self._known[sale_id] = report.number
                return
        numbered = [(t.number, sale_event(view, t)) for t in report.transitions]
        self._known[sale_id] = await self._log.publish_once(
            self._keys_of(report.stream_id), sale_id, numbered
        )
        # A transition carries the stock of its moment; published late (its process died, or
        # buys came between), it would leave pages on an old count: a fresh ``stock`` follows.
        self._feed.mark_stock(sale_id, report.stream_id)

    async def _stream_of(self, sale_id: int) -> str | None:
        try:
            return await self._sales.stream_of(sale_id)
        except NotFound:
            return None

    async def flush_stock(self) -> None:
        """Broadcast one ``stock`` event per sale that changed since the last flush."""
        items = list(self._feed.take_stock().items())
        if not items:
            return
        remaining = await self._sales.remaining_many([sale_id for sale_id, _ in items])
        events = []
        for (sale_id, stock), left in zip(items, remaining, strict=True):
            if left is None:
                continue
            stream_id = stock.stream_id or await self._stream_of(sale_id)
            if stream_id is None:
                continue
            event = {
                "type": "stock",
                "sale_id": sale_id,
                "remaining": left,
                "bought": stock.bought,
                "buyers": stock.buyers,
            }
            events.append((self._keys_of(stream_id), event))
        await self._log.broadcast_many(events)
