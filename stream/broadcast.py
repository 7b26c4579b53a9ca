"""One live broadcast: its publisher, its viewers, their forwarders and the media watchdog."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stream.archive import RecordingArchive
from stream.codecs import Offer
from stream.errors import NotPublishing, SessionNotFound
from stream.forwarding import Forwarder
from stream.keyframes import KeyframeRequester
from stream.metrics import StreamMetrics
from stream.peer import PeerSession
from stream.recording import Recorder
from stream.tasks import cancel, supervise
from stream.whep import Viewer
from stream.whip import Publisher

log = logging.getLogger("livesell.stream")


@dataclass(frozen=True, slots=True)
class BroadcastConfig:
    """Relay tuning shared by every broadcast."""

    ice_servers: tuple[str, ...] = ()
    #: The broadcast ends when no media arrived for this long (also the time allowed to connect).
    media_timeout_s: float = 10.0
    #: At most one keyframe request to the publisher per this interval.
    keyframe_interval_s: float = 0.5
    video_queue: int | None = None
    audio_queue: int | None = None
    #: A viewer whose connection is not up within this long is dropped.
    connect_timeout_s: float = 30.0
    #: Where broadcasts are recorded (None: not recorded).
    archive: RecordingArchive | None = None
    #: Whether H.264 broadcasts also get a live HLS playlist.
    hls: bool = True


class Broadcast:
    """Owns one stream's publisher session, viewer sessions and forwarders."""

    def __init__(
        self,
        stream_id: str,
        config: BroadcastConfig,
        on_live: Callable[[], None],
        on_end: Callable[[str], None],
    ) -> None:
        self.stream_id = stream_id
        self.config = config
        self.metrics = StreamMetrics(stream_id)
        self.keyframes = KeyframeRequester(
            self._send_pli, stream_id, min_interval_s=config.keyframe_interval_s
        )
        self.forwarders = {
            "video": Forwarder("video", self.metrics, self.keyframes, config.video_queue),
            "audio": Forwarder("audio", self.metrics, None, config.audio_queue),
        }
        self.publisher = Publisher(stream_id, config.ice_servers)
        self.viewers: dict[str, Viewer] = {}
        self.live = False
        self.ended = False
        self._on_live = on_live
        self._on_end = on_end
        self._started_at = time.monotonic()
        self._watchdog: asyncio.Task[None] | None = None
        self.recorder: Recorder | None = None

    async def start(self, offer: Offer, offer_sdp: str) -> str:
        """Accept the publisher's offer and start watching its media; return the SDP answer."""
        answer = await self.publisher.start(offer, offer_sdp, self.forwarders)
        self.publisher.on_gone(self._on_end)
        self._start_recording()
        self._started_at = time.monotonic()
        self._watchdog = supervise(self._watch_media(), f"watchdog:{self.stream_id}")
        return answer

    def _start_recording(self) -> None:
        archive = self.config.archive
        if archive is None or not archive.valid_id(self.stream_id) or not self.publisher.codecs:
            return
        self.recorder = Recorder(
            self.stream_id,
            archive,
            self.publisher.codecs,
            self.keyframes.request,
            hls=self.config.hls,
            sender_reports=self.publisher.sender_reports,
        )
        for forwarder in self.forwarders.values():
            forwarder.listen(self.recorder.frame)
        self.recorder.start()

    def mark_live_if_media(self) -> None:
        """Announce "live" once media has arrived (the watchdog polls; ending checks too)."""
        if not self.live and any(f.last_frame_at for f in self.forwarders.values()):
            self.live = True
            self._on_live()

    async def _send_pli(self) -> int:
        return await self.publisher.request_keyframe()

    async def _watch_media(self) -> None:
        # Polling (rather than a hook per frame) keeps the per-frame path free of callbacks.
        tick = max(0.05, min(0.25, self.config.media_timeout_s / 4))
        while not self.ended:
            await asyncio.sleep(tick)
            self.mark_live_if_media()
            seen = [f.last_frame_at for f in self.forwarders.values() if f.last_frame_at]
            last = max(seen) if seen else self._started_at
            if time.monotonic() - last > self.config.media_timeout_s:
                log.info("stream %s: no media for %.1f s", self.stream_id, time.monotonic() - last)
                self._on_end("no_media")
                return

    def session(self, session_id: str) -> PeerSession:
        """The publisher or viewer session ``session_id``."""
        if session_id == self.publisher.id:
            return self.publisher
        viewer = self.viewers.get(session_id)
        if viewer is None:
            raise SessionNotFound(f"no session {session_id!r} on stream {self.stream_id!r}")
        return viewer

    async def add_viewer(self, offer: Offer, offer_sdp: str) -> tuple[Viewer, str]:
        """Negotiate a viewer to the publisher's codecs; return it and its SDP answer."""
        if self.ended or not self.publisher.codecs:
            raise NotPublishing(f"stream {self.stream_id!r} is not live")
        viewer = Viewer(self.stream_id, self.config.ice_servers)
        try:
            answer = await viewer.start(offer, offer_sdp, self.forwarders, self.publisher.codecs)
        except BaseException:
            await viewer.close()
            raise
        if self.ended:
            await viewer.close()
            raise NotPublishing(f"stream {self.stream_id!r} ended")
        self.viewers[viewer.id] = viewer
        self.metrics.viewer_joined()
        return viewer, answer

    async def remove_viewer(self, session_id: str) -> None:
        """Disconnect one viewer."""
        viewer = self.viewers.pop(session_id, None)
        if viewer is None:
            raise SessionNotFound(f"no viewer {session_id!r} on stream {self.stream_id!r}")
        self.metrics.viewer_left()
        await viewer.close()

    def snapshot(self) -> dict[str, Any]:
        """The broadcast's metrics."""
        data = self.metrics.snapshot(self.keyframes.sent, self.keyframes.asked)
        data["live"] = self.live and not self.ended
        if self.recorder is not None:
            stats = self.recorder.stats
            data["recording"] = {
                "file": stats.path.name if stats.path else None,
                "frames_written": stats.frames_written,
                "dropped_frames": self.recorder.dropped,
                "hls": self.recorder.hls,
                "sync": stats.sync,
            }
        return data

    async def close(self) -> None:
        """End the broadcast: close every viewer, then the publisher (idempotent)."""
        if self.ended:
            return
        self.ended = True
        await cancel(self._watchdog)
        await self.keyframes.close()
        viewers = list(self.viewers.values())
        self.viewers.clear()
        for forwarder in self.forwarders.values():
            forwarder.close()
        await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)
        self.metrics.viewers = 0
        await self.publisher.close()
        if self.recorder is not None:
            await self.recorder.close()
