"""The relay end to end with real aiortc peers on loopback (no mocks of aiortc)."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator

import pytest
from aiortc import RTCRtpReceiver

from stream.errors import (
    AlreadyLive,
    BadSdp,
    CodecMismatch,
    NotPublishing,
    RelayClosed,
    StreamFull,
)
from stream.relay import Relay
from tests.stream.peers import HostPeer, ViewerPeer

FPS = 30


class Recorder:
    """A StreamLifecycle that records what it is told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, ...]] = []
        self.changed = asyncio.Event()

    async def stream_live(self, stream_id: str) -> None:
        """Record."""
        self.events.append(("live", stream_id))
        self.changed.set()

    async def stream_ended(self, stream_id: str, reason: str) -> None:
        """Record."""
        self.events.append(("ended", stream_id, reason))
        self.changed.set()

    async def wait_for(self, event: tuple[str, ...], within_s: float = 10) -> None:
        """Wait until ``event`` was recorded."""
        deadline = time.monotonic() + within_s
        while event not in self.events:
            assert time.monotonic() < deadline, f"{event} not in {self.events}"
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), 0.2)
            except TimeoutError:
                pass


@pytest.fixture
async def recorder() -> Recorder:
    """A fresh lifecycle recorder."""
    return Recorder()


@pytest.fixture
async def relay(recorder: Recorder) -> AsyncIterator[Relay]:
    """A relay with a short media timeout; closed (with every peer) after the test."""
    r = Relay(recorder, media_timeout_s=2.0, keyframe_interval_s=0.3)
    yield r
    await r.close()


