"""What publisher and viewer sessions share: a peer connection, SDP exchange and trickle ICE."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Sequence

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
from aiortc.sdp import MediaDescription, SessionDescription, candidate_from_sdp

from stream.errors import BadSdp, TrickleNotSupported
from stream.tasks import cancel, supervise

log = logging.getLogger("livesell.stream")

#: How long the answer may wait for ICE gathering (host candidates are near instant).
ANSWER_TIMEOUT_S = 10.0


def new_session_id() -> str:
    """An unguessable session id: it is the capability to DELETE/PATCH the session."""
    return secrets.token_urlsafe(16)


def defer_mdns(sdp: str) -> tuple[str, str]:
    """Split an offer into (the SDP without its mDNS candidates, those candidates as a fragment).

    Browsers hide host addresses behind ``<uuid>.local`` names unless the page may use the
    camera, so a viewer's offer usually holds nothing else. aiortc resolves such names inside
    setRemoteDescription, waiting up to a second each when the name cannot be resolved (always,
    across the internet). The answer must not wait for that: the viewer's connectivity checks
    reach our host candidates anyway and we learn its address from them (a peer-reflexive
    candidate), so the names are tried afterwards, for a viewer on our own LAN. When any name
    is deferred, ``a=end-of-candidates`` moves to the fragment too, after them.
    """
    kept: list[str] = []
    deferred: list[str] = []
    mid: str | None = None
    end = False
    for line in sdp.splitlines():
        if line.startswith("a=mid:"):
            mid = line[6:]
        if line.startswith("a=candidate:") and ".local " in line and _parses(line):
            if mid is not None:
                deferred.append(f"a=mid:{mid}")
            deferred.append(line)
            continue
        if line == "a=end-of-candidates":
            end = True
        kept.append(line)
    if not deferred:
        return sdp, ""
    if end:
        kept = [line for line in kept if line != "a=end-of-candidates"]
        deferred.append("a=end-of-candidates")
    return "\r\n".join(kept) + "\r\n", "\r\n".join(deferred)


def _parses(line: str) -> bool:
    try:
        candidate_from_sdp(line[12:])
    except Exception:
        return False  # left in the offer, whose negotiation then fails with BadSdp as before
    return True


def make_peer(ice_servers: Sequence[str]) -> RTCPeerConnection:
    """A peer connection; no ICE servers means host candidates only (no STUN lookups)."""
    servers = [RTCIceServer(urls=url) for url in ice_servers]
    return RTCPeerConnection(RTCConfiguration(iceServers=servers))


class PeerSession:
    """One WHIP or WHEP session: a peer connection identified by an unguessable id."""

    def __init__(self, stream_id: str, ice_servers: Sequence[str]) -> None:
        self.id = new_session_id()
        self.stream_id = stream_id
        self.pc = make_peer(ice_servers)
        self.etag = f'"{secrets.token_hex(8)}"'
        self._on_gone: Callable[[str], None] | None = None
        self._closed = False
        self._connect_timer: asyncio.TimerHandle | None = None
        self._mdns: asyncio.Task[None] | None = None
        self.pc.on("connectionstatechange", self._state_changed)

    def on_gone(self, callback: Callable[[str], None], connect_within_s: float = 0) -> None:
        """Call ``callback(reason)`` once when the peer fails, closes, or never connects."""
        self._on_gone = callback
        if connect_within_s > 0:
            # ICE with no usable candidate pair can stay "connecting" forever: cap it.
            loop = asyncio.get_running_loop()
            self._connect_timer = loop.call_later(connect_within_s, self._check_connected)

    def _check_connected(self) -> None:
        if self.pc.connectionState != "connected":
            self._gone("connect_timeout")

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        log.debug("session %s of %s: connection %s", self.id, self.stream_id, state)
        if state in ("failed", "closed"):
            self._gone("disconnected")

    def _gone(self, reason: str) -> None:
        if not self._closed and self._on_gone is not None:
            callback, self._on_gone = self._on_gone, None
            callback(reason)

    async def answer(self, offer_sdp: str) -> str:
        """Apply the remote offer and return our SDP answer (all candidates included)."""
        offer_sdp, mdns = defer_mdns(offer_sdp)
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except Exception as exc:
            raise BadSdp(f"the SDP offer cannot be negotiated: {exc}") from exc
        answer = await self.pc.createAnswer()
        await asyncio.wait_for(self.pc.setLocalDescription(answer), ANSWER_TIMEOUT_S)
        if mdns:
            self._mdns = supervise(self._add_candidates(mdns), f"mdns:{self.id}")
        return self.pc.localDescription.sdp

    async def trickle(self, fragment: str) -> None:
        """Add the remote candidates of a trickle-ICE SDP fragment (RFC 8840)."""
        remote = self.pc.remoteDescription
        ufrags = {m.ice.usernameFragment for m in _media(remote) if m.ice is not None}
        for raw in fragment.splitlines():
            line = raw.strip()
            if line.startswith("a=ice-ufrag:") and line[12:] not in ufrags:
                raise TrickleNotSupported("ICE restarts are not supported; start a new session")
        await self._add_candidates(fragment)

    async def _add_candidates(self, fragment: str) -> None:
        """Add the ``a=candidate`` lines (each under its ``a=mid``) and end-of-candidates."""
        mid: str | None = None
        for raw in fragment.splitlines():
            line = raw.strip()
            if line.startswith("a=mid:"):
                mid = line[6:]
            elif line.startswith("a=candidate:"):
                try:
                    candidate = candidate_from_sdp(line[12:])
                except Exception as exc:
                    raise BadSdp(f"bad candidate line: {line!r}") from exc
                candidate.sdpMid = mid
                candidate.sdpMLineIndex = None if mid is not None else 0
                await self.pc.addIceCandidate(candidate)
            elif line == "a=end-of-candidates":
                await self.pc.addIceCandidate(None)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Close the peer connection (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._on_gone = None
        if self._connect_timer is not None:
            self._connect_timer.cancel()
        await cancel(self._mdns)
        try:
            await self.pc.close()
        except Exception:
            log.exception("closing session %s of %s failed", self.id, self.stream_id)


def _media(desc: RTCSessionDescription | None) -> list[MediaDescription]:
    if desc is None:
        return []
    return list(SessionDescription.parse(desc.sdp).media)
