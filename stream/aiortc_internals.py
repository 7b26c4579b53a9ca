"""THE ONLY module that touches aiortc's private internals (pinned to aiortc 1.16.0).

aiortc has no public API to forward encoded media, so the relay uses these private seams:

- ``RTCRtpReceiver._RTCRtpReceiver__decoder_queue``: ``_handle_rtp_packet`` puts every complete
  encoded frame from the jitter buffer there as ``(codec, JitterFrame)``. We replace the queue,
  before ``receive()`` starts the decoder thread, with a :class:`FrameTap` that hands the frame's
  bytes to the relay instead of the decoder.
- ``RTCRtpSender._send_keyframe``: called by the sender's RTCP handler on a viewer's PLI/FIR. We
  replace it on each viewer's sender to forward the request upstream (rate-limited).
- ``RTCRtpReceiver._send_rtcp_pli(ssrc)``: asks the publisher for a keyframe.
- ``RTCRtpReceiver._RTCRtpReceiver__rtx_ssrc``: tells media SSRCs from RTX ones.
- ``RTCRtpReceiver._RTCRtpReceiver__jitter_buffer``: audio's is replaced by one without prefetch.
- ``RTCRtpReceiver._handle_rtcp_packet``: called by the DTLS transport for each RTCP packet routed
  to the receiver. We shadow it per receiver to read the publisher's sender reports (the NTP time
  of an RTP timestamp), which aiortc keeps only as stats without the RTP timestamp.
- ``RTCRtpReceiver._RTCRtpReceiver__timestamp_mapper._origin``: aiortc rebases the timestamps of
  the frames it hands on to the first frame's RTP timestamp; a report's RTP timestamp is rebased
  the same way so that the two meet.

The public half of the route: ``RTCRtpSender`` accepts an ``av.Packet`` from a track's ``recv()``
and packetises it with the codec's ``pack()`` without encoding. :func:`check` verifies all of this
and fails loudly (:class:`AiortcInternalsError`) when an upgrade moves anything.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import aiortc
from aiortc import RTCRtpReceiver, RTCRtpSender
from aiortc.codecs import get_encoder
from aiortc.jitterbuffer import JitterBuffer
from aiortc.rtcrtpparameters import RTCRtpCodecParameters
from aiortc.rtp import RtcpSrPacket

log = logging.getLogger("livesell.stream")

PINNED_VERSION = "1.16.0"
_QUEUE_ATTR = "_RTCRtpReceiver__decoder_queue"
_STARTED_ATTR = "_RTCRtpReceiver__started"
_RTX_ATTR = "_RTCRtpReceiver__rtx_ssrc"
_JITTER_ATTR = "_RTCRtpReceiver__jitter_buffer"
_MAPPER_ATTR = "_RTCRtpReceiver__timestamp_mapper"

#: ``sink(codec, data, timestamp)`` receives one complete encoded frame.
FrameSink = Callable[[RTCRtpCodecParameters, bytes, int], None]

#: ``sink(ntp_s, rtp_timestamp)`` receives one sender report of the publisher's media SSRC, its
#: RTP timestamp (mod 2^32) on the timeline of the frames the tap hands on.
SenderReportSink = Callable[[float, int], None]


class AiortcInternalsError(RuntimeError):
    """The installed aiortc does not have the private internals the relay forwards through."""


def check() -> None:
    """Raise AiortcInternalsError unless aiortc is the pinned version with the seams we use."""
    if aiortc.__version__ != PINNED_VERSION:
        raise AiortcInternalsError(
            f"livesell's stream relay needs aiortc=={PINNED_VERSION} (it uses private internals, "
            f"see stream/aiortc_internals.py); found aiortc {aiortc.__version__}"
        )
    needed: list[tuple[type, str]] = [
        (RTCRtpReceiver, "_handle_rtp_packet"),
        (RTCRtpReceiver, "_send_rtcp_pli"),
        (RTCRtpReceiver, "_handle_rtcp_packet"),
        (RTCRtpReceiver, "receive"),
        (RTCRtpSender, "_send_keyframe"),
        (RTCRtpSender, "_handle_rtcp_packet"),
        (RTCRtpSender, "_next_encoded_frame"),
    ]
    missing = [f"{cls.__name__}.{name}" for cls, name in needed if not hasattr(cls, name)]
    for mime in ("video/VP8", "video/H264", "audio/opus"):
        rate, channels = (48000, 2) if mime.startswith("audio") else (90000, None)
        codec = RTCRtpCodecParameters(mimeType=mime, clockRate=rate, channels=channels)
        if not callable(getattr(get_encoder(codec), "pack", None)):
            missing.append(f"{mime} encoder.pack")
    if missing:
        raise AiortcInternalsError(
            f"aiortc {aiortc.__version__} lacks internals the relay uses: {', '.join(missing)}"
        )


class FrameTap:
    """Stands in for the receiver's decoder queue: frames go to ``sink``, nothing is decoded."""

    def __init__(self, sink: FrameSink) -> None:
        self._sink = sink
        self.closed = False

    def put(self, item: tuple[Any, Any] | None) -> None:
        """Called on the event loop by ``_handle_rtp_packet`` (or with None on stop)."""
        if item is None:
            self.closed = True
            return
        codec, frame = item
        try:
            self._sink(codec, frame.data, frame.timestamp)
        except Exception:
            # An exception here would surface inside aiortc's datagram handling; log and go on.
            log.exception("forwarding a %s frame failed", codec.name)

    def get(self) -> None:
        """Called once by aiortc's decoder thread: None makes it exit at once (no decoding)."""
        return None


