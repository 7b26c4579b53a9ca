"""The room's periodic work on real Redis: stock, reactions, viewer counts, idle rooms."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from chat.factory import build_room
from chat.hub import Hub
from chat.member import Identity, RoomLimits
from chat.presence import Presence
from chat.reactions import Reactions
from chat.salefeed import SaleAnnouncer, SaleFeed
from chat.social import NoSocial
from chat.ticker import RoomTicker
from flashsale.events import SaleEvent
from flashsale.keys import SaleKeys
from tests.chat.conftest import FAST
from tests.chat.helpers import FakeCatalog, FakeConnection, HashSales

#: The hub's own ticker runs too rarely to matter: what arrives comes from the ticker tested.
QUIET = dataclasses.replace(FAST, stock_interval_s=3600)


@pytest.fixture
async def hub(redis: Redis, prefix: str, catalog: FakeCatalog) -> AsyncIterator[Hub]:
    """A started hub whose own ticker stays quiet."""
    h = build_room(redis, catalog, prefix, HashSales(redis, prefix), SaleFeed(), limits=QUIET)  # type: ignore[arg-type]
    await h.start()
    yield h
    await h.close()


def ticker_of(
    hub: Hub, redis: Redis, prefix: str, reactions: Reactions, lim: RoomLimits = FAST
) -> RoomTicker:
    """A ticker over the hub's audience and feed, with its own reactions counter."""
    announcer = SaleAnnouncer(hub.feed, HashSales(redis, prefix), hub.log, hub.keys, NoSocial())  # type: ignore[arg-type]
    presence = Presence(redis, "p1", lim.viewers_interval_s)
    return RoomTicker(hub.audience, announcer, reactions, presence, lim)


async def test_ticks_flush_stock_reactions_and_viewer_counts(
    hub: Hub, redis: Redis, prefix: str
) -> None:
    conn = FakeConnection()
    await hub.join("show", conn, None)
    # The host's own sockets (studio, phone) are not counted as viewers.
    host = Identity("hostess", "Hostess", "host")
    for _ in range(2):
        await hub.join("show", FakeConnection(), host)
    reactions = Reactions(redis)
    task = asyncio.create_task(ticker_of(hub, redis, prefix, reactions).run())
    try:
        await redis.hset(SaleKeys.of(prefix, 9).meta, mapping={"remaining": 4})
        hub.feed.sale_event(SaleEvent("reserved", 9, "show", 4, 1, "9-1", "u", 1, None))
        reactions.add("show", "heart", 3)
        evs = await conn.wait_for(
            lambda e: {"stock", "reactions", "viewers"} <= {x["type"] for x in e}
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    stock = next(e for e in evs if e["type"] == "stock")
    assert stock["sale_id"] == 9 and stock["remaining"] == 4 and stock["bought"] == 1
    assert next(e for e in evs if e["type"] == "reactions")["delta"] == {"heart": 3}
    assert next(e for e in evs if e["type"] == "viewers")["count"] == 1


async def test_an_idle_room_is_withdrawn_and_dropped(hub: Hub, redis: Redis, prefix: str) -> None:
    ticker = ticker_of(
        hub, redis, prefix, Reactions(redis), dataclasses.replace(FAST, idle_room_s=0)
    )
    member = await hub.join("show", FakeConnection(), None)
    room = hub.audience.get("show")
    assert room is not None
    await ticker.report_presence(room.empty_since + 1)
    assert hub.audience.get("show") is room, "a room with a member is kept"
    hub.leave(member)
    await ticker.report_presence(room.empty_since + 1)
    assert hub.audience.get("show") is None
