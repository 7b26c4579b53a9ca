"""Fails loudly when an aiortc upgrade moves the private internals the relay forwards through."""

from __future__ import annotations

import aiortc
import pytest
from aiortc import RTCPeerConnection
from aiortc.rtp import RtcpSenderInfo, RtcpSrPacket

from stream import aiortc_internals
from stream.aiortc_internals import (
    AiortcInternalsError,
    FrameTap,
    install_frame_tap,
    install_sender_report_tap,
)

QUEUE = "_RTCRtpReceiver__decoder_queue"
STARTED = "_RTCRtpReceiver__started"
JITTER = "_RTCRtpReceiver__jitter_buffer"
MAPPER = "_RTCRtpReceiver__timestamp_mapper"
RTX = "_RTCRtpReceiver__rtx_ssrc"


def test_pinned_version_and_seams_present() -> None:
    assert aiortc.__version__ == aiortc_internals.PINNED_VERSION
    aiortc_internals.check()


def test_other_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiortc, "__version__", "9.9.9")
    with pytest.raises(AiortcInternalsError, match=r"aiortc==1\.16\.0"):
        aiortc_internals.check()


async def test_frame_tap_replaces_the_decoder_queue() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        got: list[tuple[object, bytes, int]] = []
        tap = install_frame_tap(receiver, lambda codec, data, ts: got.append((codec, data, ts)))
        assert vars(receiver)[QUEUE] is tap

        class Frame:
            data = b"\x10\x02\x00"
            timestamp = 3000

        tap.put(("vp8", Frame()))
        assert got == [("vp8", b"\x10\x02\x00", 3000)]
        assert tap.get() is None  # the decoder thread exits at once
        tap.put(None)
        assert tap.closed
        # The seams the relay calls on live objects.
        assert callable(receiver._send_rtcp_pli)
        sender = pc.addTransceiver("video", direction="sendonly").sender
        assert callable(sender._send_keyframe)
    finally:
        await pc.close()


async def test_audio_tap_drops_aiortcs_playout_prefetch() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("audio", direction="recvonly").receiver
        assert vars(receiver)[JITTER]._prefetch == 4  # aiortc's default: 80 ms held back
        install_frame_tap(receiver, lambda *a: None, "audio")
        assert vars(receiver)[JITTER]._prefetch == 0
    finally:
        await pc.close()


async def test_tap_refuses_a_started_receiver() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        vars(receiver)[STARTED] = True
        with pytest.raises(AiortcInternalsError, match="before receive"):
            install_frame_tap(receiver, lambda *a: None)
        vars(receiver)[STARTED] = False
    finally:
        await pc.close()


def test_frame_tap_survives_a_failing_sink() -> None:
    def boom(*args: object) -> None:
        raise RuntimeError("boom")

    class Codec:
        name = "VP8"

    class Frame:
        data = b"x"
        timestamp = 0

    FrameTap(boom).put((Codec(), Frame()))  # logged, not raised into aiortc


async def test_sender_reports_are_read_on_the_frames_timeline() -> None:
    pc = RTCPeerConnection()
    try:
        receiver = pc.addTransceiver("video", direction="recvonly").receiver
        got: list[tuple[float, int]] = []
        install_sender_report_tap(receiver, lambda ntp_s, rtp: got.append((ntp_s, rtp)))
        info = RtcpSenderInfo(
            ntp_timestamp=(100 << 32) + (1 << 31), rtp_timestamp=4000, packet_count=1, octet_count=1
        )
        report = RtcpSrPacket(ssrc=1234, sender_info=info)
        await receiver._handle_rtcp_packet(report)
        assert got == []  # no frame yet: the frames' timeline has no origin
        vars(receiver)[MAPPER].map(1000)  # aiortc rebases frames on the first one's timestamp
        await receiver._handle_rtcp_packet(report)
        assert got == [(100.5, 3000)]
        vars(receiver)[RTX][1234] = 99  # an RTX stream's reports say nothing about the media
        await receiver._handle_rtcp_packet(report)
        assert len(got) == 1
    finally:
        await pc.close()
