"""The Relay: owns every broadcast (publisher and viewers) of this process."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stream import aiortc_internals
from stream.broadcast import Broadcast, BroadcastConfig
from stream.codecs import parse_offer
from stream.errors import (
    AlreadyLive,
    NotPublishing,
    PreconditionFailed,
    RelayClosed,
    SessionNotFound,
    StreamFull,
)
from stream.lifecycle import UNPUBLISHED, NullLifecycle, StreamLifecycle
from stream.tasks import cancel, supervise

log = logging.getLogger("livesell.stream")


@dataclass(frozen=True, slots=True)
class SessionAnswer:
    """What a WHIP/WHEP POST returns: the new session's id, its SDP answer and its ETag."""

    session_id: str
    sdp: str
    etag: str


class Relay:
    """Accepts WHIP publishers and WHEP viewers and forwards encoded media between them."""

    def __init__(
        self,
        lifecycle: StreamLifecycle | None = None,
        *,
        ice_servers: Sequence[str] = (),
        media_timeout_s: float = 10.0,
        keyframe_interval_s: float = 0.5,
        video_queue: int | None = None,
        audio_queue: int | None = None,
        connect_timeout_s: float = 30.0,
        max_viewers_per_stream: int = 1000,
        max_viewers: int = 5000,
    ) -> None:
        aiortc_internals.check()
        # Every viewer session holds an aiortc peer (sockets, ICE, DTLS) from its first POST,
        # connected or not, so their number is capped per stream and for the whole relay.
        self._max_viewers_per_stream = max_viewers_per_stream
        self._max_viewers = max_viewers
        self._joining: dict[str, int] = {}
        self._lifecycle: StreamLifecycle = lifecycle or NullLifecycle()
        self._config = BroadcastConfig(
            ice_servers=tuple(ice_servers),
            media_timeout_s=media_timeout_s,
            keyframe_interval_s=keyframe_interval_s,
            video_queue=video_queue,
            audio_queue=audio_queue,
            connect_timeout_s=connect_timeout_s,
        )
        self._broadcasts: dict[str, Broadcast] = {}
        self._closing = False
        # Lifecycle events go through one queue so "live" always precedes "ended" for a stream.
        self._events: asyncio.Queue[Callable[[], Awaitable[None]] | None] = asyncio.Queue()
        self._notifier: asyncio.Task[None] | None = None
        self._enders: set[asyncio.Task[Any]] = set()

    # -- publishing --------------------------------------------------------------------------

    async def publish(self, stream_id: str, offer_sdp: str) -> SessionAnswer:
        """Start a broadcast from a WHIP offer; AlreadyLive when the stream has a publisher."""
        self._check_open()
        offer = parse_offer(offer_sdp)
        if stream_id in self._broadcasts:
            raise AlreadyLive(f"stream {stream_id!r} already has a publisher")
        if self._notifier is None:
            self._notifier = supervise(self._notify_loop(), "stream-lifecycle")
        holder: list[Broadcast] = []
        broadcast = Broadcast(
            stream_id,
            self._config,
            on_live=lambda: self._emit(self._lifecycle.stream_live, stream_id),
            on_end=lambda reason: self._end_soon(holder[0], reason),
        )
        holder.append(broadcast)
        # Reserve the stream before the first await, so a racing second publisher gets 409.
        self._broadcasts[stream_id] = broadcast
        try:
            answer = await broadcast.start(offer, offer_sdp)
        except BaseException:
            self._broadcasts.pop(stream_id, None)
            await broadcast.close()
            raise
        log.info("stream %s: publisher %s connected", stream_id, broadcast.publisher.id)
        return SessionAnswer(broadcast.publisher.id, answer, broadcast.publisher.etag)

    async def unpublish(self, stream_id: str, session_id: str) -> None:
        """End the broadcast (the publisher's WHIP DELETE)."""
        broadcast = self._broadcast(stream_id)
        if session_id != broadcast.publisher.id:
            raise SessionNotFound(f"no publisher session {session_id!r} on {stream_id!r}")
        await self._end(broadcast, UNPUBLISHED)

    # -- viewing -----------------------------------------------------------------------------

    async def watch(self, stream_id: str, offer_sdp: str) -> SessionAnswer:
        """Add a viewer from a WHEP offer; NotPublishing when nobody is live on the stream."""
        self._check_open()
        offer = parse_offer(offer_sdp)
        broadcast = self._broadcast(stream_id)
        # Offers still negotiating count too, so a burst of POSTs cannot slip past the cap.
        joining = self._joining.get(stream_id, 0)
        if len(broadcast.viewers) + joining >= self._max_viewers_per_stream:
            raise StreamFull(f"stream {stream_id!r} has its maximum of viewers")
        total = sum(len(b.viewers) for b in self._broadcasts.values())
        if total + sum(self._joining.values()) >= self._max_viewers:
            raise StreamFull("the relay has its maximum of viewers")
        self._joining[stream_id] = joining + 1
        try:
            viewer, answer = await broadcast.add_viewer(offer, offer_sdp)
        finally:
            left = self._joining[stream_id] - 1
            if left:
                self._joining[stream_id] = left
            else:
                del self._joining[stream_id]
        viewer.on_gone(
            lambda _reason: self._leave_soon(broadcast, viewer.id),
            connect_within_s=self._config.connect_timeout_s,
        )
        return SessionAnswer(viewer.id, answer, viewer.etag)

    async def leave(self, stream_id: str, session_id: str) -> None:
        """Disconnect one viewer (its WHEP DELETE)."""
        await self._broadcast(stream_id).remove_viewer(session_id)

    async def trickle(
        self, stream_id: str, session_id: str, fragment: str, if_match: str | None = None
    ) -> str:
        """Apply a trickle-ICE fragment to a session; return the session's ETag."""
        session = self._broadcast(stream_id).session(session_id)
        if if_match not in (None, "*", session.etag):
            raise PreconditionFailed("If-Match does not match the session's ETag")
        await session.trickle(fragment)
        return session.etag

    # -- state -------------------------------------------------------------------------------

    def is_live(self, stream_id: str) -> bool:
        """Whether ``stream_id`` has a publisher in this process."""
        return stream_id in self._broadcasts

    def metrics(self, stream_id: str) -> dict[str, Any] | None:
        """The stream's metrics, or None when it has no publisher here."""
        broadcast = self._broadcasts.get(stream_id)
        return broadcast.snapshot() if broadcast is not None else None

    def streams(self) -> list[str]:
        """Ids of the streams with a publisher here."""
        return list(self._broadcasts)

    async def close(self, drain_timeout_s: float = 5.0) -> None:
        """End every broadcast, closing every peer connection, and deliver the last events."""
        self._closing = True
        await asyncio.gather(
            *(self._end(b, "shutdown") for b in list(self._broadcasts.values())),
            return_exceptions=True,
        )
        if self._enders:
            await asyncio.gather(*self._enders, return_exceptions=True)
        if self._notifier is not None:
            self._events.put_nowait(None)
            try:
                await asyncio.wait_for(asyncio.shield(self._notifier), drain_timeout_s)
            except TimeoutError:
                log.warning("stream lifecycle events not delivered within %.1f s", drain_timeout_s)
            await cancel(self._notifier)

    # -- internals ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closing:
            raise RelayClosed("the relay is shutting down")

    def _broadcast(self, stream_id: str) -> Broadcast:
        broadcast = self._broadcasts.get(stream_id)
        if broadcast is None or broadcast.ended:
            raise NotPublishing(f"stream {stream_id!r} is not live")
        return broadcast

    async def _end(self, broadcast: Broadcast, reason: str) -> None:
        if broadcast.ended:
            return
        if self._broadcasts.get(broadcast.stream_id) is broadcast:
            del self._broadcasts[broadcast.stream_id]
        # A broadcast that ends within one watchdog tick of its first frame was still live:
        # announce it, so the room always hears "live" before "ended".
        broadcast.mark_live_if_media()
        went_live = broadcast.live
        await broadcast.close()
        log.info("stream %s ended: %s", broadcast.stream_id, reason)
        if went_live:
            self._emit(self._lifecycle.stream_ended, broadcast.stream_id, reason)

    def _end_soon(self, broadcast: Broadcast, reason: str) -> None:
        self._spawn(self._end(broadcast, reason), f"end:{broadcast.stream_id}")

    def _leave_soon(self, broadcast: Broadcast, session_id: str) -> None:
        async def leave() -> None:
            if session_id in broadcast.viewers:
                await broadcast.remove_viewer(session_id)

        self._spawn(leave(), f"leave:{broadcast.stream_id}")

    def _spawn(self, coro: Any, name: str) -> None:
        task = supervise(coro, name)
        self._enders.add(task)
        task.add_done_callback(self._enders.discard)

    def _emit(self, method: Callable[..., Awaitable[None]], *args: str) -> None:
        self._events.put_nowait(lambda: method(*args))

    async def _notify_loop(self) -> None:
        while (event := await self._events.get()) is not None:
            try:
                await event()
            except Exception:
                log.exception("stream lifecycle handler failed")
