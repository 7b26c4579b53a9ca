"""Viewers that offer only mDNS host candidates, as a browser page without camera access does."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from stream.peer import defer_mdns
from tests.stream.peers import HostPeer, ViewerPeer
from web.keys import CATALOG

SDP = {"Content-Type": "application/sdp"}

OFFER = (
    "v=0\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n"
    "a=mid:0\r\n"
    "a=candidate:1 1 udp 2113937151 0f9c3b8e-1111-4a4a-9d9d-123456789abc.local 5000 typ host\r\n"
    "a=candidate:2 1 udp 2113937151 192.0.2.7 5001 typ host\r\n"
    "a=end-of-candidates\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n"
    "a=mid:1\r\n"
    "a=candidate:3 1 udp 2113937151 aa.local 5002 typ host\r\n"
)


def test_defer_mdns_moves_local_names_and_end_of_candidates_after_the_answer() -> None:
    kept, later = defer_mdns(OFFER)
    assert ".local" not in kept
    assert "192.0.2.7 5001" in kept and "a=end-of-candidates" not in kept
    assert later.splitlines() == [
        "a=mid:0",
        "a=candidate:1 1 udp 2113937151 0f9c3b8e-1111-4a4a-9d9d-123456789abc.local 5000 typ host",
        "a=mid:1",
        "a=candidate:3 1 udp 2113937151 aa.local 5002 typ host",
        "a=end-of-candidates",
    ]
    plain = OFFER.replace(".local", ".example")
    assert defer_mdns(plain) == (plain, "")
    broken = "a=mid:0\r\na=candidate:nonsense x.local\r\n"
    assert defer_mdns(broken) == (broken, "")


def only_mdns(sdp: str) -> str:
    """Hide every host address behind an unresolvable mDNS name, like Chromium does."""
    return re.sub(
        r"^(a=candidate:\S+ \d \S+ \d+) (\S+) (\d+ typ host)",
        lambda m: f"{m[1]} {uuid.uuid4()}.local {m[3]}",
        sdp,
        flags=re.M,
    )


@pytest.fixture
async def made() -> AsyncIterator[list[Any]]:
    peers: list[Any] = []
    yield peers
    for p in peers:
        await p.close()


async def test_viewer_offering_only_mdns_names_still_plays(
    client: TestClient, auth: Callable[..., dict[str, str]], made: list[Any]
) -> None:
    await client.app[CATALOG].create_stream("show", "hana", "")
    host = HostPeer()
    made.append(host)
    resp = await client.post(
        "/whip/show", data=await host.offer(), headers={**SDP, **auth("host", "hana")}
    )
    assert resp.status == 201, await resp.text()
    await host.accept(await resp.text())

    viewer = ViewerPeer()
    made.append(viewer)
    offer = only_mdns(await viewer.offer())
    assert ".local" in offer and "typ host" in offer
    resp = await client.post("/whep/show", data=offer, headers=SDP)
    assert resp.status == 201, await resp.text()
    # Our checks to the server's host candidates are what it learns our address from.
    await viewer.accept(await resp.text())
    await viewer.wait_frames(10, within_s=15)
