"""Encoded frames into containers with PyAV, never decoding: a recording file and live HLS.

Everything here runs in a worker thread (:mod:`stream.recording` hands it batches), so muxing
and file I/O never touch the event loop that forwards frames to viewers.

- H.264 (+ Opus) goes to fragmented MP4 (``empty_moov``, a fragment per keyframe or second,
  every packet flushed): a crash leaves a file that plays up to its last complete fragment.
  The same packets feed FFmpeg's HLS muxer (fMP4 segments of about one second).
- VP8 (+ Opus) goes to WebM (a cluster per second, flushed likewise). VP8 is left out of HLS:
  HLS players need H.264, and transcoding would cost a decoder plus an encoder per stream.

Timestamps: each track's RTP clock (90 kHz video, 48 kHz Opus) is unwrapped and placed on the
recording's timeline by the publisher's RTCP sender reports (the publisher's wall-clock time of
an RTP timestamp), so audio and video captured together play together however differently they
travelled. The file waits up to ``SYNC_WAIT_S`` for a report of every track; without them each
track is placed by the arrival of its first frame. The file starts at the first video keyframe.
"""

from __future__ import annotations

import fractions
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
from av.container import OutputContainer

log = logging.getLogger("livesell.stream")

#: One frame as the recorder queues it: (kind, mime, data, rtp timestamp, keyframe, arrival).
Frame = tuple[str, str, bytes, int, bool, float]

#: An Opus identification header (RFC 7845 5.1): stereo, 312 samples pre-skip, 48 kHz.
OPUS_HEAD = b"OpusHead\x01\x02" + (312).to_bytes(2, "little") + (48000).to_bytes(4, "little")
OPUS_HEAD += b"\x00\x00\x00"

#: ``file_for(started_at_ms, extension)``: where a recording starting then is written.
FileNamer = Callable[[int, str], Path]

MP4_OPTIONS = {
    "movflags": "frag_keyframe+empty_moov+default_base_moof",
    "frag_duration": "1000000",
    "flush_packets": "1",
}
WEBM_OPTIONS = {"cluster_time_limit": "1000", "flush_packets": "1"}
HLS_SEGMENT_S = 1
HLS_LIST_SIZE = 6
#: How long a new file waits for a sender report of every track before placing them by arrival
#: (aiortc sends its first 0.5–1.5 s in; Chromium its video's about 0.6 s and its audio's about
#: 2.3 s after connecting, since libwebrtc reports audio every 5 s, the first after half that).
SYNC_WAIT_S = 4.0


@dataclass(frozen=True, slots=True)
class SenderReport:
    """An RTCP sender report: the publisher's wall clock (NTP, in seconds) at RTP time ``rtp``."""

    ntp_s: float
    rtp: int

    def at(self, ts: int, rate: int) -> float:
        """The publisher's wall-clock time of RTP timestamp ``ts`` (within 2^31 ticks of it)."""
        diff = (ts - self.rtp) & 0xFFFFFFFF
        if diff >= 1 << 31:
            diff -= 1 << 32
        return self.ntp_s + diff / rate


def container_for(video_mime: str | None) -> str:
    """The recording's file extension for a stream whose video codec is ``video_mime``."""
    return "webm" if video_mime == "video/vp8" else "mp4"


def h264_parameter_sets(data: bytes) -> bytes:
    """The SPS and PPS NAL units of an Annex-B access unit, Annex-B framed (the extradata)."""
    out = b""
    for nal in data.split(b"\x00\x00\x01")[1:]:
        nal = nal.rstrip(b"\x00")
        if nal and nal[0] & 0x1F in (7, 8):
            out += b"\x00\x00\x00\x01" + nal
    return out


