"""Offer parsing and codec choice: the publisher's preference wins among forwardable codecs."""

from __future__ import annotations

import re

import pytest
from aiortc import RTCPeerConnection

from stream.codecs import ingest_preferences, parse_offer, viewer_preferences
from stream.errors import BadSdp, CodecMismatch


async def _offer() -> str:
    pc = RTCPeerConnection()
    try:
        pc.addTransceiver("audio", direction="sendonly")
        pc.addTransceiver("video", direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return str(pc.localDescription.sdp)
    finally:
        await pc.close()


async def test_the_m_line_order_is_the_preference() -> None:
    sdp = await _offer()
    offer = parse_offer(sdp)
    assert offer.kinds == ("audio", "video")
    assert ingest_preferences(offer, "video")[0].mimeType.lower() == "video/vp8"
    # Move an H.264 payload type first on the m= line (as Safari does): H.264 is chosen.
    m = re.search(r"m=video (\d+) (\S+) ([\d ]+)", sdp)
    assert m is not None
    pts = m.group(3).split()
    h264 = re.search(r"a=rtpmap:(\d+) H264/90000", sdp)
    assert h264 is not None
    pts.remove(h264.group(1))
    line = f"m=video {m.group(1)} {m.group(2)} {h264.group(1)} {' '.join(pts)}"
    reordered = sdp.replace(m.group(0), line)
    chosen = ingest_preferences(parse_offer(reordered), "video")
    assert {c.mimeType.lower() for c in chosen} == {"video/h264", "video/rtx"}
    assert [c.mimeType.lower() for c in ingest_preferences(offer, "audio")] == ["audio/opus"]
    assert {c.mimeType.lower() for c in viewer_preferences("video/vp8", "video")} == {
        "video/vp8",
        "video/rtx",
    }


async def test_offers_without_forwardable_codecs_or_media_are_refused() -> None:
    sdp = await _offer()
    no_opus = re.sub(r"a=rtpmap:(\d+) opus/48000/2", r"a=rtpmap:\1 speex/48000/2", sdp)
    with pytest.raises(CodecMismatch):
        ingest_preferences(parse_offer(no_opus), "audio")
    with pytest.raises(BadSdp):
        parse_offer("not sdp")
    with pytest.raises(BadSdp):
        parse_offer(re.sub(r"a=ice-ufrag:.*\r\n", "", sdp))
