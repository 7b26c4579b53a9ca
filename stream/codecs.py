"""Codec choice for ingest and playback, and keyframe detection in encoded frames."""

from __future__ import annotations

from dataclasses import dataclass

from aiortc import RTCRtpReceiver
from aiortc.rtcrtpparameters import RTCRtpCodecCapability
from aiortc.sdp import SessionDescription

from stream.errors import BadSdp, CodecMismatch

#: Codecs the relay forwards, per kind, in our order of preference when an offer allows several.
FORWARDABLE = {"video": ("video/vp8", "video/h264"), "audio": ("audio/opus",)}
KINDS = ("audio", "video")


@dataclass(frozen=True, slots=True)
class Offer:
    """A parsed SDP offer: which media kinds it carries and the codecs of each, in order."""

    kinds: tuple[str, ...]
    codecs: dict[str, list[tuple[str, dict[str, object]]]]


def parse_offer(sdp: str) -> Offer:
    """Parse and sanity-check an SDP offer; BadSdp when it is not usable."""
    if not sdp.strip().startswith("v=0"):
        raise BadSdp("the body is not an SDP offer (it must start with v=0)")
    try:
        desc = SessionDescription.parse(sdp)
    except Exception as exc:
        raise BadSdp(f"the SDP offer does not parse: {exc}") from exc
    kinds: list[str] = []
    codecs: dict[str, list[tuple[str, dict[str, object]]]] = {}
    for media in desc.media:
        if media.kind not in KINDS:
            continue
        if media.kind in kinds:
            raise BadSdp(f"only one {media.kind} section is supported")
        if (
            media.ice is None
            or not media.ice.usernameFragment
            or not media.dtls
            or not media.dtls.fingerprints
        ):
            raise BadSdp(f"the {media.kind} section lacks ICE credentials or a DTLS fingerprint")
        kinds.append(media.kind)
        # The m= line's payload-type order is the offerer's preference, not the rtpmap order.
        rank = {str(pt): i for i, pt in enumerate(media.fmt)}
        ordered = sorted(media.rtp.codecs, key=lambda c: rank.get(str(c.payloadType), len(rank)))
        codecs[media.kind] = [(c.mimeType.lower(), dict(c.parameters)) for c in ordered]
    if not kinds:
        raise BadSdp("the SDP offer has no audio or video section")
    return Offer(tuple(kinds), codecs)


def _capabilities(kind: str) -> list[RTCRtpCodecCapability]:
    caps = RTCRtpReceiver.getCapabilities(kind)
    return list(caps.codecs) if caps is not None else []


def _rtx(kind: str) -> list[RTCRtpCodecCapability]:
    return [c for c in _capabilities(kind) if c.mimeType.lower().endswith("/rtx")]


def ingest_preferences(offer: Offer, kind: str) -> list[RTCRtpCodecCapability]:
    """The one codec (plus RTX) to accept from a publisher for ``kind``: its first forwardable."""
    offered = [mime for mime, _ in offer.codecs.get(kind, [])]
    for mime in offered:
        if mime in FORWARDABLE[kind]:
            # Keep every local variant of that codec (H.264 has two profiles); aiortc narrows
            # to the one compatible with the offer.
            chosen = [c for c in _capabilities(kind) if c.mimeType.lower() == mime]
            return chosen + _rtx(kind)
    wanted = ", ".join(FORWARDABLE[kind])
    raise CodecMismatch(f"the {kind} section offers none of the forwardable codecs ({wanted})")


def viewer_preferences(codec_mime: str, kind: str) -> list[RTCRtpCodecCapability]:
    """Capabilities that negotiate a viewer to the publisher's codec ``codec_mime``."""
    chosen = [c for c in _capabilities(kind) if c.mimeType.lower() == codec_mime.lower()]
    return chosen + _rtx(kind)


def is_keyframe(mime: str, data: bytes) -> bool:
    """Whether an encoded frame can start decoding (VP8 key frame, H.264 IDR; audio always)."""
    if mime == "video/vp8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
        return len(data) > 0 and not data[0] & 0x01
    if mime == "video/h264":
        return _has_idr(data)
    return True


def _has_idr(data: bytes) -> bool:
    # aiortc's depayloader emits Annex-B (start code + NAL). Stop at the first slice: an access
    # unit's IDR slice comes after its SPS/PPS, and any non-IDR slice means a delta frame.
    pos = data.find(b"\x00\x00\x01")
    while 0 <= pos < len(data) - 3:
        nal_type = data[pos + 3] & 0x1F
        if nal_type == 5:
            return True
        if nal_type == 1:
            return False
        pos = data.find(b"\x00\x00\x01", pos + 3)
    return False
