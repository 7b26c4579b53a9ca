"""Benchmark media: stamped 640x480 VP8 video, the publishing peer, and two kinds of viewer."""

from __future__ import annotations

import asyncio
import fractions
import time
from typing import Any

import av
import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import AudioStreamTrack, MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from av import VideoFrame

# A benchmark may reach into the relay's internals: light viewers tap frames the same way.
from stream.aiortc_internals import install_frame_tap
from stream.codecs import is_keyframe

WIDTH, HEIGHT, FPS = 640, 480, 30
BITS, BLOCK_W, BLOCK_H = 16, 80, 60
CLOCK = 90000

# -- media: a counter stamped into the pixels, plus texture so VP8 spends ~1-1.5 Mbps ---------

_rng = np.random.default_rng(7)
# 8x8-pixel random tiles, a fresh set each frame and scrolling: ~1 Mbps from aiortc's VP8 encoder.
_TEXTURE = [
    np.kron(
        _rng.integers(30, 220, ((HEIGHT - 2 * BLOCK_H) // 8, WIDTH // 8)), np.ones((8, 8))
    ).astype(np.uint8)
    for _ in range(8)
]
_UV = np.full((HEIGHT // 2, WIDTH), 128, np.uint8)


def stamp(n: int) -> VideoFrame:
    """A 640x480 frame whose top blocks spell ``n`` in binary, over moving texture."""
    y = np.empty((HEIGHT, WIDTH), np.uint8)
    for bit in range(BITS):
        row, col = divmod(bit, 8)
        value = 235 if n >> bit & 1 else 16
        y[row * BLOCK_H : (row + 1) * BLOCK_H, col * BLOCK_W : (col + 1) * BLOCK_W] = value
    y[2 * BLOCK_H :] = np.roll(_TEXTURE[n % len(_TEXTURE)], 8 * n, axis=1)
    return VideoFrame.from_ndarray(np.vstack([y, _UV]), format="yuv420p")


def read_counter(frame: VideoFrame) -> int:
    """The counter :func:`stamp` wrote."""
    y = frame.to_ndarray(format="yuv420p")
    n = 0
    for bit in range(BITS):
        row, col = divmod(bit, 8)
        cy, cx = row * BLOCK_H + BLOCK_H // 2, col * BLOCK_W + BLOCK_W // 2
        if y[cy - 10 : cy + 10, cx - 10 : cx + 10].mean() > 128:
            n |= 1 << bit
    return n


class CounterTrack(MediaStreamTrack):
    """Stamped video paced at FPS; remembers when each frame was captured."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self.n = 0
        self.start: float | None = None
        self.sent_at: dict[int, float] = {}

    async def recv(self) -> VideoFrame:  # type: ignore[override]
        """The next frame, on schedule."""
        if self.start is None:
            self.start = time.monotonic()
        n = self.n
        await asyncio.sleep(max(0.0, self.start + n / FPS - time.monotonic()))
        frame = stamp(n)
        frame.pts, frame.time_base = n * CLOCK // FPS, fractions.Fraction(1, CLOCK)
        self.sent_at[n] = time.monotonic()
        self.n += 1
        return frame


class Peer:
    """An aiortc peer with host candidates only."""

    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))

    async def offer(self) -> str:
        """Our SDP offer."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, sdp: str) -> None:
        """Apply the relay's answer."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp, "answer"))

    async def close(self) -> None:
        """Hang up."""
        await self.pc.close()


class Publisher(Peer):
    """The host: stamped video (VP8, or ``codec``) plus Opus audio."""

    def __init__(self, codec: str = "video/vp8") -> None:
        super().__init__()
        self.video = CounterTrack()
        video = self.pc.addTransceiver(self.video, direction="sendonly")
        caps = RTCRtpSender.getCapabilities("video").codecs
        video.setCodecPreferences([c for c in caps if c.mimeType.lower() == codec])
        self.pc.addTransceiver(AudioStreamTrack(), direction="sendonly")

    async def kbps(self) -> float:
        """The video bit rate sent so far."""
        for report in (await self.pc.getStats()).values():
            if getattr(report, "type", "") == "outbound-rtp" and report.kind == "video":
                elapsed = time.monotonic() - (self.video.start or time.monotonic())
                return 8 * report.bytesSent / max(elapsed, 1e-3) / 1000
        return 0.0


class Viewer(Peer):
    """Decodes every frame and records (counter, arrival)."""

    def __init__(self) -> None:
        super().__init__()
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.counters: list[int] = []
        self.arrivals: list[float] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.pc.on("track", lambda t: self.tasks.append(asyncio.ensure_future(self._eat(t))))

    async def _eat(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    self.counters.append(read_counter(frame))  # type: ignore[arg-type]
                    self.arrivals.append(time.monotonic())
        except MediaStreamError:
            pass

    async def close(self) -> None:
        """Hang up and stop consuming."""
        await super().close()
        for t in self.tasks:
            t.cancel()


class LightViewer(Peer):
    """Receives every frame but decodes only its first keyframe (to learn the counter).

    Its receivers are tapped like the relay's, so a viewer costs little CPU and a 2-core machine
    can host 100 of them. Latency is measured to a frame's complete arrival, not its decode.
    """

    def __init__(self) -> None:
        super().__init__()
        video = self.pc.addTransceiver("video", direction="recvonly")
        audio = self.pc.addTransceiver("audio", direction="recvonly")
        install_frame_tap(video.receiver, self._frame)
        install_frame_tap(audio.receiver, lambda *args: None)
        self.counters: list[int] = []
        self.arrivals: list[float] = []
        self._base: tuple[int, int] | None = None

    def _frame(self, codec: RTCRtpCodecParameters, data: bytes, ts: int) -> None:
        now = time.monotonic()
        if self._base is None:
            if not is_keyframe("video/vp8", data):
                return
            decoder: Any = av.CodecContext.create("libvpx", "r")
            frames = decoder.decode(av.Packet(data))
            if not frames:
                return
            self._base = (read_counter(frames[0]), ts)
        n0, ts0 = self._base
        self.counters.append(n0 + round((ts - ts0) / (CLOCK // FPS)))
        self.arrivals.append(now)
