"""Fakes for hub unit tests: an in-memory transport and a catalogue (Redis stays real)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

from chat.protocol import Frame, decode, encode
from inventory.catalog import ProductView, StreamView
from inventory.errors import NotFound


async def answered(member: Any) -> None:
    """Wait until the member's sale commands, which run beside its next frames, are answered."""
    await asyncio.gather(*member.in_flight)


class FakeConnection:
    """chat.member.ClientConnection in memory; ``backlog`` simulates a client that stops reading."""

    def __init__(self, backlog: int = 0) -> None:
        self.frames: list[Frame] = []
        self.backlog = backlog
        self.closed: tuple[int, str] | None = None
        self.limit = 1 << 20
        self.arrived = asyncio.Event()

    def send_frame(self, frame: Frame, corked: bool = False) -> bool:
        """Record the frame unless the simulated buffer is full (corked or not: in order)."""
        if self.backlog > self.limit:
            return False
        self.frames.append(frame)
        self.arrived.set()
        return True

    def buffered_bytes(self) -> int:
        """The simulated backlog."""
        return self.backlog

    async def close(self, code: int, reason: str) -> None:
        """Remember the close code."""
        self.closed = (code, reason)

    def events(self) -> list[dict[str, Any]]:
        """Every event received, batches unpacked, in order."""
        out: list[dict[str, Any]] = []
        for f in self.frames:
            msg = decode(f.payload)
            out.extend(msg["events"] if msg["type"] == "batch" else [msg])
        return out

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        """Events of one type."""
        return [e for e in self.events() if e["type"] == kind]

    async def wait_for(
        self, pred: Callable[[list[dict[str, Any]]], bool], wait_s: float = 5.0
    ) -> list[dict[str, Any]]:
        """Wait until ``pred(events)`` holds; returns the events."""
        deadline = time.monotonic() + wait_s
        while True:
            evs = self.events()
            if pred(evs):
                return evs
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; got {[e['type'] for e in evs]}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), 0.05)
            except TimeoutError:
                pass


class FakeCatalog:
    """Streams and products in a dict."""

    def __init__(self) -> None:
        self.streams: dict[str, StreamView] = {}
        self.products: dict[int, ProductView] = {
            1: ProductView(
                1, "Red scarf", "<b>warm</b>", 1999, "USD", "/img/1.png", None, "hostess"
            )
        }

    def add_stream(self, stream_id: str, host_id: str = "hostess") -> None:
        """Create a live stream."""
        self.streams[stream_id] = StreamView(stream_id, host_id, "Show", "live")

    async def get_stream(self, stream_id: str) -> StreamView | None:
        """One stream or None."""
        return self.streams.get(stream_id)

    async def get_product(self, product_id: int) -> ProductView:
        """One product or NotFound."""
        if product_id not in self.products:
            raise NotFound(f"product {product_id} not found")
        return self.products[product_id]


def frame(type_: str, **fields: Any) -> bytes:
    """A client frame."""
    return encode({"type": type_, **fields})


class HashSale:
    """A sale as the room describes it in ``sale`` events (id and remaining stock)."""

    def __init__(self, sale_id: int, remaining: int) -> None:
        self.id = sale_id
        self.remaining = remaining

    def to_json(self) -> dict[str, object]:
        """The event's ``sale`` field."""
        return {"id": self.id, "remaining": self.remaining}


class HashSales:
    """chat.salefeed.RoomSales reading a sale's stock from its Redis hash; no SQL, no buying.

    Hub unit tests drive sale events by hand; the real service is tested with the app.
    """

    def __init__(self, redis: Any, prefix: str) -> None:
        self._redis = redis
        self._prefix = prefix

    async def buy(self, *args: Any, **kwargs: Any) -> Any:
        """Not in hub unit tests."""
        raise NotImplementedError

    async def remaining_many(self, sale_ids: Sequence[int]) -> list[int | None]:
        """The ``remaining`` field of each sale's hash."""
        from flashsale.keys import SaleKeys

        out: list[int | None] = []
        for sale_id in sale_ids:
            left = await self._redis.hget(SaleKeys.of(self._prefix, sale_id).meta, "remaining")
            out.append(None if left is None else int(left))
        return out

    async def get_sale(self, sale_id: int) -> HashSale:
        """The sale's id and stock."""
        (left,) = await self.remaining_many([sale_id])
        return HashSale(sale_id, left or 0)

    async def stream_of(self, sale_id: int) -> str | None:
        """Events name their stream in hub unit tests."""
        return None

    async def sales_for_stream(self, stream_id: str) -> list[Any]:
        """No sale shows in snapshots."""
        return []

    async def live_views(self, records: Sequence[Any]) -> list[Any]:
        """No sale shows in snapshots."""
        return []

    async def phase(self, sale_id: int, known: int = 0) -> None:
        """No phase events: tests/chat/test_sale_events.py runs them on the real service."""
        return None

    async def phases(self, known: Sequence[tuple[int, int]]) -> list[None]:
        """No phase events (see ``phase``)."""
        return [None for _ in known]

    async def active_sale_ids(self) -> list[int]:
        """No sale is watched."""
        return []
