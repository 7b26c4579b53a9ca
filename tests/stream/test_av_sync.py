"""Audio and video of a recording are placed by the publisher's RTCP sender reports.

A real aiortc publisher beeps while its counter video runs; its audio packets reach the relay
300 ms late (held back on the way, as a congested path or a late audio encoder would), while its
sender reports still say when the audio was sent. In the recording, the beep must start where
the video frame captured at the same moment is, not 300 ms later.
"""

from __future__ import annotations

import asyncio
import fractions
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import is_rtcp
from av import AudioFrame, VideoFrame

from stream.archive import RecordingArchive
from stream.relay import Relay
from stream.remux import SYNC_WAIT_S, Frame, Remuxer, SenderReport
from tests.stream.peers import HostPeer, read_counter

RATE = 48000
PTIME = 960  # samples: 20 ms
AUDIO_DELAY_S = 0.3
#: Encoding, Opus's look-ahead and 20 ms audio frames leave a few tens of milliseconds.
TOLERANCE_S = 0.06


class BeepTrack(MediaStreamTrack):
    """Silence, then a 1 kHz tone from ``beep_at_s`` on; remembers when the tone began."""

    kind = "audio"

    def __init__(self, beep_at_s: float) -> None:
        super().__init__()
        self.beep_at = round(beep_at_s * RATE)
        self.beep_made_at: float | None = None
        self._start: float | None = None
        self._pts = 0

    async def recv(self) -> AudioFrame:  # type: ignore[override]
        """The next 20 ms of mono audio, paced in real time."""
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        delay = self._start + self._pts / RATE - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        samples = np.zeros(PTIME, np.int16)
        if self._pts >= self.beep_at:
            if self.beep_made_at is None:
                self.beep_made_at = time.monotonic()
            t = (self._pts + np.arange(PTIME)) / RATE
            samples = (np.sin(2 * np.pi * 1000 * t) * 12000).astype(np.int16)
        frame = AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += PTIME
        return frame


def delay_audio(host: HostPeer, delay_s: float) -> None:
    """Hold the host's audio RTP back ``delay_s`` on its way out (RTCP and video go at once)."""
    audio = next(t.sender for t in host.pc.getTransceivers() if t.kind == "audio")
    transport: Any = audio.transport
    send = transport._send_rtp
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def pump() -> None:
        while True:
            due, data = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            try:
                await send(data)
            except ConnectionError:
                return

    async def held(data: bytes) -> None:
        if not is_rtcp(data) and int.from_bytes(data[8:12], "big") == audio._ssrc:
            queue.put_nowait((time.monotonic() + delay_s, data))
        else:
            await send(data)

    transport._send_rtp = held
    host.pump = asyncio.ensure_future(pump())  # type: ignore[attr-defined]


@pytest.fixture
async def relay(tmp_path: Path) -> AsyncIterator[Relay]:
    """A relay recording under the test's folder."""
    r = Relay(
        media_timeout_s=3.0,
        keyframe_interval_s=0.3,
        archive=RecordingArchive(tmp_path / "recordings"),
    )
    yield r
    await r.close()


def beep_and_frames(path: Path) -> tuple[float, dict[int, float]]:
    """(when the tone starts in the file, the file time of each video frame by its counter)."""
    frames: dict[int, float] = {}
    onset: float | None = None
    with av.open(str(path)) as container:
        for packet in container.demux():
            if packet.size == 0:
                continue
            for frame in packet.decode():
                assert isinstance(frame, VideoFrame | AudioFrame) and frame.time is not None
                if isinstance(frame, VideoFrame):
                    frames[read_counter(frame)] = frame.time
                elif onset is None:
                    loud = np.flatnonzero(np.abs(frame.to_ndarray()[0]) > 0.1)
                    if loud.size:
                        onset = frame.time + loud[0] / frame.sample_rate
    assert onset is not None, "no tone in the recording"
    return onset, frames


