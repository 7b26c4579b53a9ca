"""A process's members and their delivery states: in-memory connections, real Redis."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from functools import partial

import pytest
from redis.asyncio import Redis

from chat.audience import Audience
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import Delivery, Identity
from chat.moderation import Moderation
from chat.protocol import CLOSE_BANNED, CLOSE_TOO_SLOW
from chat.room import RoomState
from chat.snapshot import Snapshots
from chat.social import NoSocial
from chat.subscriptions import Subscriptions
from tests.chat.conftest import FAST
from tests.chat.helpers import FakeCatalog, FakeConnection, HashSales

ALICE = Identity("alice", "Alice", "viewer")


async def until(pred: Callable[[], object], wait_s: float = 2.0) -> None:
    """Wait until ``pred()`` holds (the checks run on the loop's next turns)."""
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if pred():
            return
        await asyncio.sleep(0.02)


@pytest.fixture
async def parts(
    redis: Redis, prefix: str, catalog: FakeCatalog
) -> AsyncIterator[tuple[Audience, RoomLog, RoomKeys]]:
    """An audience over real Redis, the room log that feeds it, and room ``show``'s keys."""
    state, room_log = RoomState(redis), RoomLog(redis)
    moderation = Moderation(state, room_log, catalog)  # type: ignore[arg-type]
    sales = HashSales(redis, prefix)
    snapshots = Snapshots(state, room_log, moderation, sales, NoSocial())  # type: ignore[arg-type]
    subs = Subscriptions(redis, f"{prefix}:hub")
    await subs.start()
    keys_of = partial(RoomKeys.of, prefix)
    audience = Audience(catalog, state, snapshots, subs, keys_of, FAST)  # type: ignore[arg-type]
    yield audience, room_log, keys_of("show")
    await audience.close_clients()
    await audience.close()
    await subs.close()


async def test_a_member_goes_live_and_leaves_closed(
    parts: tuple[Audience, RoomLog, RoomKeys],
) -> None:
    audience, room_log, keys = parts
    conn = FakeConnection()
    member = await audience.join("show", conn, None, None)
    assert member.state is Delivery.LIVE
    assert conn.of_type("snapshot"), "a snapshot first"
    await room_log.publish(keys, {"type": "announcement", "text": "hi"})
    await conn.wait_for(lambda e: any(x["type"] == "announcement" for x in e))
    audience.leave(member)
    assert member.state is Delivery.CLOSED
    assert audience.stats()["clients"] == 0


async def test_a_full_buffer_sets_aside_then_resyncs_the_member(
    parts: tuple[Audience, RoomLog, RoomKeys],
) -> None:
    audience, room_log, keys = parts
    slow = FakeConnection()
    member = await audience.join("show", slow, None, None)
    slow.backlog = slow.limit + 1  # stops reading
    await room_log.publish(keys, {"type": "announcement", "text": "missed"})
    await until(lambda: member.state is Delivery.LAGGING)
    assert member.state is Delivery.LAGGING
    audience.check_lagging(time.monotonic())
    assert member.state is Delivery.LAGGING, "still over the resume threshold"
    slow.backlog = 0  # drained
    audience.check_lagging(time.monotonic())
    await slow.wait_for(lambda e: any(x["type"] == "snapshot" and x["resync"] for x in e))
    await until(lambda: member.state is Delivery.LIVE)
    assert member.state is Delivery.LIVE


async def test_a_member_lagging_too_long_is_closed(
    parts: tuple[Audience, RoomLog, RoomKeys],
) -> None:
    audience, room_log, keys = parts
    slow = FakeConnection()
    member = await audience.join("show", slow, None, None)
    slow.backlog = slow.limit + 1
    await room_log.publish(keys, {"type": "announcement", "text": "missed"})
    await until(lambda: member.state is Delivery.LAGGING)
    audience.check_lagging(time.monotonic() + FAST.lag_timeout_s + 1)
    assert member.state is Delivery.CLOSED
    await until(lambda: slow.closed)
    assert slow.closed is not None and slow.closed[0] == CLOSE_TOO_SLOW


async def test_a_ban_event_closes_the_banned_users_sockets(
    parts: tuple[Audience, RoomLog, RoomKeys],
) -> None:
    audience, room_log, keys = parts
    alice, other = FakeConnection(), FakeConnection()
    banned = await audience.join("show", alice, ALICE, None)
    await audience.join("show", other, None, None)
    await room_log.publish(keys, {"type": "moderation", "action": "ban", "user_id": "alice"})
    await other.wait_for(lambda e: any(x["type"] == "moderation" for x in e))
    await until(lambda: alice.closed)
    assert alice.closed is not None and alice.closed[0] == CLOSE_BANNED
    assert banned.state is Delivery.CLOSED and other.closed is None


async def test_an_idle_room_is_not_dropped_once_someone_joined(
    parts: tuple[Audience, RoomLog, RoomKeys],
) -> None:
    audience, _, _ = parts
    first = await audience.join("show", FakeConnection(), None, None)
    room = audience.get("show")
    assert room is not None
    await audience.join("show", FakeConnection(), None, None)
    audience.leave(first)
    assert not await audience.drop_if_idle(room), "one member is still there"
    for member in room.members():
        audience.leave(member)
    assert await audience.drop_if_idle(room)
    assert audience.get("show") is None and audience.stats()["rooms"] == 0


async def test_joining_an_unknown_stream_leaves_no_room(
    parts: tuple[Audience, RoomLog, RoomKeys],
) -> None:
    from chat.errors import RoomNotFound

    audience, _, _ = parts
    with pytest.raises(RoomNotFound):
        await audience.join("nope", FakeConnection(), None, None)
    assert audience.get("nope") is None