class Peers:
    """Makes test peers and hangs every one of them up after the test, pass or fail."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.made: list[HostPeer | ViewerPeer] = []

    def host(self, **kw: object) -> HostPeer:
        """A new (not yet publishing) host peer."""
        peer = HostPeer(fps=FPS, **kw)  # type: ignore[arg-type]
        self.made.append(peer)
        return peer

    def viewer(self, audio: bool = True) -> ViewerPeer:
        """A new (not yet watching) viewer peer."""
        peer = ViewerPeer(audio=audio)
        self.made.append(peer)
        return peer

    async def go_live(self, stream_id: str = "show", **kw: object) -> HostPeer:
        """Publish a new host to ``stream_id``."""
        host = self.host(**kw)
        answer = await self.relay.publish(stream_id, await host.offer())
        await host.accept(answer.sdp)
        host.session_id = answer.session_id
        return host

    async def join(self, stream_id: str = "show", audio: bool = True) -> ViewerPeer:
        """Watch ``stream_id`` with a new viewer."""
        viewer = self.viewer(audio)
        answer = await self.relay.watch(stream_id, await viewer.offer())
        await viewer.accept(answer.sdp)
        return viewer

    async def close(self) -> None:
        """Hang up every peer (an open aiortc peer's decoder thread would block exit)."""
        await asyncio.gather(*(p.close() for p in self.made), return_exceptions=True)


@pytest.fixture
async def peers(relay: Relay) -> AsyncIterator[Peers]:
    """The test's peers, all closed afterwards."""
    made = Peers(relay)
    yield made
    await made.close()


def assert_in_order_at_rate(viewer: ViewerPeer, fps: int) -> None:
    """Frames arrived strictly in order, nearly gap-free, at about the host's frame rate."""
    c = viewer.counters
    assert len(c) > 20, c
    assert all(b > a for a, b in itertools.pairwise(c)), c
    span = c[-1] - c[0] + 1
    assert len(c) >= 0.95 * span, f"{span - len(c)} of {span} frames missing"
    seconds = viewer.arrivals[-1] - viewer.arrivals[0]
    rate = (len(c) - 1) / seconds
    assert rate > 0.8 * fps, f"{rate:.1f} fps delivered, host sends {fps}"


async def test_viewers_decode_every_frame_in_order_and_a_late_joiner_starts_fast(
    relay: Relay, recorder: Recorder, peers: Peers
) -> None:
    await peers.go_live()
    viewers = await asyncio.gather(*(peers.join() for _ in range(3)))
    await recorder.wait_for(("live", "show"))
    for v in viewers:
        await v.wait_frames(60, within_s=15)
    # The host sends keyframes only on request (aiortc's encoder has no periodic ones), so the
    # late joiner needs the relay to ask the publisher for one.
    late = peers.viewer()
    started = time.monotonic()
    answer = await relay.watch("show", await late.offer())
    await late.accept(answer.sdp)
    await asyncio.wait_for(late.first_frame.wait(), 5)
    took = late.arrivals[0] - started
    assert took < 1.0, f"late joiner's first frame after {took:.2f} s"
    await late.wait_frames(30, within_s=5)
    for v in [*viewers, late]:
        assert_in_order_at_rate(v, FPS)
        assert v.audio_frames > 0  # Opus forwarded too
        assert v.unreadable == 0
    m = relay.metrics("show")
    assert m is not None
    assert m["viewers"] == 4 and m["live"]
    assert m["codecs"] == {"video": "video/VP8", "audio": "audio/opus"}
    assert m["frames_out"] > m["frames_in"] > 0
    assert m["keyframe_requests"] >= 1


async def test_second_publisher_is_refused(relay: Relay, peers: Peers) -> None:
    await peers.go_live()
    with pytest.raises(AlreadyLive):
        await relay.publish("show", await peers.host().offer())
    assert relay.is_live("show")


async def test_unpublish_ends_the_stream_and_closes_viewers(
    relay: Relay, recorder: Recorder, peers: Peers
) -> None:
    host = await peers.go_live()
    viewers = [await peers.join() for _ in range(2)]
    for v in viewers:
        await v.wait_frames(5, within_s=10)
    await relay.unpublish("show", host.session_id)
    assert not relay.is_live("show")
    deadline = time.monotonic() + 10
    for v in viewers:
        await asyncio.wait_for(v.video_ended.wait(), 10)
        while v.pc.connectionState != "closed":  # the relay hung up on the viewer
            assert time.monotonic() < deadline, v.pc.connectionState
            await asyncio.sleep(0.05)
    ended = ("ended", "show", "unpublished")
    await recorder.wait_for(ended)
    assert recorder.events.index(("live", "show")) < recorder.events.index(ended)
    with pytest.raises(NotPublishing):
        await peers.join()


async def test_publisher_hanging_up_ends_the_stream(
    relay: Relay, recorder: Recorder, peers: Peers
) -> None:
    host = await peers.go_live()
    viewer = await peers.join()
    await viewer.wait_frames(5, within_s=10)
    await host.close()
    await asyncio.wait_for(viewer.video_ended.wait(), 10)
    # The host's DTLS close alert ends it at once ("disconnected"); should that one UDP packet
    # be lost, the media timeout ends it instead ("no_media").
    deadline = time.monotonic() + 10
    while not (ended := [e for e in recorder.events if e[0] == "ended"]):
        assert time.monotonic() < deadline, recorder.events
        await asyncio.sleep(0.05)
    assert ended in ([("ended", "show", "disconnected")], [("ended", "show", "no_media")])


async def test_no_media_times_out(relay: Relay, recorder: Recorder, peers: Peers) -> None:
    await relay.publish("show", await peers.host().offer())  # the host never gets the answer
    assert relay.is_live("show")
    deadline = time.monotonic() + 10
    while relay.is_live("show"):
        assert time.monotonic() < deadline, "no-media timeout did not fire"
        await asyncio.sleep(0.1)
    assert recorder.events == []  # it never went live, so no lifecycle event is owed


async def test_media_stopping_times_out(relay: Relay, recorder: Recorder, peers: Peers) -> None:
    host = await peers.go_live()
    viewer = await peers.join()
    await viewer.wait_frames(5, within_s=10)
    for transceiver in host.pc.getTransceivers():
        transceiver.sender.track.stop()  # the host's sender stops sending, the peer stays up
    await recorder.wait_for(("ended", "show", "no_media"))
    await asyncio.wait_for(viewer.video_ended.wait(), 10)


async def test_h264_is_forwarded_and_viewers_must_accept_the_codec(
    relay: Relay, peers: Peers
) -> None:
    await peers.go_live(codec="video/h264")
    viewer = await peers.join()
    await viewer.wait_frames(30, within_s=15)
    assert_in_order_at_rate(viewer, FPS)
    m = relay.metrics("show")
    assert m is not None and m["codecs"]["video"].lower() == "video/h264"
    vp8_only = peers.viewer()
    caps = RTCRtpReceiver.getCapabilities("video")
    assert caps is not None
    vp8_only.pc.getTransceivers()[0].setCodecPreferences(
        [c for c in caps.codecs if c.mimeType.lower() == "video/vp8"]
    )
    with pytest.raises(CodecMismatch):
        await relay.watch("show", await vp8_only.offer())


async def test_bad_offers(relay: Relay, peers: Peers) -> None:
    with pytest.raises(BadSdp):
        await relay.publish("show", "hello")
    with pytest.raises(BadSdp):
        await relay.publish("show", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n")
    assert not relay.is_live("show")
    with pytest.raises(NotPublishing):
        await relay.watch("nobody", await peers.viewer().offer())


async def test_viewers_keyframe_requests_reach_the_publisher_rate_limited(
    relay: Relay, peers: Peers
) -> None:
    await peers.go_live()
    viewers = [await peers.join(audio=False) for _ in range(3)]
    for v in viewers:
        await v.wait_frames(10, within_s=10)
    before = relay.metrics("show")
    assert before is not None
    # Each viewer reports picture loss, as a browser does after losing packets.
    for v in viewers:
        receiver = v.pc.getTransceivers()[0].receiver
        for _ in range(3):
            for source in receiver.getSynchronizationSources():
                await receiver._send_rtcp_pli(source.source)
    deadline = time.monotonic() + 5
    while True:
        after = relay.metrics("show")
        assert after is not None
        if after["keyframes_in"] > before["keyframes_in"]:
            break
        assert time.monotonic() < deadline, "the publisher was never asked for a keyframe"
        await asyncio.sleep(0.05)
    # Nine PLIs from three viewers cost one upstream request (two or three if the keyframe is
    # slow and the request is repeated after an interval).
    assert 1 <= after["keyframe_requests"] - before["keyframe_requests"] <= 3
    assert after["keyframe_requests_coalesced"] - before["keyframe_requests_coalesced"] >= 6
    assert after["dropped_frames"] == 0


async def test_shutdown_closes_every_peer(relay: Relay, recorder: Recorder, peers: Peers) -> None:
    await peers.go_live()
    viewers = [await peers.join() for _ in range(2)]
    for v in viewers:
        await v.wait_frames(5, within_s=10)
    await relay.close()
    assert relay.streams() == []
    for v in viewers:
        await asyncio.wait_for(v.video_ended.wait(), 10)
    assert ("ended", "show", "shutdown") in recorder.events
    with pytest.raises(RelayClosed):
        await relay.publish("other", await peers.host().offer())


async def test_a_viewer_that_never_connects_is_dropped(recorder: Recorder) -> None:
    relay = Relay(recorder, connect_timeout_s=1.0)
    peers = Peers(relay)
    try:
        await peers.go_live()
        ghost = peers.viewer()
        await relay.watch("show", await ghost.offer())  # the answer never reaches the viewer
        metrics = relay.metrics("show")
        assert metrics is not None and metrics["viewers"] == 1
        deadline = time.monotonic() + 10
        while metrics["viewers"] != 0:
            assert time.monotonic() < deadline, "the unconnected viewer was never dropped"
            await asyncio.sleep(0.1)
            metrics = relay.metrics("show")
            assert metrics is not None
    finally:
        await relay.close()
        await peers.close()


async def test_viewer_sessions_are_capped(recorder: Recorder) -> None:
    relay = Relay(recorder, max_viewers_per_stream=2, max_viewers=3)
    peers = Peers(relay)
    try:
        await peers.go_live("a")
        await peers.go_live("b")
        # A burst of offers: only as many as the cap get a session, the rest a clear 503.
        offers = [await peers.viewer().offer() for _ in range(4)]
        results = await asyncio.gather(
            *(relay.watch("a", offer) for offer in offers), return_exceptions=True
        )
        assert sum(1 for r in results if isinstance(r, StreamFull)) == 2
        assert StreamFull.status == 503
        await relay.watch("b", await peers.viewer().offer())
        with pytest.raises(StreamFull):  # the relay-wide cap
            await relay.watch("b", await peers.viewer().offer())
    finally:
        await relay.close()
        await peers.close()
