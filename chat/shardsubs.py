"""Room subscriptions on a Redis Cluster: sharded pub/sub on the node that owns each channel.

On a Cluster a room's events are SPUBLISHed (``chat/lua/publish_fn.lua``), so they stay on the
shard that owns the room's hash tag ``{r<ID>}`` instead of crossing the whole cluster bus. This
process SSUBSCRIBEs each room channel on a plain connection to that shard's primary (one
connection and one reader task per primary it needs). redis-py 5.2.1, which livesell pins for
speed, has no asyncio cluster pub/sub.

The owner changes on a failover or a resharding. Redis then either drops our connection (the
primary died) or sends ``sunsubscribe`` for the slot's channels (the primary was demoted); a
stale view of the cluster meets MOVED. Each case re-reads the cluster's slots, subscribes the
channels again on their new owner and, once confirmed, tells the room (``Listener.lost``): its
viewers resync (snapshot, or replay with ``since``), exactly as after a Redis restart.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.connection import Connection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from chat.subscriptions import CONFIRM_TIMEOUT_S, ListenerRegistry
from inventory.redisclient import is_cluster
from inventory.tasks import supervise

log = logging.getLogger("livesell.chat")

#: A quiet shard link is pinged this often (s); one silent this long is replaced.
PING_EVERY_S = 10
LINK_SILENCE_S = 25

#: Pause before re-reading the cluster's slots after a failure (a failover takes a moment).
RETRY_S = 0.5


class _Link:
    """One connection to one primary, carrying the shard channels it owns."""

    def __init__(self, name: str, conn: Connection) -> None:
        self.name = name
        self.conn = conn
        self.channels: set[bytes] = set()
        self.task: asyncio.Task[Any] | None = None
        #: Seconds since the node last said anything (quiet rooms are pinged).
        self.silent_s = 0


class ShardSubscriptions(ListenerRegistry):
    """``chat.subscriptions.RoomChannels`` over SSUBSCRIBE on the owner of each channel's slot.

    Same contract as ``Subscriptions`` (the shared ``ListenerRegistry``): (un)subscribes are
    ordered by one lock, and ``subscribe`` returns once the owning shard confirmed it.
    """

    def __init__(self, redis: Redis) -> None:
        if not is_cluster(redis):
            raise TypeError("sharded subscriptions need a Redis Cluster client")
        super().__init__()
        self._cluster = cast(RedisCluster, redis)
        self._links: dict[str, _Link] = {}
        self._homeless: set[bytes] = set()
        self._why = ""
        self._rehoming: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        """Nothing to do before the first room: links open on demand."""
        if self._cluster._initialize:
            await self._cluster.initialize()

    async def _send_subscribe(self, name: bytes) -> None:
        await self._place(name)

    async def _send_unsubscribe(self, name: bytes) -> None:
        for link in self._links.values():
            if name in link.channels:
                link.channels.discard(name)
                try:
                    await link.conn.send_command("SUNSUBSCRIBE", name)
                except (RedisError, OSError):
                    log.debug("sunsubscribe failed; the link is being replaced")

    async def _disconnect(self) -> None:
        for link in list(self._links.values()):
            await self._close_link(link)

    def links(self) -> dict[str, int]:
        """Channels subscribed per primary (``host:port``), for tests and health checks."""
        return {name: len(link.channels) for name, link in self._links.items()}

    # -- placement -------------------------------------------------------------------------

    async def _place(self, name: bytes) -> None:
        """SSUBSCRIBE ``name`` on the primary owning its slot (the caller holds the lock)."""
        node = self._cluster.nodes_manager.get_node_from_slot(self._cluster.keyslot(name))
        link = self._links.get(node.name)
        if link is None:
            conn = node.connection_class(**node.connection_kwargs)
            # Quiet rooms are not an error: reads use their own finite timeout instead.
            conn.socket_timeout = None
            await conn.connect()
            link = self._links[node.name] = _Link(node.name, conn)
            link.task = supervise(self._read(link), f"chat.hub.shard[{node.name}]")
            self._tasks.append(link.task)
        link.channels.add(name)
        await link.conn.send_command("SSUBSCRIBE", name)

    async def _close_link(self, link: _Link) -> None:
        if self._links.get(link.name) is link:
            del self._links[link.name]
        try:
            await link.conn.disconnect()
        except Exception:  # the peer may be gone already
            log.debug("closing shard link %s failed", link.name, exc_info=True)

    def _homeless_again(self, names: set[bytes], why: str) -> None:
        """Queue channels whose owner changed; one task re-places them all."""
        self._homeless |= names
        self._why = why
        if self._rehoming is None or self._rehoming.done():
            self._tasks = [t for t in self._tasks if not t.done()]
            self._rehoming = supervise(self._rehome(), "chat.hub.rehome")
            self._tasks.append(self._rehoming)

    async def _rehome(self) -> None:
        """Re-read the cluster's slots, subscribe the homeless channels again, then resync."""
        while self._homeless:
            await asyncio.sleep(RETRY_S)  # a failover takes a moment to settle
            names, self._homeless = self._homeless, set()
            try:
                async with self._lock:
                    await self._cluster.nodes_manager.initialize()
                    wanted = [n for n in names if n in self._listeners]
                    for name in wanted:
                        self._expect(name)
                        await self._place(name)
                waits = [self._confirmed[n].wait() for n in wanted if n in self._confirmed]
                await asyncio.wait_for(asyncio.gather(*waits), CONFIRM_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("resubscribing rooms after %s failed (%s); retrying", self._why, exc)
                self._homeless |= names
                continue
            log.info("%d room(s) resubscribed after %s", len(wanted), self._why)
            self._lose(wanted)

    @staticmethod
    async def _keepalive(link: _Link) -> None:
        """PING a quiet link now and then; a node that stopped answering counts as lost.

        A peer that vanished without closing the connection (a partition, a dead host) would
        otherwise leave the rooms silently deaf.
        """
        link.silent_s += 1
        if link.silent_s > LINK_SILENCE_S:
            raise RedisConnectionError(f"no reply from {link.name} in {LINK_SILENCE_S} s")
        if link.silent_s % PING_EVERY_S == 0:
            await link.conn.send_command("PING")

    # -- reading ---------------------------------------------------------------------------

    async def _read(self, link: _Link) -> None:
        while True:
            try:
                reply = await link.conn.read_response(timeout=1.0)
                if reply is None:
                    await self._keepalive(link)
                    continue
                link.silent_s = 0
            except asyncio.CancelledError:
                raise
            except ResponseError as exc:
                # MOVED to a subscribe sent on a stale view of the slots.
                log.info("shard %s refused a subscription (%s); re-reading slots", link.name, exc)
                moved, link.channels = link.channels, set()
                self._homeless_again(moved, "MOVED")
                continue
            except Exception as exc:
                # The primary died or the network dropped: every channel it carried moves.
                log.warning("shard %s pub/sub connection lost (%s); resubscribing", link.name, exc)
                await self._close_link(link)
                self._homeless_again(link.channels, "a lost shard")
                return
            kind, channel = bytes(reply[0]), bytes(reply[1])
            if kind == b"smessage":
                self._dispatch(channel, reply[2])
            elif kind == b"ssubscribe":
                self._confirm(channel)
            elif kind == b"sunsubscribe" and channel in link.channels:
                # Not asked for: the slot left this node (it was demoted in a failover).
                link.channels.discard(channel)
                self._homeless_again({channel}, "a failover")
