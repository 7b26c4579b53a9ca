"""Fakes for hub unit tests: an in-memory transport and a catalogue (Redis stays real)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from chat.protocol import Frame, decode, encode
from inventory.catalog import ProductView, StreamView
from inventory.errors import NotFound


class FakeConnection:
    """chat.member.ClientConnection in memory; ``backlog`` simulates a client that stops reading."""

    def __init__(self, backlog: int = 0) -> None:
        self.frames: list[Frame] = []
        self.backlog = backlog
        self.closed: tuple[int, str] | None = None
        self.limit = 1 << 20
        self.arrived = asyncio.Event()

    def send_frame(self, frame: Frame) -> bool:
        """Record the frame unless the simulated buffer is full."""
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
            1: ProductView(1, "Red scarf", "<b>warm</b>", 1999, "USD", "/img/1.png")
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