async def test_audio_arriving_late_is_placed_by_the_sender_reports(
    relay: Relay, tmp_path: Path
) -> None:
    host = HostPeer(codec="video/h264", audio=False)
    beep = BeepTrack(beep_at_s=2.5)
    host.pc.addTransceiver(beep, direction="sendonly")
    try:
        answer = await relay.publish("show", await host.offer())
        await host.accept(answer.sdp)
        delay_audio(host, AUDIO_DELAY_S)
        await asyncio.sleep(3.5)
        metrics = relay.metrics("show")
        assert metrics is not None
        await relay.unpublish("show", answer.session_id)
    finally:
        await host.close()
        host.pump.cancel()  # type: ignore[attr-defined]
    [recording] = RecordingArchive(tmp_path / "recordings").files("show")
    onset, frames = beep_and_frames(tmp_path / "recordings" / "show" / recording.name)
    # The video frame captured when the tone began (interpolated between two frames).
    assert beep.beep_made_at is not None
    sent = host.video.sent_at
    n = min(frames, key=lambda c: abs(sent[c] - beep.beep_made_at))  # type: ignore[operator]
    video_at = frames[n] + beep.beep_made_at - sent[n]
    skew = onset - video_at
    print(f"A/V skew in the recording: {skew * 1000:+.0f} ms (audio {AUDIO_DELAY_S}s late)")
    assert metrics["recording"]["sync"] == "sender_reports"
    assert abs(skew) < TOLERANCE_S, f"audio {skew * 1000:+.0f} ms off the video"


def vp8_frame(keyframe: bool) -> bytes:
    """A VP8 frame's header (a 320x240 keyframe's, or an interframe's) and filler."""
    if keyframe:
        size = (320).to_bytes(2, "little") + (240).to_bytes(2, "little")
        return b"\x10\x02\x00\x9d\x01\x2a" + size
    return b"\x11\x02\x00" + b"\x00" * 7


def synthetic(seconds: float, audio_late_s: float) -> list[Frame]:
    """VP8 at 30 fps and Opus at 50 fps, the audio arriving ``audio_late_s`` after its time."""
    frames: list[Frame] = []
    for n in range(int(seconds * 30)):
        frames.append(("video", "video/vp8", vp8_frame(n % 30 == 0), n * 3000, n % 30 == 0, n / 30))
    for n in range(int(seconds * 50)):
        at = n / 50 + audio_late_s
        frames.append(("audio", "audio/opus", b"\xfc\xff\xfe", n * 960, True, at))
    return sorted(frames, key=lambda f: f[5])


def audio_start(path: Path) -> float:
    """The time of the first audio packet of ``path``."""
    with av.open(str(path)) as container:
        for packet in container.demux(container.streams.audio[0]):
            if packet.pts is not None:
                return float(packet.pts * packet.time_base)
    raise AssertionError("no audio")


@pytest.mark.parametrize("reports", [True, False])
def test_the_file_waits_for_every_sender_report_then_falls_back_to_arrival(
    tmp_path: Path, reports: bool
) -> None:
    remuxer = Remuxer(lambda ms, ext: tmp_path / f"{ms}.{ext}", None, ("video", "audio"))
    # The publisher's clocks: video RTP 0 and audio RTP 0 were both sent at its time 100.0.
    known = {"video": SenderReport(100.0, 0), "audio": SenderReport(100.0, 0)}
    frames = synthetic(SYNC_WAIT_S + 1.0, audio_late_s=0.5)
    for i in range(0, len(frames), 10):
        batch = frames[i : i + 10]
        given = known if reports and batch[0][5] > 1.0 else {}
        remuxer.write(batch, 0.0, given)
        if batch[-1][5] < 1.0 or (not reports and batch[-1][5] < SYNC_WAIT_S - 0.1):
            assert remuxer.stats.path is None, "the file waits for the reports"
    remuxer.close()
    assert remuxer.stats.sync == ("sender_reports" if reports else "arrival")
    assert remuxer.stats.path is not None
    # By the reports audio starts with the video; by arrival half a second later.
    assert audio_start(remuxer.stats.path) == pytest.approx(0.0 if reports else 0.5, abs=0.025)
