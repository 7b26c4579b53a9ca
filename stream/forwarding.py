"""Encoded-frame fan-out: one publisher track to many viewer tracks, never decoding.

Each viewer has a :class:`ForwardedTrack` with a bounded queue. Its ``recv()`` hands
``av.Packet``s to aiortc's RTCRtpSender, which packetises them with the codec's ``pack()``.
A video viewer starts at a keyframe; one that falls behind is skipped to the next keyframe, so it
never slows the others (the fan-out itself never waits).
"""

from __future__ import annotations

import asyncio
import fractions
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from stream.codecs import is_keyframe
from stream.keyframes import KeyframeRequester
from stream.metrics import StreamMetrics

log = logging.getLogger("livesell.stream")

#: Default per-viewer queue bounds, in frames: about half a second of video or audio.
VIDEO_QUEUE = 15
AUDIO_QUEUE = 25

#: ``listener(kind, mime, data, rtp_timestamp, keyframe, received_at)``: sees every frame
#: (the recorder); it must return at once, like a viewer's ``offer``.
FrameListener = Callable[[str, str, bytes, int, bool, float], None]


@dataclass(slots=True)
class EncodedFrame:
    """One encoded frame, shared read-only by every viewer."""

    packet: av.Packet
    keyframe: bool
    size: int
    received_at: float


class ForwardedTrack(MediaStreamTrack):
    """A viewer's copy of a publisher track: a bounded queue of encoded frames."""

    def __init__(self, forwarder: Forwarder, max_queue: int) -> None:
        super().__init__()
        self.kind = forwarder.kind
        self._forwarder = forwarder
        self._max_queue = max_queue
        self._queue: deque[EncodedFrame] = deque()
        self._waiter: asyncio.Future[None] | None = None
        # Frames are taken only once the sender pulls (its transport is up), so a viewer still
        # connecting does not overflow its queue; video then waits for a keyframe.
        self._armed = False
        self._need_keyframe = forwarder.kind == "video"
        self.first_frame_at: float | None = None
        self.frames = 0
        self.dropped = 0

    def offer(self, frame: EncodedFrame) -> None:
        """Queue ``frame`` for this viewer, or drop it per the keyframe policy."""
        if not self._armed or self.readyState != "live":
            return
        if self._need_keyframe:
            if not frame.keyframe:
                return
            self._need_keyframe = False
        if len(self._queue) >= self._max_queue:
            self._fall_behind(frame)
            if self._need_keyframe:
                return
        self._queue.append(frame)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _fall_behind(self, frame: EncodedFrame) -> None:
        if self.kind == "video" and not frame.keyframe:
            # Skip to the next keyframe: whatever is queued depends on frames we would drop.
            self.dropped += len(self._queue) + 1
            self._forwarder.metrics.dropped_frames += len(self._queue) + 1
            self._queue.clear()
            self._need_keyframe = True
            self._forwarder.want_keyframe()
            return
        dropped = len(self._queue) if frame.keyframe and self.kind == "video" else 1
        for _ in range(dropped):
            self._queue.popleft()
        self.dropped += dropped
        self._forwarder.metrics.dropped_frames += dropped

    async def recv(self) -> av.Packet:  # type: ignore[override]
        """The next encoded frame for this viewer's sender."""
        if not self._armed:
            self._armed = True
            if self._need_keyframe:
                self._forwarder.want_keyframe()
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        frame = self._queue.popleft()
        now = time.monotonic()
        if self.first_frame_at is None:
            self.first_frame_at = now
        self.frames += 1
        metrics = self._forwarder.metrics
        metrics.frames_out += 1
        metrics.bytes_out.add(frame.size)
        metrics.queue_delay(now - frame.received_at)
        return frame.packet

    def stop(self) -> None:
        """End this viewer's track (its sender then stops pulling)."""
        super().stop()
        self._forwarder.detach(self)
        self._queue.clear()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)


class Forwarder:
    """Fans one publisher track's encoded frames out to every viewer's ForwardedTrack."""

    def __init__(
        self,
        kind: str,
        metrics: StreamMetrics,
        keyframes: KeyframeRequester | None = None,
        max_queue: int | None = None,
    ) -> None:
        self.kind = kind
        self.metrics = metrics
        self.keyframes = keyframes
        self.max_queue = max_queue or (VIDEO_QUEUE if kind == "video" else AUDIO_QUEUE)
        self.codec: RTCRtpCodecParameters | None = None
        self.last_frame_at: float | None = None
        self._tracks: list[ForwardedTrack] = []
        self._listeners: list[FrameListener] = []
        self._time_base = fractions.Fraction(1, 90000)
        self._mime = ""

    def track(self) -> ForwardedTrack:
        """A new viewer track fed by this forwarder."""
        track = ForwardedTrack(self, self.max_queue)
        self._tracks.append(track)
        return track

    def listen(self, listener: FrameListener) -> None:
        """Also hand every frame to ``listener`` (the broadcast's recorder)."""
        self._listeners.append(listener)

    def detach(self, track: ForwardedTrack) -> None:
        """Stop feeding ``track``."""
        if track in self._tracks:
            self._tracks.remove(track)

    def want_keyframe(self) -> None:
        """A viewer needs a keyframe (joining, lagging, or its PLI/FIR)."""
        if self.keyframes is not None:
            self.keyframes.request()

    def publish(self, codec: RTCRtpCodecParameters, data: bytes, timestamp: int) -> None:
        """Take one complete encoded frame from the publisher and offer it to every viewer."""
        if codec is not self.codec:
            self.codec = codec
            self._mime = codec.mimeType.lower()
            self._time_base = fractions.Fraction(1, codec.clockRate)
            self.metrics.codecs[self.kind] = codec.mimeType
        now = time.monotonic()
        self.last_frame_at = now
        packet = av.Packet(data)
        packet.pts = timestamp
        packet.time_base = self._time_base
        keyframe = is_keyframe(self._mime, data)
        size = len(data)
        self.metrics.frames_in += 1
        self.metrics.bytes_in.add(size)
        if keyframe and self.kind == "video":
            self.metrics.keyframes_in += 1
            if self.keyframes is not None:
                self.keyframes.keyframe_seen()
        frame = EncodedFrame(packet, keyframe, size, now)
        for track in self._tracks:
            track.offer(frame)
        for listener in self._listeners:
            listener(self.kind, self._mime, data, timestamp, keyframe, now)

    def close(self) -> None:
        """End every viewer track."""
        self._listeners.clear()
        for track in list(self._tracks):
            track.stop()
