"""Live HLS and recordings over HTTP: a real H.264 publisher over WHIP, files read with PyAV."""

from __future__ import annotations

import asyncio
import io
import math
from collections.abc import AsyncIterator
from typing import Any

import av
import pytest
from aiohttp.test_utils import TestClient
from av import VideoFrame

from tests.stream.peers import HostPeer, read_counter
from web.keys import CATALOG

SDP = {"Content-Type": "application/sdp"}


@pytest.fixture
async def made() -> AsyncIterator[list[HostPeer]]:
    """Peers to hang up after the test."""
    peers: list[HostPeer] = []
    yield peers
    await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def go_live(client: TestClient, auth: Any, made: list[HostPeer], codec: str) -> str:
    """Publish counter video with ``codec`` on stream ``show``; return the session URL."""
    await client.app[CATALOG].create_stream("show", "hana", "Spring sale")
    host = HostPeer(codec=codec)
    made.append(host)
    headers = {**SDP, **auth("host", "hana")}
    resp = await client.post("/whip/show", data=await host.offer(), headers=headers)
    assert resp.status == 201, await resp.text()
    await host.accept(await resp.text())
    return resp.headers["Location"]


def parse_playlist(text: str) -> tuple[dict[str, str], list[tuple[float, str]]]:
    """(tags with values, [(EXTINF duration, segment URI)]) of a media playlist."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert lines[0] == "#EXTM3U", text
    tags: dict[str, str] = {}
    segments: list[tuple[float, str]] = []
    duration: float | None = None
    for line in lines[1:]:
        if line.startswith("#EXTINF:"):
            duration = float(line[8:].split(",")[0])
        elif line.startswith("#"):
            name, _, value = line[1:].partition(":")
            tags[name] = value
        else:
            assert duration is not None, f"segment {line} without #EXTINF"
            segments.append((duration, line))
            duration = None
    return tags, segments


def decoded_span(init: bytes, segment: bytes) -> tuple[float, list[int]]:
    """(seconds of video in the segment, its frames' counters), decoding every frame."""
    with av.open(io.BytesIO(init + segment), "r", format="mp4") as container:
        stream = container.streams.video[0]
        times: list[float] = []
        counters: list[int] = []
        for frame in container.decode(stream):
            assert isinstance(frame, VideoFrame) and frame.time is not None
            times.append(frame.time)
            counters.append(read_counter(frame))
    assert times, "a segment without video"
    step = (times[-1] - times[0]) / max(1, len(times) - 1)
    return times[-1] - times[0] + step, counters


async def fetch(client: TestClient, path: str, cache: str) -> bytes:
    """GET ``path``: 200 with the given Cache-Control; its body."""
    resp = await client.get(path)
    assert resp.status == 200, (path, resp.status, await resp.text())
    assert resp.headers["Cache-Control"] == cache, path
    return await resp.read()


async def test_h264_show_has_a_valid_live_hls_playlist(
    client: TestClient, auth: Any, made: list[HostPeer]
) -> None:
    session = await go_live(client, auth, made, "video/h264")
    await asyncio.sleep(4.5)
    live = (await fetch(client, "/hls/show/index.m3u8", "public, max-age=1")).decode()
    live_tags, live_segments = parse_playlist(live)
    assert "EXT-X-ENDLIST" not in live_tags and len(live_segments) >= 2, live
    resp = await client.delete(session, headers=auth("host", "hana"))
    assert resp.status == 200
    text = (await fetch(client, "/hls/show/index.m3u8", "public, max-age=1")).decode()
    tags, segments = parse_playlist(text)
    assert "EXT-X-ENDLIST" in tags and "EXT-X-INDEPENDENT-SEGMENTS" in tags
    target = int(tags["EXT-X-TARGETDURATION"])
    assert 1 <= target <= 3, "about one-second segments (the recorder asks for keyframes)"
    init_uri = tags["EXT-X-MAP"].split('"')[1]
    init = await fetch(client, f"/hls/show/{init_uri}", "public, max-age=31536000, immutable")
    counters: list[int] = []
    for duration, uri in segments:
        assert round(duration) <= target, "RFC 8216 4.3.3.1"
        body = await fetch(client, f"/hls/show/{uri}", "public, max-age=31536000, immutable")
        span, got = decoded_span(init, body)
        assert math.isclose(span, duration, abs_tol=0.1), (uri, span, duration)
        counters += got
    # The segments follow on each other: every frame once, in order, no gap between them.
    assert counters == list(range(counters[0], counters[0] + len(counters)))
    assert math.isclose(sum(d for d, _ in segments), len(counters) / 30, abs_tol=0.1)
    resp = await client.get("/hls/show/..%2Fsecret")
    assert resp.status == 404 and (await resp.json())["error"] == "not_found"


async def test_recordings_are_listed_and_served_with_ranges(
    client: TestClient, auth: Any, made: list[HostPeer]
) -> None:
    session = await go_live(client, auth, made, "video/vp8")
    await asyncio.sleep(2.0)
    assert (await client.delete(session, headers=auth("host", "hana"))).status == 200
    listing = await (await client.get("/api/streams/show/recordings")).json()
    [recording] = listing["recordings"]
    assert recording["type"] == "video/webm" and recording["size"] > 0
    assert listing["stream"]["title"] == "Spring sale"
    resp = await client.get(recording["url"], headers={"Range": "bytes=0-99"})
    assert resp.status == 206 and len(await resp.read()) == 100
    assert resp.headers["Content-Range"] == f"bytes 0-99/{recording['size']}"
    whole = await fetch(client, recording["url"], "public, max-age=31536000, immutable")
    assert len(whole) == recording["size"]
    assert (await client.get("/hls/show/index.m3u8")).status == 404  # VP8 is not in HLS
    missing = await client.get("/api/streams/nope/recordings")
    assert missing.status == 404
