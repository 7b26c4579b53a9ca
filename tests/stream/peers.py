"""Real aiortc test peers: a host publishing frame-counter video, and viewers decoding it."""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import Awaitable, Callable

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
)
from aiortc.contrib.media import MediaBlackhole
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from av import VideoFrame

WIDTH, HEIGHT = 320, 240
BITS = 16
BLOCK = 40  # 8 blocks per row, 2 rows: big enough to survive VP8 at any sane bitrate
VIDEO_CLOCK = 90000


def stamp(counter: int) -> VideoFrame:
    """A yuv420p frame whose top blocks spell ``counter`` in binary (white 1, black 0)."""
    y = np.full((HEIGHT, WIDTH), 128, np.uint8)
    for bit in range(BITS):
        row, col = divmod(bit, 8)
        y[row * BLOCK : (row + 1) * BLOCK, col * BLOCK : (col + 1) * BLOCK] = (
            235 if counter >> bit & 1 else 16
        )
    # A moving bar below, so the encoder sees motion like a real camera.
    x = (counter * 4) % WIDTH
    y[2 * BLOCK + 10 :, x : x + 16] = 200
    uv = np.full((HEIGHT // 2, WIDTH), 128, np.uint8)
    return VideoFrame.from_ndarray(np.vstack([y, uv]), format="yuv420p")


def read_counter(frame: VideoFrame) -> int:
    """Decode the counter stamped by :func:`stamp`."""
    y = frame.to_ndarray(format="yuv420p")[: frame.height]
    if frame.width != WIDTH or frame.height != HEIGHT:
        raise ValueError(f"unexpected size {frame.width}x{frame.height}")
    value = 0
    half = BLOCK // 2
    for bit in range(BITS):
        row, col = divmod(bit, 8)
        cy, cx = row * BLOCK + half, col * BLOCK + half
        if y[cy - 8 : cy + 8, cx - 8 : cx + 8].mean() > 128:
            value |= 1 << bit
    return value


class CounterTrack(MediaStreamTrack):
    """Video at ``fps`` whose frames carry their sequence number in the pixels."""

    kind = "video"

    def __init__(self, fps: int = 30) -> None:
        super().__init__()
        self.fps = fps
        self.count = 0
        self._start: float | None = None
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> VideoFrame:  # type: ignore[override]
        """The next stamped frame, paced at ``fps``."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        n = self.count
        delay = self._start + n / self.fps - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        frame = stamp(n)
        frame.pts = n * VIDEO_CLOCK // self.fps
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
        self.sent_at[n] = time.monotonic()
        self.count += 1
        return frame


def _config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])


SignalFn = Callable[[str], Awaitable[str]]


class HostPeer:
    """A publishing host: counter video plus (silent) Opus audio."""

    def __init__(self, fps: int = 30, audio: bool = True, codec: str | None = None) -> None:
        self.pc = RTCPeerConnection(_config())
        self.session_id = ""
        self.video = CounterTrack(fps)
        transceiver = self.pc.addTransceiver(self.video, direction="sendonly")
        if codec is not None:
            from aiortc import RTCRtpSender

            caps = RTCRtpSender.getCapabilities("video").codecs
            transceiver.setCodecPreferences([c for c in caps if c.mimeType.lower() == codec])
        if audio:
            self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")

    async def offer(self) -> str:
        """Create the WHIP offer (all candidates gathered)."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer: str) -> None:
        """Apply the server's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()


class ViewerPeer:
    """A WHEP viewer that decodes video and records the counters of the frames it got."""

    def __init__(self, audio: bool = True) -> None:
        self.pc = RTCPeerConnection(_config())
        self.pc.addTransceiver("video", direction="recvonly")
        if audio:
            self.pc.addTransceiver("audio", direction="recvonly")
        self.counters: list[int] = []
        self.arrivals: list[float] = []
        self.audio_frames = 0
        self.unreadable = 0
        self.video_ended = asyncio.Event()
        self.first_frame = asyncio.Event()
        self.created_at = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._blackhole = MediaBlackhole()
        self.pc.on("track", self._on_track)

    def _on_track(self, track: MediaStreamTrack) -> None:
        consume = self._video(track) if track.kind == "video" else self._audio(track)
        self._tasks.append(asyncio.ensure_future(consume))

    async def _video(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                assert isinstance(frame, VideoFrame)
                try:
                    self.counters.append(read_counter(frame))
                except ValueError:
                    self.unreadable += 1
                    continue
                self.arrivals.append(time.monotonic())
                self.first_frame.set()
        except MediaStreamError:
            self.video_ended.set()

    async def _audio(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                await track.recv()
                self.audio_frames += 1
        except MediaStreamError:
            pass

    async def offer(self) -> str:
        """Create the WHEP offer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return self.pc.localDescription.sdp

    async def accept(self, answer: str) -> None:
        """Apply the server's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(answer, "answer"))

    async def wait_frames(self, n: int, within_s: float) -> None:
        """Wait until ``n`` frames were decoded."""
        deadline = time.monotonic() + within_s
        while len(self.counters) < n:
            if time.monotonic() > deadline:
                raise AssertionError(f"only {len(self.counters)} of {n} frames in {within_s} s")
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
