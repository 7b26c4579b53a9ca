"""HLS latency in the relay benchmark: when each segment is listed versus when it was captured.

The recording relay writes the live playlist to a folder (as a CDN origin would serve it); this
watcher polls it like a player, decodes the first frame of each new segment and reads the counter
stamped in its pixels. ``listed_ms`` is capture of a segment's first frame -> the segment listed
in the playlist (the segment's own length plus remuxing and writing). A player that stays
``LIVE_SYNC`` segments behind the live edge (hls.js ``liveSyncDurationCount``, as the room sets
it) shows a frame about ``listed + (LIVE_SYNC - 1) x segment length`` after its capture: the
glass-to-glass estimate, before the player's decode and display.
"""

from __future__ import annotations

import asyncio
import io
import statistics
import time
from pathlib import Path
from typing import Any

import av
from av import VideoFrame

from loadtest.bench_relay.media import read_counter

LIVE_SYNC = 2
POLL_S = 0.05


def _first_counter(init: bytes, segment: bytes) -> int | None:
    with av.open(io.BytesIO(init + segment), "r", format="mp4") as container:
        for frame in container.decode(video=0):
            if isinstance(frame, VideoFrame):
                return read_counter(frame)
    return None


def _playlist(path: Path) -> tuple[str | None, list[tuple[float, str]]]:
    """(the init section's URI, [(duration, segment URI)]) of the playlist at ``path``."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return None, []
    init = None
    segments: list[tuple[float, str]] = []
    duration = 0.0
    for line in lines:
        if line.startswith("#EXT-X-MAP:"):
            init = line.split('"')[1]
        elif line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line and not line.startswith("#"):
            segments.append((duration, line))
    return init, segments


async def watch(folder: Path, until: float, sent_at: dict[int, float]) -> dict[str, Any]:
    """Poll ``folder``'s playlist until ``until`` (monotonic); the HLS latency figures."""
    # What is listed when we first look was written before: only later segments are timed.
    seen = {uri for _, uri in _playlist(folder / "index.m3u8")[1]}
    listed: list[float] = []
    durations: list[float] = []
    while time.monotonic() < until:
        init_uri, segments = _playlist(folder / "index.m3u8")
        now = time.monotonic()
        for duration, uri in segments:
            if uri in seen or init_uri is None:
                continue
            seen.add(uri)
            try:
                init, body = (folder / init_uri).read_bytes(), (folder / uri).read_bytes()
            except FileNotFoundError:
                continue
            counter = await asyncio.to_thread(_first_counter, init, body)
            if counter in sent_at:
                listed.append(now - sent_at[counter])
                durations.append(duration)
        await asyncio.sleep(POLL_S)
    if not listed:
        return {"segments": 0}
    ordered = sorted(listed)
    p50 = ordered[len(ordered) // 2]
    segment_s = statistics.fmean(durations)
    return {
        "segments": len(listed),
        "segment_s": round(segment_s, 2),
        "listed_ms": {
            "p50": round(1000 * p50),
            "p95": round(1000 * ordered[int(0.95 * len(ordered))]),
        },
        "glass_to_glass_estimate_s": round(p50 + (LIVE_SYNC - 1) * segment_s, 2),
    }
