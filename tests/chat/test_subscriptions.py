"""The subscription registry on real Redis: confirmed subscribe, dispatch, ordered unsubscribe."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from chat.subscriptions import Subscriptions


class Recorder:
    """A chat.subscriptions.Listener that keeps what it hears."""

    def __init__(self) -> None:
        self.messages: list[bytes] = []
        self.losses = 0
        self.arrived = asyncio.Event()

    def message(self, data: bytes) -> None:
        """Keep the message."""
        self.messages.append(data)
        self.arrived.set()

    def lost(self) -> None:
        """Count the loss."""
        self.losses += 1


@pytest.fixture
async def subs(redis: Redis, prefix: str) -> AsyncIterator[Subscriptions]:
    """A started registry on the test's prefix."""
    s = Subscriptions(redis, f"{prefix}:hub")
    await s.start()
    yield s
    await s.close()


async def test_subscribe_returns_once_confirmed_and_dispatches_by_channel(
    subs: Subscriptions, redis: Redis, prefix: str
) -> None:
    a, b = Recorder(), Recorder()
    await subs.subscribe(f"{prefix}:a", a)
    await subs.subscribe(f"{prefix}:b", b)
    # Confirmed: a message published right after subscribe returns is not lost.
    assert await redis.publish(f"{prefix}:a", b"one") == 1
    await redis.publish(f"{prefix}:b", b"two")
    await asyncio.wait_for(a.arrived.wait(), 5)
    await asyncio.wait_for(b.arrived.wait(), 5)
    assert a.messages == [b"one"] and b.messages == [b"two"]


async def test_unsubscribe_only_when_the_caller_still_agrees(
    subs: Subscriptions, redis: Redis, prefix: str
) -> None:
    channel = f"{prefix}:room"
    listener = Recorder()
    await subs.subscribe(channel, listener)
    assert not await subs.unsubscribe(channel, lambda: False)
    assert await redis.publish(channel, b"kept") == 1
    await asyncio.wait_for(listener.arrived.wait(), 5)
    assert await subs.unsubscribe(channel, lambda: True)
    for _ in range(100):  # UNSUBSCRIBE is confirmed asynchronously
        if await redis.publish(channel, b"gone") == 0:
            break
        await asyncio.sleep(0.02)
    assert await redis.publish(channel, b"gone") == 0, "nobody listens any more"
    # Subscribing again at once works: the lock orders the two.
    again = Recorder()
    await subs.subscribe(channel, again)
    await redis.publish(channel, b"back")
    await asyncio.wait_for(again.arrived.wait(), 5)
    assert b"back" in again.messages


async def test_a_dropped_connection_tells_every_listener(
    subs: Subscriptions, redis: Redis, prefix: str
) -> None:
    listener = Recorder()
    channel = f"{prefix}:room"
    await subs.subscribe(channel, listener)
    # Kill the pub/sub connection from the server side.
    for client in await redis.client_list(_type="pubsub"):
        if int(client.get("sub", 0)) and "psub" in client:
            await redis.client_kill_filter(_id=client["id"])
    for _ in range(100):
        if listener.losses:
            break
        await asyncio.sleep(0.05)
    assert listener.losses >= 1
    # redis-py resubscribes on reconnect: messages flow again.
    for _ in range(100):
        if await redis.publish(channel, b"after") == 1:
            break
        await asyncio.sleep(0.05)
    await asyncio.wait_for(listener.arrived.wait(), 5)
    assert b"after" in listener.messages