def install_frame_tap(receiver: RTCRtpReceiver, sink: FrameSink, kind: str = "video") -> FrameTap:
    """Route ``receiver``'s encoded frames to ``sink``; call before ``receive()`` starts."""
    attrs = vars(receiver)
    if any(a not in attrs for a in (_QUEUE_ATTR, _STARTED_ATTR, _JITTER_ATTR)):
        raise AiortcInternalsError(f"RTCRtpReceiver has no {_QUEUE_ATTR}; aiortc changed")
    if attrs[_STARTED_ATTR]:
        raise AiortcInternalsError("the frame tap must be installed before receive() starts")
    tap = FrameTap(sink)
    setattr(receiver, _QUEUE_ATTR, tap)
    if kind == "audio":
        # aiortc holds 4 audio frames (80 ms) before playing; a relay plays nothing, and the
        # viewer's own jitter buffer smooths arrival, so pass each Opus frame on at once.
        setattr(receiver, _JITTER_ATTR, JitterBuffer(capacity=16, prefetch=0))
    return tap


def install_sender_report_tap(receiver: RTCRtpReceiver, sink: SenderReportSink) -> None:
    """Hand ``sink`` each RTCP sender report of ``receiver``'s media SSRC (RTX SSRCs left out)
    once its first frame has passed (before, the frames' timeline has no origin yet)."""
    attrs = vars(receiver)
    if _MAPPER_ATTR not in attrs or not hasattr(attrs[_MAPPER_ATTR], "_origin"):
        raise AiortcInternalsError(f"RTCRtpReceiver has no {_MAPPER_ATTR}._origin; aiortc changed")
    mapper = attrs[_MAPPER_ATTR]
    handle = receiver._handle_rtcp_packet

    async def tapped(packet: Any) -> None:
        origin = mapper._origin
        report = isinstance(packet, RtcpSrPacket) and origin is not None
        if report and packet.ssrc not in attrs.get(_RTX_ATTR, {}):
            info = packet.sender_info
            try:
                sink(info.ntp_timestamp / (1 << 32), (info.rtp_timestamp - origin) & 0xFFFFFFFF)
            except Exception:
                log.exception("reading a sender report failed")
        await handle(packet)

    # The transport looks the handler up on the receiver for every packet: an instance
    # attribute shadows the method, which still runs (aiortc's stats and receiver reports).
    receiver._handle_rtcp_packet = tapped  # type: ignore[method-assign]


def media_ssrcs(receiver: RTCRtpReceiver) -> list[int]:
    """The publisher's media SSRCs seen by ``receiver`` (RTX SSRCs left out)."""
    rtx = getattr(receiver, _RTX_ATTR, {})
    return [s.source for s in receiver.getSynchronizationSources() if s.source not in rtx]


async def request_keyframe(receiver: RTCRtpReceiver) -> int:
    """Send a PLI for every media SSRC of ``receiver``; return how many were sent."""
    sent = 0
    for ssrc in media_ssrcs(receiver):
        await receiver._send_rtcp_pli(ssrc)
        sent += 1
    return sent


def on_keyframe_request(sender: RTCRtpSender, callback: Callable[[], None]) -> None:
    """Call ``callback`` when the viewer behind ``sender`` sends PLI or FIR."""
    # The RTCP handler calls self._send_keyframe(); an instance attribute shadows the method,
    # whose own effect (forcing the encoder) is moot since nothing is encoded.
    sender._send_keyframe = callback  # type: ignore[method-assign]
