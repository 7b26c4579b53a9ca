"""One connected client: who it is, its transport, its delivery state and its abuse budget."""

from __future__ import annotations

import asyncio
import enum
import time
from collections import deque
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Protocol

from chat.protocol import Frame, batch_payload, decode, encode


class ClientConnection(Protocol):
    """The transport the Hub writes to; the web layer wraps a websocket, tests fake it."""

    def send_frame(self, frame: Frame, corked: bool = False) -> bool:
        """Queue ``frame`` without blocking; False (nothing queued) when the buffer is full.

        ``corked``: the frame may wait until the end of this event-loop turn to share one
        write with the client's other frames of that turn (order is kept).
        """
        ...

    def buffered_bytes(self) -> int:
        """Bytes written but not yet sent to the client."""
        ...

    async def close(self, code: int, reason: str) -> None:
        """Close the connection with a websocket close code."""
        ...


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated user as the room sees it. ``role`` is the global token role."""

    user_id: str
    name: str
    role: str  # admin | host | viewer
    #: The token's id and issue time (0/"" when unknown), so a revoked token's sockets can go.
    token_id: str = ""
    issued_at: int = 0


@dataclass(frozen=True, slots=True)
class RoomLimits:
    """Tunable limits of the room (defaults are the documented ones)."""

    #: Chat token bucket per user per room: burst and sustained messages per second.
    chat_burst: float = 10
    chat_per_s: float = 2
    #: Every inbound frame of one connection (any type): burst and sustained per second.
    frames_burst: float = 60
    frames_per_s: float = 30
    #: Strikes (invalid frames, rejected messages) within ``strike_window_s`` before close 4008.
    max_strikes: int = 10
    strike_window_s: float = 30
    #: Reactions one connection may add per second (extra taps are silently dropped).
    reactions_per_s: int = 20
    #: Per-client send buffer: above ``max_buffer_bytes`` live frames are dropped and the client
    #: is resynced with a snapshot once it drains below ``resume_buffer_bytes``.
    max_buffer_bytes: int = 1 << 20
    resume_buffer_bytes: int = 64 << 10
    #: A client that stays over its buffer this long is disconnected (4009).
    lag_timeout_s: float = 10
    #: Events arriving within this window share one frame.
    batch_window_s: float = 0.05
    #: Stock updates per room per process are sent at most this often.
    stock_interval_s: float = 0.2
    #: Every process looks at every active sale this often (phase changes missed otherwise).
    sale_sweep_s: float = 1.0
    reactions_interval_s: float = 1.0
    viewers_interval_s: float = 2.0
    #: A room with no local clients keeps its subscription this long (cheap reconnects).
    idle_room_s: float = 30.0


class TokenBucket:
    """A local token bucket (no Redis): guards one connection's inbound frame rate."""

    __slots__ = ("_rate", "_size", "_tokens", "_ts")

    def __init__(self, size: float, rate: float) -> None:
        self._size = size
        self._rate = rate
        self._tokens = size
        self._ts = time.monotonic()

    def take(self, n: float = 1) -> bool:
        """Take ``n`` tokens if there are enough."""
        now = time.monotonic()
        self._tokens = min(self._size, self._tokens + (now - self._ts) * self._rate)
        self._ts = now
        if self._tokens >= n:
            self._tokens -= n
            return True
        return False


class Delivery(enum.Enum):
    """Where a member is in the room's delivery: catching up, live, set aside, or gone."""

    #: Reading its snapshot or replay; live frames queue in ``Member.pending`` meanwhile.
    JOINING = "joining"
    #: Receives every frame.
    LIVE = "live"
    #: Its buffer overflowed; frames are dropped until it drains and is resynced.
    LAGGING = "lagging"
    #: Left or was closed; nothing is sent any more.
    CLOSED = "closed"


#: Sale commands one client may have waiting at once; a further one waits for the first
#: to finish, which stops reading its socket (backpressure, bounded per client).
MAX_IN_FLIGHT = 16


class Member:
    """A client in a room. The Hub owns its delivery state; commands read its identity."""

    def __init__(
        self, stream_id: str, conn: ClientConnection, identity: Identity | None, limits: RoomLimits
    ) -> None:
        self.stream_id = stream_id
        self.conn = conn
        self.identity = identity
        #: The client's network address as the edge saw it ("" unknown): per-address limits.
        self.client = ""
        self.state = Delivery.JOINING
        #: Frames that arrived while the snapshot or replay was being read.
        self.pending: list[Frame] = []
        #: Sequenced events up to here were in the snapshot/replay; later frames start after it.
        self.after_seq = 0
        self.lag_since = 0.0
        self.frames = TokenBucket(limits.frames_burst, limits.frames_per_s)
        self.reactions = TokenBucket(limits.reactions_per_s, limits.reactions_per_s)
        self._strikes: deque[float] = deque()
        self._limits = limits
        #: Sale commands running beside the socket's next frames (``run_beside``).
        self.in_flight: set[asyncio.Task[None]] = set()

    @property
    def user_id(self) -> str | None:
        """The user id, or None when anonymous."""
        return None if self.identity is None else self.identity.user_id

    def send(self, event: dict[str, Any]) -> None:
        """Send a personal event (reply, error) to this client only."""
        # Replies go out even to a lagging client: they answer its own (rate-limited) requests,
        # and a lost buy_result would leave it guessing.
        if self.state is not Delivery.CLOSED:
            self.conn.send_frame(Frame(encode(event)), corked=True)

    async def run_beside(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` (which answers its own errors) while the socket's next frames are read.

        A client's taps then share a coalesced sale call and their replies one write, and its
        chat or ping does not wait behind a buy. Never more than ``MAX_IN_FLIGHT`` at once.
        """
        while len(self.in_flight) >= MAX_IN_FLIGHT:
            await asyncio.wait(self.in_flight, return_when=asyncio.FIRST_COMPLETED)
        task = asyncio.get_running_loop().create_task(work)
        self.in_flight.add(task)
        task.add_done_callback(self.in_flight.discard)

    def cancel_in_flight(self) -> None:
        """Stop what the client still waits for (it left: nobody would read the answers)."""
        for task in self.in_flight:
            task.cancel()

    def strike(self) -> bool:
        """Count one abuse strike; True when the client crossed the limit and must go."""
        now = time.monotonic()
        self._strikes.append(now)
        while self._strikes and now - self._strikes[0] > self._limits.strike_window_s:
            self._strikes.popleft()
        return len(self._strikes) >= self._limits.max_strikes

    def release_pending(self) -> None:
        """Write the frames queued during the join, skipping events already delivered."""
        pending, self.pending = self.pending, []
        for frame in pending:
            if frame.last_seq == 0 or frame.first_seq > self.after_seq:
                self.conn.send_frame(frame)
            else:
                trimmed = trim_frame(frame, self.after_seq)
                if trimmed is not None:
                    self.conn.send_frame(trimmed)


def trim_frame(frame: Frame, after_seq: int) -> Frame | None:
    """A copy of a frame without the sequenced events up to ``after_seq`` (None: nothing left).

    Only a client that just joined needs this, so decoding here costs nothing in steady state.
    """
    msg = decode(frame.payload)
    events = msg["events"] if msg.get("type") == "batch" else [msg]
    kept = [encode(e) for e in events if int(e.get("seq", 0)) == 0 or e["seq"] > after_seq]
    if not kept:
        return None
    seqs = [int(e["seq"]) for e in events if e.get("seq", 0) > after_seq]
    payload = kept[0] if len(kept) == 1 else batch_payload(kept)
    return Frame(payload, min(seqs, default=0), max(seqs, default=0))
