"""The forwarding policies, without a network: keyframe starts, lagging viewers, PLI coalescing."""

from __future__ import annotations

import asyncio

from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from stream.codecs import is_keyframe
from stream.forwarding import Forwarder
from stream.keyframes import KeyframeRequester
from stream.metrics import StreamMetrics

VP8 = RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=96)
OPUS = RTCRtpCodecParameters(mimeType="audio/opus", clockRate=48000, channels=2, payloadType=111)
KEY = b"\x10\x02\x00\x9d\x01\x2a"  # frame tag bit 0 clear: a VP8 key frame
DELTA = b"\x11\x02\x00"


class Counting:
    """A keyframe sender that counts calls."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self) -> int:
        self.calls += 1
        return 1


def test_keyframe_detection() -> None:
    assert is_keyframe("video/vp8", KEY)
    assert not is_keyframe("video/vp8", DELTA)
    idr = b"\x00\x00\x00\x01\x67sps\x00\x00\x00\x01\x68pps\x00\x00\x00\x01\x65slice"
    assert is_keyframe("video/h264", idr)
    assert not is_keyframe("video/h264", b"\x00\x00\x00\x01\x41slice")
    assert is_keyframe("audio/opus", b"\xfc")


async def test_viewer_starts_at_a_keyframe_and_asks_for_one() -> None:
    send = Counting()
    requester = KeyframeRequester(send, "s", min_interval_s=0.05)
    fwd = Forwarder("video", StreamMetrics("s"), requester)
    track = fwd.track()
    pending = asyncio.ensure_future(track.recv())  # the sender starts pulling: armed
    await asyncio.sleep(0.01)
    fwd.publish(VP8, DELTA, 0)
    fwd.publish(VP8, DELTA, 3000)
    await asyncio.sleep(0.02)
    assert not pending.done()
    assert send.calls == 1
    fwd.publish(VP8, KEY, 6000)
    fwd.publish(VP8, DELTA, 9000)
    first = await asyncio.wait_for(pending, 1)
    assert first.pts == 6000 and bytes(first) == KEY
    assert (await track.recv()).pts == 9000
    await requester.close()


async def test_lagging_viewer_skips_to_next_keyframe_without_slowing_others() -> None:
    metrics = StreamMetrics("s")
    requester = KeyframeRequester(Counting(), "s", min_interval_s=0.05)
    fwd = Forwarder("video", metrics, requester, max_queue=4)
    slow, fast = fwd.track(), fwd.track()
    pulls = [asyncio.ensure_future(t.recv()) for t in (slow, fast)]
    await asyncio.sleep(0.01)  # both senders are pulling: armed
    fwd.publish(VP8, KEY, 0)
    for pull in pulls:
        assert bytes(await asyncio.wait_for(pull, 1)) == KEY
    got_fast = []
    for i in range(1, 11):
        fwd.publish(VP8, DELTA, i * 3000)
        got_fast.append((await fast.recv()).pts)  # fast keeps up, slow never reads
    assert got_fast == [i * 3000 for i in range(1, 11)]
    assert slow.dropped >= 4 and metrics.dropped_frames == slow.dropped
    fwd.publish(VP8, KEY, 99000)
    assert (await fast.recv()).pts == 99000
    assert (await slow.recv()).pts == 99000  # resumed at the keyframe, nothing stale
    await requester.close()


async def test_audio_lagging_viewer_drops_oldest() -> None:
    fwd = Forwarder("audio", StreamMetrics("s"), None, max_queue=3)
    track = fwd.track()
    fut = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0.01)
    fwd.publish(OPUS, b"\xfc\x01", 0)
    await asyncio.wait_for(fut, 1)
    for i in range(1, 6):
        fwd.publish(OPUS, b"\xfc\x01", i * 960)
    assert [(await track.recv()).pts for _ in range(3)] == [2880, 3840, 4800]


async def test_burst_of_requests_costs_one_pli() -> None:
    send = Counting()
    requester = KeyframeRequester(send, "s", min_interval_s=0.3)
    for _ in range(20):
        requester.request()
    await asyncio.sleep(0.05)
    assert send.calls == 1
    requester.keyframe_seen()
    await asyncio.sleep(0.35)
    assert send.calls == 1  # served: no repeat
    requester.request()
    await asyncio.sleep(0.05)
    assert send.calls == 2  # the interval had passed
    requester.request()  # inside the next interval: deferred, not dropped
    await asyncio.sleep(0.05)
    assert send.calls == 2
    await asyncio.sleep(0.35)
    assert send.calls >= 3
    assert requester.asked == 22
    await requester.close()
