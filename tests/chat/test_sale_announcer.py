"""The sale announcer on real Redis and a real database: what a room hears, and when."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import Any

import msgpack
from redis.asyncio.client import PubSub

from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.moderation import Moderation
from chat.protocol import unwrap
from chat.room import RoomState
from chat.salefeed import QUIET_SWEEPS, SaleAnnouncer, SaleFeed
from chat.snapshot import Snapshots
from chat.social import NoSocial
from flashsale.service import SaleService
from tests.flashsale.conftest import OPS, Core


class Room:
    """A sale service reporting to a feed, and what its announcers publish in room ``s1``."""

    def __init__(self, core: Core) -> None:
        self.core = core
        self.feed = SaleFeed()
        self.sales = SaleService(core.redis, core.ledger, core.catalog, core.prefix, self.feed)
        self.log = RoomLog(core.redis)
        self.keys_of = partial(RoomKeys.of, core.prefix)
        self.keys = self.keys_of("s1")

    def announcer(self) -> SaleAnnouncer:
        """A fresh announcer, as another server process would have."""
        return SaleAnnouncer(self.feed, self.sales, self.log, self.keys_of, NoSocial())

    async def sale(self, quantity: int = 3, **kw: Any) -> int:
        """A sale of a new product in stream ``s1``."""
        if await self.core.catalog.get_stream("s1") is None:
            await self.core.catalog.create_stream("s1", "hostess", "show")
        p = await self.core.catalog.create_product("Lamp", 100)
        return (await self.sales.create_sale(p.id, quantity, 1, OPS, stream_id="s1", **kw)).id

    async def snapshot(self, snaps: Snapshots) -> dict[str, Any]:
        """An anonymous join's snapshot of room ``s1``."""
        stream = await self.core.catalog.get_stream("s1")
        assert stream is not None
        return await snaps.build(self.keys, stream, None)

    def snapshots(self) -> Snapshots:
        """The snapshot builder of one server process."""
        state = RoomState(self.core.redis)
        moderation = Moderation(state, self.log, self.core.catalog)
        return Snapshots(state, self.log, moderation, self.sales, NoSocial())

    async def logged(self) -> list[dict[str, Any]]:
        """The room's sequenced events."""
        entries = await self.core.redis.xrange(self.keys.events)
        return [msgpack.unpackb(e[b"e"]) for _, e in entries]

    async def phases(self) -> list[str]:
        """The phases of the room's ``sale`` events, in order."""
        return [e["phase"] for e in await self.logged() if e["type"] == "sale"]


async def heard(ps: PubSub, n: int) -> list[dict[str, Any]]:
    """Up to ``n`` events published on a subscribed channel (waits at most a second)."""
    seen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 1
    while time.monotonic() < deadline and len(seen) < n:
        m = await ps.get_message(ignore_subscribe_messages=True, timeout=0.2)
        if m:
            seen.append(msgpack.unpackb(unwrap(m["data"])[0]))
    return seen


async def test_a_late_published_transition_is_followed_by_the_live_stock(core: Core) -> None:
    room = Room(core)
    sale = await room.sale(3)
    first = room.announcer()
    await first.check(sale)
    await room.sales.open_sale(sale)
    await room.sales.phase(sale, 1)  # a process records 'opened' (3 left), then dies
    ps = core.redis.pubsub()
    await ps.subscribe(room.keys.channel)
    await room.sales.buy(sale, "ann", "k1")
    other = room.announcer()
    await other.flush_stock()  # stock: 2
    await other.check(sale)  # publishes the recorded 'opened' with its 3
    await other.flush_stock()
    seen = await heard(ps, 3)
    await ps.aclose()
    shown = [(e["type"], e.get("remaining", e.get("sale", {}).get("remaining"))) for e in seen]
    assert shown == [("stock", 2), ("sale", 3), ("stock", 2)]


async def test_a_join_sees_a_sale_whose_first_event_its_seq_covers(core: Core) -> None:
    room = Room(core)
    await core.catalog.create_stream("s1", "hostess", "show")
    snaps = room.snapshots()
    assert (await room.snapshot(snaps))["sales"] == []  # the room's (empty) sales are cached
    sale = await room.sale(3)
    await room.sales.open_sale(sale)
    await room.announcer().check(sale)  # published, before this process heard of it
    snap = await room.snapshot(snaps)
    assert max(e["seq"] for e in await room.logged()) <= snap["seq"]
    assert snap["sale"] is not None and snap["sale"]["id"] == sale


async def test_a_next_up_sale_is_shown_behind_fifty_sales_ended_by_their_clock(
    core: Core,
) -> None:
    room = Room(core)
    tomorrow = await room.sale(starts_at_ms=int(time.time() * 1000) + 86_400_000)
    for _ in range(50):
        await room.sales.open_sale(await room.sale(duration_s=1))
    await asyncio.sleep(1.1)  # all 50 ended by their clock; SQL still says 'open'
    snap = await room.snapshot(room.snapshots())
    assert [s["id"] for s in snap["sales"]] == [tomorrow]
    assert snap["sale"]["state"] == "countdown"


async def test_the_sweep_looks_at_sales_the_clock_cannot_move_less_often(core: Core) -> None:
    room = Room(core)
    idle = [await room.sale() for _ in range(20)]  # scheduled, no start time
    start = int(time.time() * 1000) + 3_600_000
    timed = await room.sale(starts_at_ms=start)  # the clock will open it
    ann = room.announcer()
    assert await ann.sweep(set()) == [*idle, timed]  # a full sweep, in one round trip
    assert await room.phases() == ["scheduled"] * 20 + ["countdown"]
    await room.sales.phase(idle[3], 1)  # no-op look, as a dying process's would be
    await room.sales.open_sale(idle[3])  # in a process that dies before telling the room
    looked = [await ann.sweep(set()) for _ in range(QUIET_SWEEPS)]
    assert looked[: QUIET_SWEEPS - 1] == [[timed]] * (QUIET_SWEEPS - 1)
    assert looked[-1] == [*idle, timed]
    assert (await room.phases())[-1] == "opened"
