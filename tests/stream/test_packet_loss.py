"""Faults: a publisher dropping 5% of its packets, a viewer on a lossy link (real aiortc peers).

These machines have neither netem nor iptables, so the loss is made inside the peer: its DTLS
transport drops a share of the RTP packets it sends (the publisher) or receives (the viewer),
chosen by a seeded random generator. RTCP goes through, as NACKs and PLIs must for recovery.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import is_rtcp

from stream.relay import Relay
from tests.stream.peers import HostPeer, ViewerPeer
from tests.stream.test_relay import FPS, Peers, Recorder

WATCH_S = 6


class Loss:
    """Counts what a lossy link let through and what it dropped."""

    def __init__(self, share: float, seed: int) -> None:
        self.share = share
        self.rng = random.Random(seed)
        self.passed = 0
        self.dropped = 0

    def drop(self, data: bytes) -> bool:
        """Whether this packet is lost (RTCP never is)."""
        if is_rtcp(data) or self.rng.random() >= self.share:
            self.passed += 1
            return False
        self.dropped += 1
        return True


def _dtls(pc: RTCPeerConnection) -> Any:
    transports = {t.receiver.transport for t in pc.getTransceivers()}
    assert len(transports) == 1  # bundled: one transport carries every track
    return transports.pop()


def lose_outgoing(pc: RTCPeerConnection, loss: Loss) -> None:
    """Drop ``loss.share`` of the RTP packets ``pc`` sends (retransmissions included)."""
    dtls = _dtls(pc)
    send = dtls._send_rtp

    async def lossy(data: bytes) -> None:
        if not loss.drop(data):
            await send(data)

    dtls._send_rtp = lossy


def lose_incoming(pc: RTCPeerConnection, loss: Loss) -> None:
    """Drop ``loss.share`` of the RTP packets that reach ``pc``."""
    dtls = _dtls(pc)
    handle = dtls._handle_rtp_data

    async def lossy(data: bytes, arrival_time_ms: int) -> None:
        if not loss.drop(data):
            await handle(data, arrival_time_ms=arrival_time_ms)

    dtls._handle_rtp_data = lossy


def per_window(viewer: ViewerPeer, since: float, seconds: int, window_s: int = 1) -> list[int]:
    """Frames the viewer decoded in each window of ``window_s`` seconds from ``since``."""
    counts = Counter(int(t - since) // window_s for t in viewer.arrivals if t >= since)
    return [counts.get(w, 0) for w in range(seconds // window_s)]


def assert_every_frame(viewer: ViewerPeer, host: HostPeer, since: float) -> None:
    """The viewer decoded, in order, every frame the host sent from ``since`` until 1 s ago.

    Judged by frames rather than by a rate, so that a loaded machine (which slows the host's
    encoder as much as anything) cannot fail it: unaffected means nothing missing.
    """
    assert viewer.counters == sorted(set(viewer.counters)), "out of order or repeated"
    until = time.monotonic() - 1.0
    sent = {n for n, t in host.video.sent_at.items() if since <= t <= until}
    missing = sent - set(viewer.counters)
    assert len(sent) > 30 and len(missing) <= 0.02 * len(sent), f"{len(missing)} of {len(sent)}"


def retransmissions(host_pc: RTCPeerConnection) -> list[int]:
    """A counter of the video sender's retransmissions (answers to NACKs)."""
    sender = host_pc.getTransceivers()[0].sender
    retransmit = sender._retransmit
    count = [0]

    async def counted(seq: int) -> None:
        count[0] += 1
        await retransmit(seq)

    sender._retransmit = counted  # type: ignore[method-assign,assignment]
    return count


@pytest.fixture
async def relay() -> AsyncIterator[Relay]:
    """A relay (closed with every peer after the test)."""
    r = Relay(Recorder(), media_timeout_s=5.0, keyframe_interval_s=0.3)
    yield r
    await r.close()


@pytest.fixture
async def peers(relay: Relay) -> AsyncIterator[Peers]:
    """The test's peers, all closed afterwards."""
    made = Peers(relay)
    yield made
    await made.close()


async def _watch(viewers: list[ViewerPeer]) -> float:
    for v in viewers:
        await v.wait_frames(FPS, within_s=15)
    start = time.monotonic()
    await asyncio.sleep(WATCH_S)
    return start


async def test_publisher_dropping_5_percent_viewers_keep_playing(
    relay: Relay, peers: Peers
) -> None:
    lossy_host = await peers.go_live("lossy", audio=False)
    loss = Loss(0.05, seed=5)
    lose_outgoing(lossy_host.pc, loss)
    resent = retransmissions(lossy_host.pc)
    clean_host = await peers.go_live("clean", audio=False)
    watching = [await peers.join("lossy", audio=False) for _ in range(2)]
    other = await peers.join("clean", audio=False)
    start = await _watch([*watching, other])

    assert loss.dropped > 0 and loss.dropped < 0.1 * (loss.passed + loss.dropped), vars(loss)
    assert resent[0] > 0  # the relay NACKed what was lost and the publisher sent it again
    for v in watching:
        # Playing the whole time: decoded frames in every second, readable and in order.
        seconds = per_window(v, start, WATCH_S)
        assert all(n > 0 for n in seconds), seconds
        assert v.unreadable == 0
        assert v.counters == sorted(set(v.counters))
        span = v.counters[-1] - v.counters[0] + 1
        assert len(v.counters) >= 0.8 * span, f"{span - len(v.counters)} of {span} missing"
    # Another show on the same relay is untouched by it.
    assert_every_frame(other, clean_host, start)


async def test_viewer_on_a_lossy_link_does_not_slow_the_others(relay: Relay, peers: Peers) -> None:
    host = await peers.go_live("show", audio=False)
    lossy = await peers.join("show", audio=False)
    loss = Loss(0.10, seed=10)
    lose_incoming(lossy.pc, loss)
    others = [await peers.join("show", audio=False) for _ in range(2)]
    start = await _watch([lossy, *others])

    assert loss.dropped > 0, vars(loss)
    # The lossy viewer recovers (NACKs answered by the relay, PLIs turned into keyframes): it
    # may freeze for a moment (a lost retransmission, on a loaded machine), never for good.
    windows = per_window(lossy, start, WATCH_S, window_s=2)
    assert all(n > 0 for n in windows), (windows, per_window(lossy, start, WATCH_S))
    assert lossy.unreadable == 0
    # ...and the others get every frame the host sends, as if it were not there.
    for v in others:
        assert_every_frame(v, host, start)
    m = relay.metrics("show")
    assert m is not None and m["viewers"] == 3 and m["dropped_frames"] == 0, m