def picture_size(mime: str, data: bytes) -> tuple[int, int]:
    """Width and height of a keyframe: VP8's frame header, or H.264 by decoding this one frame."""
    if mime == "video/vp8":
        # RFC 6386 9.1: a key frame's start code, then 14-bit width and height.
        if len(data) >= 10 and data[3:6] == b"\x9d\x01\x2a":
            width = int.from_bytes(data[6:8], "little") & 0x3FFF
            return width, int.from_bytes(data[8:10], "little") & 0x3FFF
        return 0, 0
    try:
        decoder = av.CodecContext.create("h264", "r")
        for frame in decoder.decode(av.Packet(data)):
            return frame.width, frame.height
    except av.FFmpegError:
        log.warning("could not read the picture size of the first keyframe")
    return 0, 0


def _rate(kind: str) -> int:
    return 90000 if kind == "video" else 48000


class _Clock:
    """One track's RTP clock unwrapped and placed on the recording's timeline."""

    def __init__(self, rate: int, first_ts: int, offset: int) -> None:
        self.rate = rate
        self._last_raw = first_ts
        self._ext = offset
        self.last_pts = -1

    def pts(self, ts: int) -> int:
        """The timeline position of RTP timestamp ``ts`` (wrap-around and reordering aware)."""
        diff = (ts - self._last_raw) & 0xFFFFFFFF
        if diff >= 1 << 31:
            diff -= 1 << 32
        self._last_raw = ts
        self._ext += diff
        return self._ext


@dataclass(frozen=True, slots=True)
class _Track:
    """One kind's stream in one output."""

    output: OutputContainer
    stream: av.stream.Stream
    time_base: fractions.Fraction


@dataclass
class RemuxStats:
    """What the remuxer did, read by the recorder's owner (tests, metrics)."""

    frames_written: int = 0
    frames_skipped: int = 0
    path: Path | None = None
    started_at_ms: int = 0
    #: How the tracks were placed on the timeline: "sender_reports" or "arrival".
    sync: str = "arrival"


