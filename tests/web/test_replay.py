"""A show's replay data over HTTP: its room events archived in SQL, its recordings listed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.chat.test_room_ws import connect, make_stream, token
from tests.flashsale.helpers import make_sale
from tests.stream.peers import HostPeer
from web.auth import TokenSigner

Auth = Callable[..., dict[str, str]]


@pytest.fixture
async def host_peer() -> AsyncIterator[HostPeer]:
    """An H.264 publisher, hung up after the test."""
    peer = HostPeer(codec="video/h264")
    yield peer
    await peer.close()


async def timeline(client: TestClient, sid: str, after: int = 0) -> dict[str, Any]:
    """GET the timeline page after ``after``."""
    resp = await client.get(f"/api/streams/{sid}/timeline?after_seq={after}")
    assert resp.status == 200, await resp.text()
    return dict(await resp.json())


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_show_leaves_its_timeline_in_sql_and_its_replay_is_listed(
    client: TestClient, auth: Auth, signer: TokenSigner, host_peer: HostPeer
) -> None:
    sid = await make_stream(client, auth)
    host_headers = {"Content-Type": "application/sdp", **auth("host", "hostess")}
    resp = await client.post(f"/whip/{sid}", data=await host_peer.offer(), headers=host_headers)
    assert resp.status == 201, await resp.text()
    await host_peer.accept(await resp.text())
    session = resp.headers["Location"]
    began = int(time.time() * 1000)
    host = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'hostess', 'host')}")
    viewer = await connect(client, f"/ws/rooms/{sid}?token={token(signer, 'amy')}")
    sale = await make_sale(client, auth, stream_id=sid, open_now=False, host="hostess")
    await host.send("pin", product_id=sale["product_id"])
    await host.until(lambda e: e["type"] == "pinned")
    await viewer.send("chat", text="love it")
    await viewer.until(lambda e: e["type"] == "chat")
    admin = auth("admin", "ops")
    assert (await client.post(f"/api/sales/{sale['id']}/open", headers=admin)).status == 200
    await viewer.until(lambda e: e["type"] == "sale" and e["phase"] == "opened")
    assert (await client.post(f"/api/sales/{sale['id']}/close", headers=admin)).status == 200
    await viewer.until(lambda e: e["type"] == "sale" and e["phase"] == "closed")
    await asyncio.sleep(1.0)
    assert (await client.delete(session, headers=auth("host", "hostess"))).status == 200
    await viewer.until(lambda e: e["type"] == "stream" and e["status"] == "ended")
    await host.ws.close()
    await viewer.ws.close()

    deadline = time.monotonic() + 10
    while not any(
        e["type"] == "stream" and e["status"] == "ended"
        for e in (await timeline(client, sid))["events"]
    ):
        assert time.monotonic() < deadline, "the end of the show was not archived"
        await asyncio.sleep(0.2)
    page = await timeline(client, sid)
    events = page["events"]
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    kinds = [(e["type"], e.get("phase") or e.get("status")) for e in events]
    for wanted in [("pinned", None), ("chat", None), ("sale", "opened"), ("sale", "closed")]:
        assert wanted in kinds, kinds
    assert kinds.index(("sale", "opened")) < kinds.index(("sale", "closed"))
    pinned = next(e for e in events if e["type"] == "pinned")
    assert pinned["product"]["id"] == sale["product_id"]
    assert all(began - 5000 <= e["at_ms"] <= time.time() * 1000 for e in events)
    chat = next(e for e in events if e["type"] == "chat")
    assert chat["text"] == "love it"
    later = await timeline(client, sid, after=seqs[1])
    assert [e["seq"] for e in later["events"]] == seqs[2:]

    replays = (await (await client.get("/api/replays")).json())["replays"]
    assert [r["id"] for r in replays] == [sid]
    assert replays[0]["url"] == f"/replay/{sid}"
    assert (await client.get(f"/replay/{sid}")).status == 200
    assert (await (await client.get(f"/api/streams/{sid}/sales/open")).json())["sales"] == []
    again = await make_sale(client, auth, stream_id=sid)  # a replay price, after the show
    listed = (await (await client.get(f"/api/streams/{sid}/sales/open")).json())["sales"]
    assert [s["id"] for s in listed] == [again["id"]] and listed[0]["state"] == "open"
    bad = await client.get(f"/api/streams/{sid}/timeline?after_seq=-1")
    assert bad.status == 400 and (await bad.json())["error"] == "bad_request"
    assert (await client.get("/api/streams/nope/timeline")).status == 404
