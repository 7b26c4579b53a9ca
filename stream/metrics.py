"""Per-stream relay metrics: viewers, bitrate in and out, keyframe requests, dropped frames."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any


class RateMeter:
    """Bytes per second over the last few whole seconds (cheap: one bucket per second)."""

    def __init__(self, window_s: int = 3) -> None:
        self._window = window_s
        self._buckets: deque[list[int]] = deque(maxlen=window_s + 1)
        self.total = 0

    def add(self, n: int) -> None:
        """Count ``n`` bytes now."""
        self.total += n
        sec = int(time.monotonic())
        if self._buckets and self._buckets[-1][0] == sec:
            self._buckets[-1][1] += n
        else:
            self._buckets.append([sec, n])

    def bits_per_second(self) -> int:
        """The mean bit rate over the last complete seconds."""
        now = int(time.monotonic())
        done = [b for s, b in self._buckets if now - self._window <= s < now]
        return 8 * sum(done) // self._window if done else 0


@dataclass
class StreamMetrics:
    """Counters for one broadcast; the relay updates them, ``snapshot()`` reports them."""

    stream_id: str
    started_at: float = field(default_factory=time.time)
    viewers: int = 0
    viewers_peak: int = 0
    viewers_total: int = 0
    frames_in: int = 0
    frames_out: int = 0
    dropped_frames: int = 0
    keyframes_in: int = 0
    bytes_in: RateMeter = field(default_factory=RateMeter)
    bytes_out: RateMeter = field(default_factory=RateMeter)
    codecs: dict[str, str] = field(default_factory=dict)
    #: Smoothed time a frame waits in a viewer's queue: the relay's own added latency.
    queue_delay_ms: float = 0.0

    def queue_delay(self, seconds: float) -> None:
        """Fold one frame's queueing delay into the moving average."""
        self.queue_delay_ms += (1000 * seconds - self.queue_delay_ms) / 64

    def viewer_joined(self) -> None:
        """Count a new viewer."""
        self.viewers += 1
        self.viewers_total += 1
        self.viewers_peak = max(self.viewers_peak, self.viewers)

    def viewer_left(self) -> None:
        """Count a viewer leaving."""
        self.viewers = max(0, self.viewers - 1)

    def snapshot(self, keyframe_requests: int = 0, keyframe_asks: int = 0) -> dict[str, Any]:
        """A JSON-ready view of the counters."""
        return {
            "stream_id": self.stream_id,
            "live_for_s": round(time.time() - self.started_at, 1),
            "viewers": self.viewers,
            "viewers_peak": self.viewers_peak,
            "viewers_total": self.viewers_total,
            "codecs": dict(self.codecs),
            "bitrate_in_bps": self.bytes_in.bits_per_second(),
            "bitrate_out_bps": self.bytes_out.bits_per_second(),
            "bytes_in": self.bytes_in.total,
            "bytes_out": self.bytes_out.total,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "keyframes_in": self.keyframes_in,
            "keyframe_requests": keyframe_requests,
            "keyframe_requests_coalesced": max(0, keyframe_asks - keyframe_requests),
            "dropped_frames": self.dropped_frames,
            "queue_delay_ms": round(self.queue_delay_ms, 2),
        }
