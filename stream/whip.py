"""The WHIP publisher session: receives the host's encoded media and feeds the forwarders."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from aiortc import RTCRtpReceiver
from aiortc.sdp import SessionDescription

from stream.aiortc_internals import install_frame_tap, install_sender_report_tap, request_keyframe
from stream.codecs import Offer, ingest_preferences
from stream.forwarding import Forwarder
from stream.peer import PeerSession
from stream.remux import SenderReport


class Publisher(PeerSession):
    """One host's WHIP session: a receive-only peer whose frames are tapped, never decoded."""

    def __init__(self, stream_id: str, ice_servers: Sequence[str]) -> None:
        super().__init__(stream_id, ice_servers)
        self.receivers: dict[str, RTCRtpReceiver] = {}
        #: The negotiated codec (lower-case MIME type) per kind, known once the answer is made.
        self.codecs: dict[str, str] = {}
        #: The latest RTCP sender report per kind: where the publisher's RTP clocks meet its
        #: wall clock, so the recording can put audio and video on one timeline.
        self.sender_reports: dict[str, SenderReport] = {}

    async def start(self, offer: Offer, offer_sdp: str, forwarders: Mapping[str, Forwarder]) -> str:
        """Negotiate one forwardable codec per kind, tap the receivers, return the SDP answer."""
        prefs = {kind: ingest_preferences(offer, kind) for kind in offer.kinds}
        for kind in offer.kinds:
            transceiver = self.pc.addTransceiver(kind, direction="recvonly")
            transceiver.setCodecPreferences(prefs[kind])
            install_frame_tap(transceiver.receiver, forwarders[kind].publish, kind)
            install_sender_report_tap(transceiver.receiver, self._report_sink(kind))
            self.receivers[kind] = transceiver.receiver
        answer = await self.answer(offer_sdp)
        for media in SessionDescription.parse(answer).media:
            codecs = [c for c in media.rtp.codecs if c.mimeType.lower() != f"{media.kind}/rtx"]
            if media.kind in self.receivers and codecs:
                self.codecs[media.kind] = codecs[0].mimeType.lower()
        return answer

    def _report_sink(self, kind: str) -> Callable[[float, int], None]:
        def sink(ntp_s: float, rtp: int) -> None:
            self.sender_reports[kind] = SenderReport(ntp_s, rtp)

        return sink

    async def request_keyframe(self) -> int:
        """Send the publisher a PLI; return how many were sent (0 before media flows)."""
        receiver = self.receivers.get("video")
        if receiver is None or self.pc.connectionState != "connected":
            return 0
        return await request_keyframe(receiver)
