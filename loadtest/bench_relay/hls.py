"""HLS glass-to-glass in the relay benchmark, measured with the frame counter stamped in pixels.

The recording relay writes the live playlist to a folder (as a CDN origin would serve it). An
:class:`HlsViewer` follows it like a player: it joins at the live edge, the segment that leaves
``HOLD-BACK`` (or, without one, ``LIVE_SYNC`` target durations, as the room sets hls.js's
``liveSyncDurationCount``) between its start and the playlist's end; then it fetches each new
segment once, as it is listed, decodes every frame with PyAV and reads its counter.

Two figures per frame, both against the publisher's capture time of that counter (one process,
one monotonic clock):

- ``decoded``: the wall time the frame is decoded on the viewer;
- ``shown``: the wall time a player would show it, on a playback clock that starts when the
  first frame is decoded and runs at the frames' own timestamps, pushed back whenever a frame is
  not decoded in time (a stall). This is what a viewer sees; it includes the hold-back buffer.
"""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import av
from av import VideoFrame

from loadtest.bench_relay.media import read_counter

LIVE_SYNC = 2
POLL_S = 0.05


@dataclass
class Playlist:
    """The parts of a live media playlist a player needs."""

    target_s: float = 0.0
    hold_back_s: float | None = None
    first_seq: int = 0
    init: str | None = None
    segments: list[tuple[float, str]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Playlist:
        """Parse the playlist ``text``."""
        p = cls()
        duration = 0.0
        for line in text.splitlines():
            if line.startswith("#EXT-X-TARGETDURATION:"):
                p.target_s = float(line.split(":", 1)[1])
            elif line.startswith("#EXT-X-MEDIA-SEQUENCE:"):
                p.first_seq = int(line.split(":", 1)[1])
            elif line.startswith("#EXT-X-SERVER-CONTROL:"):
                for attr in line.split(":", 1)[1].split(","):
                    name, _, value = attr.partition("=")
                    if name == "HOLD-BACK":
                        p.hold_back_s = float(value)
            elif line.startswith("#EXT-X-MAP:"):
                p.init = line.split('"')[1]
            elif line.startswith("#EXTINF:"):
                duration = float(line[8:].split(",")[0])
            elif line and not line.startswith("#"):
                p.segments.append((duration, line))
        return p


class Follower:
    """Which segments a live player fetches next: from the live edge on, each exactly once."""

    def __init__(self, live_sync: int = LIVE_SYNC) -> None:
        self.live_sync = live_sync
        self.next_seq: int | None = None

    def start_index(self, p: Playlist) -> int:
        """The live edge: the last segment that leaves the hold-back before the playlist's end."""
        hold_back = p.hold_back_s if p.hold_back_s is not None else self.live_sync * p.target_s
        left = 0.0
        for i in range(len(p.segments) - 1, -1, -1):
            left += p.segments[i][0]
            if left >= hold_back:
                return i
        return 0

    def new(self, p: Playlist) -> list[str]:
        """The segment URIs of ``p`` not fetched yet, in order (none before the live edge)."""
        if not p.segments:
            return []
        if self.next_seq is None:
            self.next_seq = p.first_seq + self.start_index(p)
        # If the player fell behind the sliding window, it jumps to what is still listed.
        begin = max(0, self.next_seq - p.first_seq)
        fresh = [uri for _, uri in p.segments[begin:]]
        self.next_seq = max(self.next_seq, p.first_seq + len(p.segments))
        return fresh


def _decode(init: bytes, segment: bytes) -> list[tuple[int, float, float]]:
    """(counter, seconds of media time, monotonic time decoded) of every frame of a segment."""
    out: list[tuple[int, float, float]] = []
    with av.open(io.BytesIO(init + segment), "r", format="mp4") as container:
        for frame in container.decode(video=0):
            if isinstance(frame, VideoFrame):
                decoded = time.monotonic()
                media_s = float(frame.time) if frame.time is not None else 0.0
                out.append((read_counter(frame), media_s, decoded))
    return out


class HlsViewer:
    """Follows a live playlist through ``fetch`` (URI -> bytes, None if absent) and decodes it."""

    def __init__(self, fetch: Callable[[str], bytes | None], live_sync: int = LIVE_SYNC) -> None:
        self.fetch = fetch
        self.follower = Follower(live_sync)
        self.fetched: list[str] = []
        self.inits: dict[str, bytes] = {}
        self.frames: list[tuple[int, float, float]] = []
        self.segment_s: list[float] = []
        self.target_s = 0.0

    async def poll(self) -> None:
        """Read the playlist once; fetch and decode each segment it newly lists."""
        text = await asyncio.to_thread(self.fetch, "index.m3u8")
        if text is None:
            return
        p = Playlist.parse(text.decode())
        if p.init is None:
            return
        self.target_s = p.target_s
        if p.init not in self.inits:  # a player fetches the init section once
            init = await asyncio.to_thread(self.fetch, p.init)
            if init is None:
                return
            self.inits[p.init] = init
        durations = {uri: d for d, uri in p.segments}
        for uri in self.follower.new(p):
            body = await asyncio.to_thread(self.fetch, uri)
            if body is None:
                continue  # deleted from the window before we got to it
            self.fetched.append(uri)
            self.segment_s.append(durations[uri])
            self.frames += await asyncio.to_thread(_decode, self.inits[p.init], body)

    async def run(self, until: float) -> None:
        """Poll like a player until ``until`` (monotonic)."""
        while time.monotonic() < until:
            await self.poll()
            await asyncio.sleep(POLL_S)

    def shown(self) -> list[tuple[int, float]]:
        """(counter, monotonic time a player shows it): a playback clock with stalls."""
        out: list[tuple[int, float]] = []
        offset: float | None = None  # wall time minus media time
        for counter, media_s, decoded in self.frames:
            if offset is None or media_s + offset < decoded:
                offset = decoded - media_s  # starts, or stalls until the frame is there
            out.append((counter, media_s + offset))
        return out


def _ms(values: list[float]) -> dict[str, int]:
    ordered = sorted(values)
    return {
        "p50": round(1000 * ordered[len(ordered) // 2]),
        "p95": round(1000 * ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]),
    }


async def watch(folder: Path, until: float, sent_at: dict[int, float]) -> dict[str, Any]:
    """Follow ``folder``'s live playlist until ``until``; the HLS glass-to-glass figures."""

    def fetch(uri: str) -> bytes | None:
        try:
            return (folder / uri).read_bytes()
        except FileNotFoundError:
            return None

    viewer = HlsViewer(fetch)
    await viewer.run(until)
    decoded = [t - sent_at[c] for c, _, t in viewer.frames if c in sent_at]
    shown = [t - sent_at[c] for c, t in viewer.shown() if c in sent_at]
    if not decoded:
        return {"segments": 0}
    return {
        "segments": len(viewer.fetched),
        "frames": len(decoded),
        "segment_s": round(sum(viewer.segment_s) / len(viewer.segment_s), 2),
        "target_duration_s": viewer.target_s,
        "live_sync_segments": LIVE_SYNC,
        "glass_to_glass_decoded_ms": _ms(decoded),
        "glass_to_glass_shown_ms": _ms(shown),
    }
