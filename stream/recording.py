"""The recorder: taps a broadcast's encoded frames and remuxes them off the event loop.

The forwarders call :meth:`Recorder.frame` for every frame they fan out; it only appends to a
bounded queue, so recording never slows the forwarding path. A supervised task hands the queue
to :class:`stream.remux.Remuxer` in a worker thread in batches. When the writer falls behind and
the queue is full, frames are dropped (counted): video up to its next keyframe, since the frames
in between depend on what was dropped, and a keyframe is asked for at once.

For HLS the recorder also asks the publisher for a keyframe when none came for a segment's
length (browsers send one only when asked), so segments stay about one second long.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

from stream.archive import RecordingArchive
from stream.remux import HLS_SEGMENT_S, Frame, Remuxer, RemuxStats, SenderReport
from stream.tasks import cancel, supervise

log = logging.getLogger("livesell.stream")

#: Default queue bound in frames: about five seconds of 30 fps video with its audio.
RECORDER_QUEUE = 400


class Recorder:
    """Records one broadcast (one publisher session) into one file of the archive."""

    def __init__(
        self,
        stream_id: str,
        archive: RecordingArchive,
        codecs: dict[str, str],
        want_keyframe: Callable[[], None],
        max_queue: int = RECORDER_QUEUE,
        hls: bool = True,
        sender_reports: Mapping[str, SenderReport] | None = None,
    ) -> None:
        self.stream_id = stream_id
        kinds = tuple(k for k in ("video", "audio") if k in codecs)
        self.hls = hls and codecs.get("video") == "video/h264"
        hls_dir = archive.hls_dir(stream_id) if self.hls else None
        self._remuxer = Remuxer(
            lambda ms, ext: archive.new_file(stream_id, ms, ext), hls_dir, kinds
        )
        self._want_keyframe = want_keyframe
        # The publisher's latest RTCP sender reports per kind (updated on the event loop).
        self._reports = sender_reports if sender_reports is not None else {}
        self._max_queue = max_queue
        self._queue: deque[Frame] = deque()
        self._wake = asyncio.Event()
        self._skip_video = "video" in kinds
        self._last_keyframe_at = 0.0
        self._closed = False
        self._task: asyncio.Task[None] | None = None
        # One thread of its own: writes and the final close never overlap, even when the
        # writer task is cancelled mid-write (FFmpeg contexts are not thread-safe).
        self._thread = ThreadPoolExecutor(1, thread_name_prefix=f"recorder-{stream_id}")
        #: Frames dropped because the writer fell behind (whole GOP tails for video).
        self.dropped = 0

    @property
    def stats(self) -> RemuxStats:
        """What was written: frame counts, the file and its start."""
        return self._remuxer.stats

    def start(self) -> None:
        """Start the writer task and ask for the keyframe the file starts with."""
        self._task = supervise(self._run(), f"recorder:{self.stream_id}")
        if self._skip_video:
            self._want_keyframe()

    def frame(
        self, kind: str, mime: str, data: bytes, timestamp: int, keyframe: bool, at: float
    ) -> None:
        """Queue one encoded frame (called by a forwarder on the event loop; never blocks)."""
        if self._closed:
            return
        video = kind == "video"
        if video and keyframe:
            self._last_keyframe_at = at
            self._skip_video = False
        if len(self._queue) >= self._max_queue:
            self.dropped += 1
            if video and not self._skip_video:
                self._skip_video = True
                self._want_keyframe()
            return
        if video and self._skip_video:
            self.dropped += 1
            return
        self._queue.append((kind, mime, data, timestamp, keyframe, at))
        self._wake.set()

    async def _run(self) -> None:
        # Epoch = monotonic + offset, fixed once so file names and timelines agree.
        wall_offset = time.time() - time.monotonic()
        try:
            while not self._closed or self._queue:
                if not self._queue:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), HLS_SEGMENT_S / 2)
                    except TimeoutError:
                        pass
                    self._keyframe_for_hls()
                    continue
                batch = list(self._queue)
                self._queue.clear()
                await self._in_thread(self._remuxer.write, batch, wall_offset, dict(self._reports))
                self._keyframe_for_hls()
        finally:
            await asyncio.shield(self._in_thread(self._remuxer.close))

    def _in_thread(self, fn: Callable[..., None], *args: object) -> asyncio.Future[None]:
        return asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)

    def _keyframe_for_hls(self) -> None:
        if self.hls and time.monotonic() - self._last_keyframe_at > HLS_SEGMENT_S:
            self._want_keyframe()

    async def close(self, drain_timeout_s: float = 5.0) -> None:
        """Write what is queued, then finish the file; idempotent."""
        if self._closed:
            return
        self._closed = True
        self._wake.set()
        if self._task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._task), drain_timeout_s)
        except TimeoutError:
            log.warning(
                "recorder %s: queue not written within %.1f s", self.stream_id, drain_timeout_s
            )
            await cancel(self._task)
        finally:
            self._thread.shutdown(wait=False)
        if self.dropped:
            log.info("recorder %s: %d frames dropped (writer behind)", self.stream_id, self.dropped)
