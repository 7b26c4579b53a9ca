"""One room's local fan-out: its clients, the events waiting for the next frame, delivery."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from chat.keys import RoomKeys
from chat.member import ClientConnection, Delivery, Member, trim_frame
from chat.moderation import WordFilter
from chat.protocol import Frame, batch_payload
from inventory.catalog import StreamView


class FanoutMeter(Protocol):
    """Hears how late the fan-out delivers events (web/metrics.py). Cheap; never raises."""

    def delivery_lag(self, seconds: float) -> None:
        """One event reached this process's sockets ``seconds`` after Redis published it."""
        ...


class NullFanoutMeter:
    """A meter that measures nothing (the default)."""

    def delivery_lag(self, seconds: float) -> None:
        """Ignore the lag."""


class LocalRoom:
    """This process's view of one room: its clients and the events waiting for the next frame."""

    def __init__(self, stream_id: str, keys: RoomKeys, meter: FanoutMeter | None = None) -> None:
        self.stream_id = stream_id
        self.keys = keys
        self._meter = meter or NullFanoutMeter()
        self.stream: StreamView | None = None
        self.ready = asyncio.Event()
        self.failed: BaseException | None = None
        self.live: dict[Member, ClientConnection] = {}
        self.joining: set[Member] = set()
        self.lagging: set[Member] = set()
        self.pending: list[bytes] = []
        #: Publish times (µs, Redis's clock) of the pending events that carry one.
        self.stamps: list[int] = []
        self.first_seq = 0
        self.last_seq = 0
        self.flush_handle: asyncio.TimerHandle | None = None
        self.last_flush = 0.0
        #: Seconds the last flush took (it scales with the number of local sockets).
        self.flush_cost = 0.0
        self.words = WordFilter([])
        #: The newest snapshot/replay seq a member went live with; frames with older events
        #: must be filtered per member (rare: only right after a join).
        self.guard_seq = 0
        self.empty_since = time.monotonic()
        self.frames_sent = 0
        self.deliveries = 0

    def members(self) -> list[Member]:
        """Every member in any delivery state."""
        return [*self.live, *self.joining, *self.lagging]

    def size(self) -> int:
        """Local client count (every socket: an idle room has none)."""
        return len(self.live) + len(self.joining) + len(self.lagging)

    def viewers(self) -> int:
        """Local sockets of the audience: the stream's host (its studio, its phone) is no viewer."""
        host = None if self.stream is None else self.stream.host_id
        hosts = sum(1 for m in self.members() if m.identity is not None and m.user_id == host)
        return self.size() - hosts

    def push(self, data: bytes, seq: int, window_s: float, published_us: int = 0) -> None:
        """Queue one encoded event for the next frame (``published_us``: when, if known)."""
        if published_us:
            self.stamps.append(published_us)
        if seq:
            self.first_seq = self.first_seq or seq
            self.last_seq = seq
        self.pending.append(data)
        if self.flush_handle is None:
            # At most one frame per window per room, but an event after a quiet spell goes out
            # at once (still batched with whatever arrives in the same read burst).
            # The window also stretches to twice the last flush's cost: with thousands of local
            # sockets a flush takes tens of ms (one write syscall per socket), and frames must
            # not come so often that writing them starves everything else in the process.
            loop = asyncio.get_running_loop()
            delay = self.last_flush + max(window_s, 2 * self.flush_cost) - loop.time()
            self.flush_handle = loop.call_later(max(0.0, delay), self.flush)

    def flush(self) -> None:
        """Build one frame from the pending events and write it to every live client."""
        self.flush_handle = None
        started = time.perf_counter()
        self.last_flush = asyncio.get_running_loop().time()
        events, self.pending = self.pending, []
        stamps, self.stamps = self.stamps, []
        if not events:
            return
        payload = events[0] if len(events) == 1 else batch_payload(events)
        frame = Frame(payload, self.first_seq, self.last_seq)
        self.first_seq = self.last_seq = 0
        overflow: list[Member] = []
        if frame.first_seq and frame.first_seq <= self.guard_seq:
            overflow = self._send_filtered(frame)
        else:
            # The hot loop: one buffer check and one write of the same bytes per socket.
            for member, conn in self.live.items():
                if not conn.send_frame(frame):
                    overflow.append(member)
        for member in self.joining:
            member.pending.append(frame)
        self.frames_sent += 1
        written = len(self.live) - len(overflow)
        self.deliveries += written * len(events)
        for member in overflow:
            self.lag(member)
        if stamps and written:
            self._measure(stamps)
        self.flush_cost = time.perf_counter() - started

    def _measure(self, stamps: list[int]) -> None:
        # Wall clock against Redis's: one host's clock, or NTP-synced hosts (skew adds in).
        # Measured after the write loop: the lag of the last local socket written.
        now_us = time.time_ns() // 1000
        for published_us in stamps:
            self._meter.delivery_lag(max(0, now_us - published_us) / 1e6)

    def _send_filtered(self, frame: Frame) -> list[Member]:
        # A member that just joined may already hold some of these events (they were in its
        # snapshot or replay, read while this batch was in flight): skip or trim for it.
        overflow: list[Member] = []
        trimmed: dict[int, Frame | None] = {}
        for member, conn in self.live.items():
            after = member.after_seq
            out: Frame | None = frame
            if frame.first_seq <= after:
                if after not in trimmed:
                    trimmed[after] = trim_frame(frame, after)
                out = trimmed[after]
            if out is not None and not conn.send_frame(out):
                overflow.append(member)
        return overflow

    def lag(self, member: Member) -> None:
        """Stop feeding a client whose buffer is full; the hub resyncs or drops it later."""
        # Never block the room for one client, and never buffer for it without bound.
        self.live.pop(member, None)
        member.state = Delivery.LAGGING
        member.lag_since = time.monotonic()
        self.lagging.add(member)
