"""The WHIP/WHEP HTTP edge over the full app, with real aiortc peers."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.stream.peers import HostPeer, ViewerPeer
from web.app import create_app
from web.keys import CATALOG, RELAY
from web.settings import Settings
from web.whip import RoomStreamLifecycle

SDP = {"Content-Type": "application/sdp"}
Auth = Callable[..., dict[str, str]]


@pytest.fixture
async def show(client: TestClient) -> str:
    """A scheduled stream hosted by user ``hana``."""
    await client.app[CATALOG].create_stream("show", "hana", "Spring sale")
    return "show"


@pytest.fixture
async def made() -> AsyncIterator[list[HostPeer | ViewerPeer]]:
    """Peers to hang up after the test."""
    peers: list[HostPeer | ViewerPeer] = []
    yield peers
    await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def error_of(resp: Any) -> tuple[int, str]:
    """The status and JSON error code of a failed response."""
    body = await resp.json()
    assert set(body) == {"error", "message"}, body
    return resp.status, body["error"]


async def publish(client: TestClient, auth: Auth, made: list[Any]) -> tuple[HostPeer, str]:
    """Go live on ``show`` as its host over WHIP; return the host and its session URL."""
    host = HostPeer()
    made.append(host)
    headers = {**SDP, **auth("host", "hana")}
    resp = await client.post("/whip/show", data=await host.offer(), headers=headers)
    assert resp.status == 201, await resp.text()
    assert resp.content_type == "application/sdp"
    await host.accept(await resp.text())
    return host, resp.headers["Location"]


async def test_whip_refusals(client: TestClient, auth: Auth, show: str, made: list[Any]) -> None:
    host = HostPeer()
    made.append(host)
    offer = await host.offer()
    resp = await client.post("/whip/show", data=offer, headers=SDP)
    assert await error_of(resp) == (401, "unauthorized")
    resp = await client.post("/whip/show", data=offer, headers={**SDP, "Authorization": "Bearer x"})
    assert await error_of(resp) == (401, "unauthorized")
    resp = await client.post("/whip/show", data=offer, headers={**SDP, **auth("host", "other")})
    assert await error_of(resp) == (403, "forbidden")
    resp = await client.post("/whip/show", data=offer, headers={**SDP, **auth("viewer", "bob")})
    assert await error_of(resp) == (403, "forbidden")
    resp = await client.post("/whip/nope", data=offer, headers={**SDP, **auth("host", "hana")})
    assert await error_of(resp) == (404, "stream_not_found")
    resp = await client.post(
        "/whip/show", data=offer, headers={"Content-Type": "text/plain", **auth("host", "hana")}
    )
    assert await error_of(resp) == (415, "unsupported_media_type")
    resp = await client.post("/whip/show", data="v=1 nonsense", headers={**SDP, **auth("admin")})
    assert await error_of(resp) == (400, "bad_sdp")
    assert not client.app[RELAY].is_live("show")


async def test_go_live_watch_and_end_over_http(
    client: TestClient, auth: Auth, show: str, made: list[Any]
) -> None:
    _host, whip_session = await publish(client, auth, made)
    assert whip_session.startswith("/whip/show/")

    # A second publisher, even the host itself, is refused while live.
    again = HostPeer()
    made.append(again)
    resp = await client.post(
        "/whip/show", data=await again.offer(), headers={**SDP, **auth("host", "hana")}
    )
    assert await error_of(resp) == (409, "already_live")

    # Anonymous viewers may watch; a bad token is still a 401.
    viewer = ViewerPeer()
    made.append(viewer)
    offer = await viewer.offer()
    resp = await client.post("/whep/show", data=offer, headers={**SDP, "Authorization": "Bearer x"})
    assert await error_of(resp) == (401, "unauthorized")
    resp = await client.post("/whep/show", data=offer, headers=SDP)
    assert resp.status == 201, await resp.text()
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
    whep_session = resp.headers["Location"]
    assert whep_session.startswith("/whep/show/")
    await viewer.accept(await resp.text())
    await viewer.wait_frames(10, within_s=15)

    deadline = time.monotonic() + 5
    while (await client.app[CATALOG].get_stream("show")).status != "live":  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "catalog never saw the stream live"
        await asyncio.sleep(0.05)

    resp = await client.get("/api/streams/show/metrics", headers=auth("host", "hana"))
    assert resp.status == 200
    metrics = await resp.json()
    assert metrics["viewers"] == 1 and metrics["frames_out"] > 0
    resp = await client.get("/api/streams/show/metrics", headers=auth("viewer", "bob"))
    assert resp.status == 403
    resp = await client.get("/api/streams/show/metrics")
    assert resp.status == 401

    resp = await client.delete(whep_session)
    assert resp.status == 200
    resp = await client.delete(whep_session)
    assert await error_of(resp) == (404, "session_not_found")

    # A second viewer, then the host ends the broadcast: the viewer is hung up.
    second = ViewerPeer()
    made.append(second)
    resp = await client.post("/whep/show", data=await second.offer(), headers=SDP)
    assert resp.status == 201
    await second.accept(await resp.text())
    await second.wait_frames(5, within_s=10)
    resp = await client.delete(whip_session)
    assert resp.status == 200
    await asyncio.wait_for(second.video_ended.wait(), 10)
    deadline = time.monotonic() + 5
    while (await client.app[CATALOG].get_stream("show")).status != "ended":  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "catalog never saw the stream end"
        await asyncio.sleep(0.05)
    late = ViewerPeer()
    made.append(late)
    resp = await client.post("/whep/show", data=await late.offer(), headers=SDP)
    assert await error_of(resp) == (404, "not_live")
    resp = await client.get("/api/streams/show/metrics", headers=auth("admin"))
    assert (await resp.json())["live"] is False


async def test_whep_for_unknown_or_idle_stream(client: TestClient, show: str) -> None:
    viewer = ViewerPeer()
    try:
        offer = await viewer.offer()
        resp = await client.post("/whep/nope", data=offer, headers=SDP)
        assert await error_of(resp) == (404, "stream_not_found")
        resp = await client.post("/whep/show", data=offer, headers=SDP)
        assert await error_of(resp) == (404, "not_live")
        resp = await client.post("/whep/show", data=offer)
        assert await error_of(resp) == (415, "unsupported_media_type")
    finally:
        await viewer.close()


async def test_cors_preflight_and_trickle(
    client: TestClient, auth: Auth, show: str, made: list[Any]
) -> None:
    resp = await client.options("/whip/show")
    assert resp.status == 204
    assert resp.headers["Accept-Post"] == "application/sdp"
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "Authorization" in resp.headers["Access-Control-Allow-Headers"]
    assert "Location" in resp.headers["Access-Control-Expose-Headers"]

    _host, session = await publish(client, auth, made)
    resp = await client.options(session)
    assert resp.status == 204 and "PATCH" in resp.headers["Access-Control-Allow-Methods"]
    frag = "a=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
    trickle = {"Content-Type": "application/trickle-ice-sdpfrag"}
    resp = await client.patch(session, data=frag, headers=trickle)
    assert resp.status == 204 and resp.headers["ETag"]
    resp = await client.patch(session, data=frag, headers={**trickle, "If-Match": '"stale"'})
    assert await error_of(resp) == (412, "precondition_failed")
    resp = await client.patch(session, data="a=ice-ufrag:new\r\na=ice-pwd:x\r\n", headers=trickle)
    assert await error_of(resp) == (422, "unprocessable")
    resp = await client.patch(session, data=frag, headers=SDP)
    assert await error_of(resp) == (415, "unsupported_media_type")


class FakeCatalog:
    """Records status changes."""

    def __init__(self) -> None:
        self.statuses: list[tuple[str, str]] = []

    async def set_stream_status(self, stream_id: str, status: str) -> None:
        """Record."""
        self.statuses.append((stream_id, status))


class Hub:
    """A room hub that records announcements, or fails when asked to."""

    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.announced: list[tuple[str, str]] = []

    async def stream_status(self, stream_id: str, status: str) -> None:
        """Record, or fail."""
        if self.fail:
            raise RuntimeError("room down")
        self.announced.append((stream_id, status))


class Sales:
    """The sale service's side of the lifecycle: records which streams' sales it closed."""

    def __init__(self) -> None:
        self.closed: list[str] = []

    async def close_stream_sales(self, stream_id: str) -> list[int]:
        """Record."""
        self.closed.append(stream_id)
        return []


async def test_lifecycle_updates_catalog_and_room_and_survives_room_failure() -> None:
    released: list[str] = []

    async def release(stream_id: str) -> None:
        released.append(stream_id)

    catalog, hub, sales = FakeCatalog(), Hub(), Sales()
    lifecycle = RoomStreamLifecycle(catalog, hub, release, sales)  # type: ignore[arg-type]
    await lifecycle.stream_live("s")
    await lifecycle.stream_ended("s", "unpublished")
    assert catalog.statuses == [("s", "live"), ("s", "ended")]
    assert hub.announced == [("s", "live"), ("s", "ended")]
    assert released == ["s"]
    assert sales.closed == ["s"]  # the host ended it: its sales close
    await lifecycle.stream_ended("s", "no_media")
    assert sales.closed == ["s"]  # the publisher may come back: its sales stay open

    broken = RoomStreamLifecycle(FakeCatalog(), Hub(fail=True), release, sales)  # type: ignore[arg-type]
    await broken.stream_live("s")  # logged, not raised


async def test_second_worker_redirects_viewers_to_the_publishers_worker(
    aiohttp_client: Any, settings: Settings, auth: Auth, made: list[Any]
) -> None:
    a = await aiohttp_client(create_app(dataclasses.replace(settings, port=18080)))
    b = await aiohttp_client(create_app(dataclasses.replace(settings, port=18081)))
    await a.app[CATALOG].create_stream("show", "hana", "Spring sale")
    _host, session = await publish(a, auth, made)

    viewer = ViewerPeer()
    made.append(viewer)
    offer = await viewer.offer()
    resp = await b.post("/whep/show", data=offer, headers=SDP, allow_redirects=False)
    assert resp.status == 307
    assert resp.headers["Location"] == "http://127.0.0.1:18080/whep/show"
    # The same stream cannot be published on another worker meanwhile.
    other = HostPeer()
    made.append(other)
    resp = await b.post(
        "/whip/show", data=await other.offer(), headers={**SDP, **auth("host", "hana")}
    )
    assert await error_of(resp) == (409, "already_live")

    assert (await a.delete(session)).status == 200
    resp = await b.post("/whep/show", data=offer, headers=SDP, allow_redirects=False)
    assert await error_of(resp) == (404, "not_live")
