"""The process's room subscriptions: one pub/sub connection, one subscription per room channel."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
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


class ListenerRegistry:
    """The bookkeeping both transports share: each channel's listener, its pending confirmation,
    and one lock ordering SUBSCRIBE and UNSUBSCRIBE.

    A subclass sends the commands (``_send_subscribe``, ``_send_unsubscribe``), reads the replies
    into ``_dispatch``/``_confirm``/``_lose``, and closes its connections (``_disconnect``).
    Ordered by the lock, a room dropped while idle and joined again at once ends up subscribed.
    ``subscribe`` returns only once Redis confirmed the subscription: a snapshot read after it
    cannot miss an event published in between.
    """

    def __init__(self) -> None:
        self._listeners: dict[bytes, Listener] = {}
        self._confirmed: dict[bytes, asyncio.Event] = {}
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []

    async def subscribe(self, channel: str, listener: Listener) -> None:
        """Deliver ``channel``'s messages to ``listener``; returns once Redis confirmed it."""
        name = channel.encode()
        self._listeners[name] = listener
        confirmed = self._expect(name)
        async with self._lock:
            await self._send_subscribe(name)
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
            await self._send_unsubscribe(channel.encode())
            return True

    async def close(self) -> None:
        """Stop the reader(s) and close the connection(s)."""
        await cancel_all(self._tasks)
        await self._disconnect()

    async def _send_subscribe(self, name: bytes) -> None:
        """Send the subscribe of ``name`` (the caller holds the lock)."""
        raise NotImplementedError

    async def _send_unsubscribe(self, name: bytes) -> None:
        """Send the unsubscribe of ``name`` (the caller holds the lock)."""
        raise NotImplementedError

    async def _disconnect(self) -> None:
        """Close the connection(s), once the readers stopped."""
        raise NotImplementedError

    def _expect(self, name: bytes) -> asyncio.Event:
        """A fresh confirmation for ``name``, set when Redis confirms its subscribe."""
        confirmed = self._confirmed[name] = asyncio.Event()
        return confirmed

    def _dispatch(self, name: bytes, data: bytes) -> None:
        """Hand one message to its channel's listener, if the channel still has one."""
        listener = self._listeners.get(name)
        if listener is not None:
            listener.message(data)

    def _confirm(self, name: bytes) -> None:
        """Redis confirmed the subscribe of ``name``."""
        confirmed = self._confirmed.get(name)
        if confirmed is not None:
            confirmed.set()

    def _lose(self, names: Iterable[bytes]) -> None:
        """Tell the listeners of ``names`` that messages may have been missed."""
        for name in names:
            listener = self._listeners.get(name)
            if listener is not None:
                listener.lost()


class Subscriptions(ListenerRegistry):
    """Subscribes channels on one pub/sub connection and dispatches what one reader task reads."""

    def __init__(self, redis: Redis, control_channel: str) -> None:
        super().__init__()
        self._pubsub = redis.pubsub()
        self._control = control_channel

    async def start(self) -> None:
        """Subscribe the process's control channel and start the reader."""
        await self._pubsub.subscribe(self._control)
        self._tasks.append(supervise(self._read(), "chat.hub.pubsub"))

    async def _send_subscribe(self, name: bytes) -> None:
        await self._pubsub.subscribe(name)

    async def _send_unsubscribe(self, name: bytes) -> None:
        await self._pubsub.unsubscribe(name)

    async def _disconnect(self) -> None:
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
                self._lose(list(self._listeners))
                continue
            if msg is None:
                continue
            kind = msg["type"]
            if kind == "message":
                self._dispatch(msg["channel"], msg["data"])
            elif kind == "subscribe":
                self._confirm(msg["channel"])
