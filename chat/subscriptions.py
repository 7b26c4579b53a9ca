"""The process's room subscriptions: one pub/sub connection, one subscription per room channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from redis.asyncio import Redis

from inventory.tasks import cancel_all, supervise

log = logging.getLogger("livesell.chat")

#: How long a SUBSCRIBE may take to be confirmed before joining the room fails.
CONFIRM_TIMEOUT_S = 10.0


class Listener(Protocol):
    """Hears one channel's messages, and that the connection dropped (messages may be lost)."""

    def message(self, data: bytes) -> None:
        """One message published on the channel."""
        ...

    def lost(self) -> None:
        """The pub/sub read failed: messages may have been missed."""
        ...


class RoomChannels(Protocol):
    """The process's room subscriptions: ``Subscriptions`` on one Redis, ``ShardSubscriptions``
    (chat/shardsubs.py) on a Cluster."""

    async def start(self) -> None:
        """Get ready to subscribe (before the first room)."""
        ...

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Deliver ``channel``'s messages to ``listener``; returns once Redis confirmed it."""
        ...

    def forget(self, channel: str) -> None:
        """Stop dispatching ``channel``."""
        ...

    async def unsubscribe(self, channel: str, agree: Callable[[], bool]) -> bool:
        """Unsubscribe ``channel`` if ``agree()``, asked while no other (un)subscribe runs."""
        ...

    async def close(self) -> None:
        """Stop reading and close the connection(s)."""
        ...


class Subscriptions:
    """Subscribes channels on one pub/sub connection and dispatches what one reader task reads.

    SUBSCRIBE and UNSUBSCRIBE of a channel are ordered by a lock, so a room dropped while idle
    and joined again at once ends up subscribed. ``subscribe`` returns only once Redis confirmed
    the subscription: a snapshot read after it cannot miss an event published in between.
    """

    def __init__(self, redis: Redis, control_channel: str) -> None:
        self._pubsub = redis.pubsub()
        self._control = control_channel
        self._listeners: dict[bytes, Listener] = {}
        self._confirmed: dict[bytes, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []

    async def start(self) -> None:
        """Subscribe the process's control channel and start the reader."""
        await self._pubsub.subscribe(self._control)
        self._tasks.append(supervise(self._read(), "chat.hub.pubsub"))

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Deliver ``channel``'s messages to ``listener``; returns once Redis confirmed it."""
        name = channel.encode()
        self._listeners[name] = listener
        confirmed = self._confirmed[name] = asyncio.Event()
        async with self._lock:
            await self._pubsub.subscribe(name)
        await asyncio.wait_for(confirmed.wait(), CONFIRM_TIMEOUT_S)

    def forget(self, channel: str) -> None:
        """Stop dispatching ``channel`` (its subscription, if any, stays until unsubscribed)."""
        name = channel.encode()
        self._listeners.pop(name, None)
        self._confirmed.pop(name, None)

    async def unsubscribe(self, channel: str, agree: Callable[[], bool]) -> bool:
        """Unsubscribe ``channel`` if ``agree()``, asked while no other (un)subscribe runs."""
        async with self._lock:
            if not agree():
                return False
            self.forget(channel)
            await self._pubsub.unsubscribe(channel)
            return True

    async def close(self) -> None:
        """Stop the reader and close the connection."""
        await cancel_all(self._tasks)
        try:
            await self._pubsub.aclose()
        except Exception:  # the connection may already be gone at shutdown
            log.debug("pubsub close failed", exc_info=True)

    async def _read(self) -> None:
        while True:
            try:
                # A finite timeout: a blocking read would hit the pool's socket timeout when
                # the rooms are quiet, and that is not an error.
                msg = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room pub/sub read failed; resyncing local clients")
                await asyncio.sleep(0.5)
                for each in list(self._listeners.values()):
                    each.lost()
                continue
            if msg is None:
                continue
            kind = msg["type"]
            if kind == "message":
                listener = self._listeners.get(msg["channel"])
                if listener is not None:
                    listener.message(msg["data"])
            elif kind == "subscribe":
                ev = self._confirmed.get(msg["channel"])
                if ev is not None:
                    ev.set()
