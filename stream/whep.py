"""The WHEP viewer session: sends the publisher's encoded frames to one viewer."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from stream.aiortc_internals import on_keyframe_request
from stream.codecs import Offer, viewer_preferences
from stream.errors import CodecMismatch
from stream.forwarding import ForwardedTrack, Forwarder
from stream.peer import PeerSession


class Viewer(PeerSession):
    """One viewer's WHEP session: a send-only peer negotiated to the publisher's codecs."""

    def __init__(self, stream_id: str, ice_servers: Sequence[str]) -> None:
        super().__init__(stream_id, ice_servers)
        self.tracks: dict[str, ForwardedTrack] = {}

    async def start(
        self,
        offer: Offer,
        offer_sdp: str,
        forwarders: Mapping[str, Forwarder],
        codecs: Mapping[str, str],
    ) -> str:
        """Attach a forwarded track per kind the stream carries and return the SDP answer."""
        kinds = [k for k in offer.kinds if k in codecs]
        if not kinds:
            have = ", ".join(sorted(codecs)) or "nothing"
            raise CodecMismatch(f"the offer asks for none of the stream's media ({have})")
        for kind in kinds:
            mime = codecs[kind]
            if mime not in {m for m, _ in offer.codecs[kind]}:
                raise CodecMismatch(f"the stream sends {mime}; the offer's {kind} lacks it")
        for kind in kinds:
            forwarder = forwarders[kind]
            track = forwarder.track()
            self.tracks[kind] = track
            transceiver = self.pc.addTransceiver(track, direction="sendonly")
            transceiver.setCodecPreferences(viewer_preferences(codecs[kind], kind))
            if kind == "video":
                on_keyframe_request(transceiver.sender, forwarder.want_keyframe)
        return await self.answer(offer_sdp)

    async def close(self) -> None:
        """Stop the forwarded tracks and close the peer connection."""
        for track in self.tracks.values():
            track.stop()
        await super().close()
