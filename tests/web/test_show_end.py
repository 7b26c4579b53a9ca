"""The host's End closes the show's sales: no buying from a show that is over."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.chat.test_room_ws import connect
from tests.chat.test_sale_events import phase
from tests.flashsale.helpers import buy, make_sale
from tests.stream.test_http import publish
from web.keys import CATALOG

Auth = Callable[..., dict[str, str]]


@pytest.fixture
async def made() -> AsyncIterator[list[Any]]:
    """Peers to hang up after the test."""
    peers: list[Any] = []
    yield peers
    await asyncio.gather(*(p.close() for p in peers), return_exceptions=True)


async def test_ending_the_show_closes_its_open_and_counting_down_sales(
    client: TestClient, auth: Auth, made: list[Any]
) -> None:
    await client.app[CATALOG].create_stream("show", "hana", "Spring sale")
    on_air = await make_sale(client, auth, stream_id="show")
    soon = await make_sale(client, auth, stream_id="show", open_now=False)
    r = await client.post(f"/api/sales/{soon['id']}/open", json={"countdown_s": 60},
                          headers=auth("admin", "ops"))  # fmt: skip
    assert (await r.json())["state"] == "countdown"
    later = await make_sale(client, auth, stream_id="show", open_now=False)
    _host, session = await publish(client, auth, made)
    deadline = time.monotonic() + 15
    while (await client.app[CATALOG].get_stream("show")).status != "live":  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "the stream never went live"
        await asyncio.sleep(0.05)
    viewer = await connect(client, "/ws/rooms/show")
    status, _ = await buy(client, auth, on_air["id"], "ann", "k1")
    assert status == 201

    assert (await client.delete(session)).status == 200  # the studio's "End show"

    for sale in (on_air, soon):
        closed = await viewer.until(
            lambda e, i=sale["id"]: phase("closed")(e) and e["sale"]["id"] == i
        )
        assert closed["sale"]["state"] == "ended"
    await viewer.until(lambda e: e["type"] == "stream" and e.get("status") == "ended")
    status, body = await buy(client, auth, on_air["id"], "bob", "k2")
    assert (status, body["error"]) == (410, "ended")
    # A sale never started stays for a later show; nobody could buy it anyway.
    r = await client.get(f"/api/sales/{later['id']}")
    assert (await r.json())["state"] == "scheduled"