class Remuxer:
    """Writes one broadcast's frames into its recording file (and HLS playlist for H.264)."""

    def __init__(self, file_for: FileNamer, hls_dir: Path | None, kinds: tuple[str, ...]) -> None:
        self._file_for = file_for
        self._hls_dir = hls_dir
        self._kinds = kinds
        self._outputs: list[OutputContainer] = []
        self._streams: dict[str, list[_Track]] = {}
        self._clocks: dict[str, _Clock] = {}
        self._t0: float | None = None
        # Frames from the first keyframe on, held until every track's sender report is known.
        self._pending: list[Frame] = []
        self._reports: dict[str, SenderReport] = {}
        self._wall_offset = 0.0
        # Fixed when the file opens: the reports placing the tracks, and the first frame's time.
        self._sync: dict[str, SenderReport] | None = None
        self._origin = 0.0
        self.stats = RemuxStats()

    def write(
        self,
        batch: list[Frame],
        wall_offset: float,
        reports: dict[str, SenderReport] | None = None,
    ) -> None:
        """Mux ``batch`` (arrival order); ``wall_offset`` turns monotonic arrival into epoch;
        ``reports`` are the publisher's latest sender reports per kind."""
        self._wall_offset = wall_offset
        self._reports.update(reports or {})
        for frame in batch:
            if self._t0 is not None:
                self._mux(*frame)
                continue
            kind, _mime, _data, _ts, keyframe, arrival = frame
            # Start at a keyframe: of the video when there is video, else the first frame.
            if not self._pending and (("video" in self._kinds and kind != "video") or not keyframe):
                self.stats.frames_skipped += 1
                continue
            self._pending.append(frame)
            waited = arrival - self._pending[0][5]
            if all(k in self._reports for k in self._kinds) or waited >= SYNC_WAIT_S:
                self._start()

    def _start(self) -> None:
        """Open the file with the pending frames, placed by sender reports when all are known."""
        pending, self._pending = self._pending, []
        if all(k in self._reports for k in self._kinds):
            self._sync = dict(self._reports)
            self.stats.sync = "sender_reports"
            kind, _mime, _data, ts, _key, _arrival = pending[0]
            self._origin = self._sync[kind].at(ts, _rate(kind))
        self._open(pending[0], self._wall_offset)
        for frame in pending:
            self._mux(*frame)

    def _open(self, first: Frame, wall_offset: float) -> None:
        kind, mime, data, _ts, _key, arrival = first
        self._t0 = arrival
        started_ms = int((arrival + wall_offset) * 1000)
        video = mime if kind == "video" else None
        path = self._file_for(started_ms, container_for(video))
        self.stats.path, self.stats.started_at_ms = path, started_ms
        size = picture_size(mime, data) if video else (0, 0)
        if video == "video/vp8":
            self._add_output(
                av.open(str(path), "w", format="webm", options=WEBM_OPTIONS), first, size
            )
            return
        self._add_output(av.open(str(path), "w", format="mp4", options=MP4_OPTIONS), first, size)
        if self._hls_dir is not None and video == "video/h264":
            # A new broadcast's playlist starts over: the previous one's files go.
            self._hls_dir.mkdir(parents=True, exist_ok=True)
            for old in self._hls_dir.iterdir():
                old.unlink(missing_ok=True)
            options = {
                "hls_time": str(HLS_SEGMENT_S),
                "hls_list_size": str(HLS_LIST_SIZE),
                "hls_segment_type": "fmp4",
                "hls_flags": "independent_segments+delete_segments+program_date_time+temp_file",
                "hls_fmp4_init_filename": f"{started_ms}-init.mp4",
                "hls_segment_filename": str(self._hls_dir / f"{started_ms}-%05d.m4s"),
            }
            playlist = str(self._hls_dir / "index.m3u8")
            try:
                hls = av.open(playlist, "w", format="hls", options=options)
            except (av.FFmpegError, OSError):
                # The recording matters more than the live HLS: it goes on without it.
                log.exception("live HLS for %s could not start", playlist)
                return
            self._add_output(hls, first, size)

    def _add_output(self, out: OutputContainer, first: Frame, size: tuple[int, int]) -> None:
        _kind, mime, data, *_ = first
        for k in self._kinds:
            stream: av.stream.Stream
            if k == "video":
                video = out.add_stream("vp8" if mime == "video/vp8" else "h264", rate=30)
                video.width, video.height = size
                if mime == "video/h264":
                    video.codec_context.extradata = h264_parameter_sets(data)
                stream, rate = video, 90000
            else:
                stream, rate = out.add_stream("opus", rate=48000), 48000
                stream.codec_context.extradata = OPUS_HEAD
            time_base = fractions.Fraction(1, rate)
            stream.time_base = time_base
            self._streams.setdefault(k, []).append(_Track(out, stream, time_base))
        self._outputs.append(out)

    def _mux(
        self, kind: str, mime: str, data: bytes, ts: int, keyframe: bool, arrival: float
    ) -> None:
        streams = self._streams.get(kind)
        if not streams or self._t0 is None:
            self.stats.frames_skipped += 1
            return
        clock = self._clocks.get(kind)
        if clock is None:
            rate = _rate(kind)
            if self._sync is not None:
                start = self._sync[kind].at(ts, rate) - self._origin
            else:
                start = arrival - self._t0
            # A frame captured before the file's first one gets a negative time: skipped below.
            clock = self._clocks[kind] = _Clock(rate, ts, round(start * rate))
        pts = clock.pts(ts)
        if pts <= clock.last_pts:
            self.stats.frames_skipped += 1  # a duplicate or late frame: the muxers need order
            return
        clock.last_pts = pts
        for track in streams:
            packet = av.Packet(data)
            packet.stream = track.stream
            packet.pts = packet.dts = pts
            packet.time_base = track.time_base
            packet.is_keyframe = keyframe
            try:
                track.output.mux(packet)
            except av.FFmpegError:
                log.exception("muxing a %s frame into %s failed", kind, track.output.name)
        self.stats.frames_written += 1

    def close(self) -> None:
        """Finish every output (the MP4 index, the playlist's end); idempotent."""
        if self._pending:
            self._start()  # a broadcast shorter than the wait for sender reports
        outputs, self._outputs = self._outputs, []
        for out in outputs:
            try:
                out.close()
            except av.FFmpegError:
                log.exception("closing recording output %s failed", out.name)
