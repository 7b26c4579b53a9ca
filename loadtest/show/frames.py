"""Decoded broadcast frames, and their deliveries accounted in bulk.

Thousands of viewers in one process receive the same bytes. A frame is decoded once; for
the common frame (chat and ephemeral events only) a viewer's share is a sequence check and
appending its arrival time. Every 200 ms the arrivals of each frame are turned into latency
samples and completeness counts in bulk, so a delivery costs well under a microsecond of the
generator's CPU and the generator measures the server, not itself.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import msgpack

from loadtest.show.completeness import Completeness
from loadtest.show.recorder import Recorder

#: Events a viewer need not act on one by one (all viewers' copies are the same).
PLAIN = frozenset(("chat", "stock", "viewers", "reactions"))
#: Latency samples from bulk arrivals are grouped to this resolution (10 us).
GROUP_NS = 10_000
CACHE_S = 2.0


class Frame:
    """One distinct frame: its events, the run's chat messages in it, pending arrivals."""

    __slots__ = ("arrivals", "chats", "events", "first_seq", "last_seq", "plain")

    def __init__(self, events: list[dict[str, Any]], marker: str) -> None:
        self.events = events
        self.plain = all(ev.get("type") in PLAIN for ev in events)
        seqs = [int(ev["seq"]) for ev in events if ev.get("type") == "chat" and "seq" in ev]
        self.first_seq = min(seqs, default=0)
        self.last_seq = max(seqs, default=0)
        self.chats: list[tuple[str, int]] = []
        for ev in events:
            text = ev.get("text", "") if ev.get("type") == "chat" else ""
            if text.startswith(marker):
                n, _, sent = text[len(marker) :].partition(":")
                self.chats.append((f"c{n}", int(sent)))
        self.arrivals: list[int] = []


class FrameBook:
    """The decode cache and the pending arrivals of every frame."""

    def __init__(self, rec: Recorder, comp: Completeness, marker: str, sale_id: int) -> None:
        self.rec = rec
        self.comp = comp
        self.marker = marker
        self.sale_id = sale_id
        self._cache: dict[bytes, Frame] = {}
        self._cache_at = time.monotonic()
        self._pending: list[Frame] = []

    def get(self, payload: bytes) -> Frame | None:
        """The decoded frame (None: not msgpack, counted as an error)."""
        frame = self._cache.get(payload)
        if frame is not None:
            return frame
        now = time.monotonic()
        if now - self._cache_at > CACHE_S:
            self._cache.clear()
            self._cache_at = now
        try:
            msg = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception:
            self.rec.error("bad_frame")
            return None
        frame = Frame(msg.get("events", []) if msg.get("type") == "batch" else [msg], self.marker)
        for ev in frame.events:  # once per distinct frame, not once per viewer
            kind = ev.get("type")
            if kind == "stock" and self.sale_id in (0, ev.get("sale_id")):
                self.rec.gauge("stock", ev.get("remaining", 0))
            elif kind == "viewers":
                self.rec.gauge("server_viewers", ev.get("count", 0))
        self._cache[payload] = frame
        return frame

    def arrived(self, frame: Frame, now: int) -> None:
        """A live viewer got every chat message of ``frame`` at ``now``."""
        if frame.chats:
            if not frame.arrivals:
                self._pending.append(frame)
            frame.arrivals.append(now)

    def arrived_one(self, msg_id: str, sent: int, now: int) -> None:
        """One message reached one viewer (the slow path: replays, mixed frames)."""
        self.comp.arrived(msg_id, sent, now)
        self.rec.latency("chat", sent, now)
        self.rec.count("chat_deliveries", now_ns=now)

    def flush(self) -> None:
        """Turn pending arrivals into latency samples and completeness counts."""
        pending, self._pending = self._pending, []
        for frame in pending:
            nows, frame.arrivals = frame.arrivals, []
            for msg_id, sent in frame.chats:
                groups = Counter((n - sent) // GROUP_NS for n in nows)
                self.rec.latency_many("chat", groups, GROUP_NS, nows[0])
                self.comp.arrived_many(msg_id, sent, nows)
                self.rec.count("chat_deliveries", len(nows), now_ns=nows[0])
