"""Recording while relaying: real aiortc publishers, files read back with PyAV."""

from __future__ import annotations

import asyncio
import itertools
import shutil
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import av
import pytest
from av import VideoFrame

from stream.archive import RecordingArchive
from stream.recording import Recorder
from stream.relay import Relay
from tests.stream.peers import HostPeer, read_counter

FPS = 30


@pytest.fixture
async def archive(tmp_path: Path) -> RecordingArchive:
    """An archive in the test's own folder."""
    return RecordingArchive(tmp_path / "recordings")


@pytest.fixture
async def relay(archive: RecordingArchive) -> AsyncIterator[Relay]:
    """A relay that records into ``archive``."""
    r = Relay(media_timeout_s=3.0, keyframe_interval_s=0.3, archive=archive)
    yield r
    await r.close()


async def broadcast(relay: Relay, codec: str, seconds: float, stream_id: str = "show") -> HostPeer:
    """Publish counter video (+ Opus) with ``codec`` for ``seconds``, then unpublish."""
    host = HostPeer(fps=FPS, codec=codec)
    try:
        answer = await relay.publish(stream_id, await host.offer())
        await host.accept(answer.sdp)
        await asyncio.sleep(seconds)
        await relay.unpublish(stream_id, answer.session_id)
    finally:
        await host.close()
    return host


def read_back(path: Path) -> tuple[list[int], list[int], int]:
    """(video pts in order, the counters of the decoded frames, audio packets) of ``path``."""
    with av.open(str(path)) as container:
        pts: list[int] = []
        counters: list[int] = []
        audio = 0
        for packet in container.demux():
            if packet.size == 0:
                continue
            if packet.stream.type == "audio":
                audio += 1
                continue
            assert packet.pts is not None
            pts.append(packet.pts)
            counters.extend(read_counter(f) for f in packet.decode() if isinstance(f, VideoFrame))
    return pts, counters, audio


def assert_recorded(path: Path, sent: int) -> None:
    """The file holds (nearly) every frame sent, in order, with increasing timestamps."""
    pts, counters, audio = read_back(path)
    assert all(b > a for a, b in itertools.pairwise(pts)), pts
    assert all(b > a for a, b in itertools.pairwise(counters)), counters
    # The publisher's first frames can come before the answer is applied; the last ones may be
    # in flight when it unpublishes. Nearly all of the rest are there.
    assert len(counters) >= sent - 15, f"{len(counters)} of {sent} frames recorded"
    assert counters[-1] - counters[0] + 1 <= len(counters) + 5, "frames missing in between"
    assert audio > 0


@pytest.mark.parametrize(("codec", "ext"), [("video/h264", "mp4"), ("video/vp8", "webm")])
async def test_a_broadcast_is_recorded_frame_for_frame(
    relay: Relay, archive: RecordingArchive, codec: str, ext: str
) -> None:
    host = await broadcast(relay, codec, 3.0)
    [recording] = archive.files("show")
    assert recording.name.endswith(f".{ext}")
    assert_recorded(archive.root / "show" / recording.name, host.video.count)


@pytest.mark.parametrize(
    ("codec", "other"), [("video/h264", "video/vp8"), ("video/vp8", "video/h264")]
)
async def test_a_crash_leaves_a_playable_file_and_a_reconnect_a_second_one(
    relay: Relay, archive: RecordingArchive, tmp_path: Path, codec: str, other: str
) -> None:
    host = HostPeer(fps=FPS, codec=codec)
    try:
        answer = await relay.publish("show", await host.offer())
        await host.accept(answer.sdp)
        await asyncio.sleep(3.0)
        # A copy taken mid-broadcast is what a crash would leave: no trailer, no final index.
        [live] = archive.files("show")
        crashed = tmp_path / f"crashed{Path(live.name).suffix}"
        shutil.copy(archive.root / "show" / live.name, crashed)
        await relay.unpublish("show", answer.session_id)
    finally:
        await host.close()
    _pts, counters, _ = read_back(crashed)
    assert len(counters) > FPS, "at least the first second's fragments are readable"
    assert all(b > a for a, b in itertools.pairwise(counters))
    await asyncio.sleep(0.01)  # two files need two distinct start milliseconds
    again = await broadcast(relay, other, 2.0)  # the codec may change across a reconnect
    first, second = archive.files("show")
    assert first.name == live.name and second.name.endswith(
        "webm" if other == "video/vp8" else "mp4"
    )
    assert second.started_at_ms > first.started_at_ms
    assert_recorded(archive.root / "show" / second.name, again.video.count)


def test_retention_deletes_old_recordings_only(tmp_path: Path) -> None:
    archive = RecordingArchive(tmp_path, retention_days=1)
    now_ms = 1_800_000_000_000
    old = archive.new_file("a", now_ms - 2 * 86_400_000, "mp4")
    new = archive.new_file("b", now_ms - 1000, "webm")
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    assert archive.prune(now_s=now_ms / 1000) == 1
    assert archive.streams() == ["b"]
    assert archive.file_path("b", new.name) == new
    assert archive.file_path("b", "../a") is None
    assert archive.files("../etc") == []


async def test_a_recorder_behind_drops_to_the_next_keyframe_and_counts(tmp_path: Path) -> None:
    asked: list[int] = []
    codecs = {"video": "video/h264", "audio": "audio/opus"}
    recorder = Recorder("show", RecordingArchive(tmp_path), codecs, lambda: asked.append(1), 4)
    # No writer task runs, so the queue only fills: as when the disk stalls.
    video = [(True, 0), (False, 1), (False, 2), (False, 3), (False, 4), (False, 5), (True, 6)]
    for keyframe, n in video:
        recorder.frame("video", "video/h264", b"x", n * 3000, keyframe, float(n))
    assert recorder.dropped == 3  # frames 4 and 5 (queue full), then the full queue's keyframe
    # A keyframe asked for when it fell behind, and again when that keyframe found no room.
    assert asked == [1, 1]
    recorder.frame("audio", "audio/opus", b"a", 0, True, 7.0)
    assert recorder.dropped == 4


REPO = Path(__file__).resolve().parents[2]

#: A process that records an aiortc publisher until it is killed.
RECORDING_PROCESS = """
import asyncio, sys
from pathlib import Path
from stream.archive import RecordingArchive
from stream.relay import Relay
from tests.stream.peers import HostPeer

async def main():
    archive = RecordingArchive(Path(sys.argv[1]))
    relay = Relay(media_timeout_s=30, keyframe_interval_s=0.3, archive=archive)
    host = HostPeer(codec=sys.argv[2])
    answer = await relay.publish("show", await host.offer())
    await host.accept(answer.sdp)
    await asyncio.sleep(3.0)
    print("recording", flush=True)
    await asyncio.sleep(60)

asyncio.run(main())
"""


@pytest.mark.parametrize("codec", ["video/h264", "video/vp8"])
async def test_a_process_killed_mid_show_leaves_a_playable_recording(
    tmp_path: Path, codec: str
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        RECORDING_PROCESS,
        str(tmp_path),
        codec,
        stdout=asyncio.subprocess.PIPE,
        cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        assert await asyncio.wait_for(proc.stdout.readline(), 30) == b"recording\n"
    finally:
        proc.kill()  # SIGKILL: no trailer, no index, no close
        await proc.wait()
    [recording] = RecordingArchive(tmp_path).files("show")
    _pts, counters, audio = read_back(tmp_path / "show" / recording.name)
    assert len(counters) > 2 * FPS, "at least its first two seconds play"
    assert all(b > a for a, b in itertools.pairwise(counters)) and audio > 0
