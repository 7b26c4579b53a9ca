"""The per-process Hub: one Redis subscription per room, local clients, batched shared frames."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from chat.commands import STRIKES, Commands, error_reply
from chat.errors import BadFrame, Banned, RateLimited, RoomNotFound, Unauthorized
from chat.fanout import LocalRoom
from chat.figures import RoomFigures, room_figures
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import CLOSED, JOINING, LIVE, ClientConnection, Identity, Member, RoomLimits
from chat.moderation import ACTIONS, Moderation, WordFilter
from chat.presence import Presence
from chat.protocol import (
    CLOSE_ABUSE,
    CLOSE_BANNED,
    CLOSE_GOING_AWAY,
    CLOSE_TOO_SLOW,
    CLOSE_UNAUTHORIZED,
    Command,
    decode,
    error_event,
    parse_command,
)
from chat.reactions import Reactions
from chat.room import RoomState
from chat.salefeed import SaleFeed
from chat.snapshot import Snapshots
from flashsale.events import SaleEvent
from inventory.catalog import Catalog
from inventory.errors import DomainError
from inventory.tasks import cancel_all, supervise

if TYPE_CHECKING:
    from flashsale.service import SaleService

#: How long a room's keys are kept after its stream ended.
ROOM_RETAIN_MS = 7 * 86_400_000

log = logging.getLogger("livesell.chat")

Authenticate = Callable[[str], Identity]


class Hub:
    """Fans room events out to this process's sockets; also the room's SaleObserver.

    Every event is encoded once (by its publisher), arrives here once per process through the
    room's pub/sub channel, and joins a batch; each batch becomes one frame whose bytes are
    written to every local socket with no per-client work beyond a buffer check and a write.
    """

    def __init__(
        self,
        redis: Redis,
        catalog: Catalog,
        prefix: str,
        authenticate: Authenticate | None = None,
        limits: RoomLimits | None = None,
        process_id: str | None = None,
    ) -> None:
        self._redis = redis
        self._catalog = catalog
        self._prefix = prefix
        self._authenticate = authenticate
        self.limits = limits or RoomLimits()
        self.process_id = process_id or uuid.uuid4().hex[:12]
        self.state = RoomState(redis)
        self.log = RoomLog(redis)
        self._presence = Presence(redis, self.process_id, self.limits.viewers_interval_s)
        self._reactions = Reactions(redis)
        self.feed = SaleFeed(redis, prefix, self.log, self.keys)
        moderation = Moderation(self.state, self.log, catalog)
        self.moderation = moderation
        self._commands = Commands(self.log, moderation, self._reactions, self.limits)
        self._snapshots = Snapshots(self.state, self.log, moderation, self.feed)
        self._rooms: dict[str, LocalRoom] = {}
        self._by_channel: dict[bytes, LocalRoom] = {}
        self._subscribed: dict[bytes, asyncio.Event] = {}
        #: Orders SUBSCRIBE/UNSUBSCRIBE of one channel when an idle room is dropped and rejoined.
        self._sub_lock = asyncio.Lock()
        self._pubsub = redis.pubsub()
        self._tasks: list[asyncio.Task[Any]] = []
        self._side: set[asyncio.Task[Any]] = set()
        self.frames_sent = 0
        self.deliveries = 0

    def keys(self, stream_id: str) -> RoomKeys:
        """The Redis keys of a room."""
        return RoomKeys.of(self._prefix, stream_id)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe the hub's control channel and start the reader, ticker and sale feed."""
        await self._pubsub.subscribe(f"{self._prefix}:hub")
        self._tasks += [
            supervise(self._read(), "chat.hub.pubsub"),
            supervise(self._tick(), "chat.hub.ticker"),
            supervise(self.feed.run(), "chat.hub.salefeed"),
        ]

    async def close_clients(self) -> None:
        """Close every local socket with 1001 (going away)."""
        members = [m for r in self._rooms.values() for m in r.members()]
        for m in members:
            self.leave(m)
        await asyncio.gather(
            *(m.conn.close(CLOSE_GOING_AWAY, "server shutting down") for m in members),
            return_exceptions=True,
        )

    async def close(self) -> None:
        """Close every socket (1001), then stop the tasks and the subscription."""
        await self.close_clients()
        await cancel_all(self._tasks)
        await cancel_all(list(self._side))
        for room in self._rooms.values():
            if room.flush_handle is not None:
                room.flush_handle.cancel()
        try:
            await self._pubsub.aclose()
        except Exception:  # the connection may already be gone at shutdown
            log.debug("pubsub close failed", exc_info=True)

    def attach_sales(self, sales: SaleService) -> None:
        """Use the sale service for socket buys and sale descriptions (set after it exists)."""
        self.feed.attach(sales)
        self._commands.sales = sales

    def sale_event(self, event: SaleEvent) -> None:
        """flashsale.events.SaleObserver: take one sale event without blocking."""
        self.feed.observe(event)

    async def stream_status(self, stream_id: str, status: str) -> None:
        """Announce that the stream went live or ended (called by the relay's lifecycle)."""
        keys = self.keys(stream_id)
        await self.state.set_stream_status(keys, status)
        await self.log.publish(keys, {"type": "stream", "status": status})
        # After the show the room is kept for a while (late chat, moderation review), then its
        # keys expire; going live again keeps them.
        pipe = self._redis.pipeline(transaction=False)
        for key in keys.durable():
            if status == "ended":
                pipe.pexpire(key, ROOM_RETAIN_MS)
            else:
                pipe.persist(key)
        await pipe.execute()

    async def act(self, stream_id: str, actor: Identity, command: Command) -> int:
        """Run a host/moderator action outside a socket (the HTTP host routes)."""
        stream = await self._catalog.get_stream(stream_id)
        if stream is None:
            raise RoomNotFound(f"stream {stream_id} not found")
        if command.type not in ACTIONS:
            raise BadFrame(f"{command.type} is not a host action")
        return await self.moderation.apply(self.keys(stream_id), stream, actor, command)

    async def figures(self, stream_ids: list[str]) -> dict[str, RoomFigures]:
        """Viewers, likes and chat rate of each room, as every process sees them."""
        rooms = {sid: self.keys(sid) for sid in stream_ids}
        return await room_figures(self._redis, rooms, self.log.history_len)

    def _spawn(self, coro: Any, name: str) -> None:
        task = supervise(coro, name)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    # -- joining and leaving -----------------------------------------------------------------

    async def _room(self, stream_id: str) -> LocalRoom:
        room = self._rooms.get(stream_id)
        if room is None:
            room = self._rooms[stream_id] = LocalRoom(stream_id, self.keys(stream_id))
            try:
                room.stream = await self._catalog.get_stream(stream_id)
                if room.stream is None:
                    raise RoomNotFound(f"stream {stream_id} not found")
                room.words = WordFilter(await self.state.banned_words(room.keys))
                channel = room.keys.channel.encode()
                self._by_channel[channel] = room
                subscribed = self._subscribed[channel] = asyncio.Event()
                async with self._sub_lock:
                    await self._pubsub.subscribe(channel)
                # Only once Redis confirms the subscription may the snapshot be read:
                # otherwise an event published in between would be in neither.
                await asyncio.wait_for(subscribed.wait(), 10)
            except BaseException as exc:
                room.failed = exc
                self._drop_room(room)
                raise
            finally:
                room.ready.set()
        else:
            await room.ready.wait()
            if room.failed is not None:
                raise RoomNotFound(f"stream {stream_id} not found")
        return room

    def _drop_room(self, room: LocalRoom) -> None:
        # Keep the dropped room's counters in the process totals.
        self.frames_sent += room.frames_sent
        self.deliveries += room.deliveries
        room.frames_sent = room.deliveries = 0
        self._rooms.pop(room.stream_id, None)
        channel = room.keys.channel.encode()
        self._by_channel.pop(channel, None)
        self._subscribed.pop(channel, None)
        if room.flush_handle is not None:
            room.flush_handle.cancel()

    async def join(
        self,
        stream_id: str,
        conn: ClientConnection,
        identity: Identity | None = None,
        since: int | None = None,
    ) -> Member:
        """Add a client: snapshot (or replay after ``since``), then live events in order."""
        room = await self._room(stream_id)
        member = Member(stream_id, conn, identity, self.limits)
        room.joining.add(member)  # at once: an idle room with a joiner is not dropped
        try:
            if identity is not None and await self.state.is_banned(room.keys, identity.user_id):
                raise Banned("you are banned from this room")
            await self._catch_up(room, member, since)
        except BaseException:
            self.leave(member)
            raise
        return member

    async def _catch_up(
        self, room: LocalRoom, member: Member, since: int | None, resync: bool = False
    ) -> None:
        # The member is registered (collecting live frames) before anything is read from Redis,
        # so every event is either in what we read or in member.pending; overlap is dropped.
        assert room.stream is not None
        await self._snapshots.catch_up(room.keys, room.stream, member, since, resync)
        if member.state == CLOSED:
            return
        member.release_pending()
        room.joining.discard(member)
        member.state = LIVE
        room.guard_seq = max(room.guard_seq, member.after_seq)
        room.live[member] = member.conn

    def leave(self, member: Member) -> None:
        """Forget a client (its socket closed)."""
        member.state = CLOSED
        room = self._rooms.get(member.stream_id)
        if room is None:
            return
        room.live.pop(member, None)
        room.joining.discard(member)
        room.lagging.discard(member)
        if room.size() == 0:
            room.empty_since = time.monotonic()

    async def authenticate(self, member: Member, token: str) -> None:
        """Attach a user to an anonymous connection (the ``auth`` event); bad tokens close 4001."""
        if self._authenticate is None:
            raise Unauthorized("this server does not accept tokens")
        try:
            identity = self._authenticate(token)
        except Unauthorized as exc:
            member.send(error_event(exc.code, exc.message))
            await member.conn.close(CLOSE_UNAUTHORIZED, "invalid token")
            return
        room = self._rooms[member.stream_id]
        if await self.state.is_banned(room.keys, identity.user_id):
            member.send(error_event("banned", "you are banned from this room"))
            await member.conn.close(CLOSE_BANNED, "banned")
            return
        member.identity = identity
        assert room.stream is not None
        role = await self.moderation.room_role(room.keys, room.stream, identity)
        member.send(
            {"type": "auth_ok", "user_id": identity.user_id, "name": identity.name, "role": role}
        )

    # -- inbound -----------------------------------------------------------------------------

    async def receive(self, member: Member, data: bytes) -> None:
        """Handle one client frame: errors become ``error`` events, repeated abuse closes 4008."""
        if member.state == CLOSED:
            return  # kicked (ban, too slow) while this frame was in flight
        ref = None
        try:
            if not member.frames.take():
                raise RateLimited(1000, "too many frames; slow down")
            cmd = parse_command(data)
            ref = cmd.ref
            room = self._rooms[member.stream_id]
            assert room.stream is not None
            if cmd.type == "auth":
                await self.authenticate(member, cmd["token"])
                return
            await self._commands.run(member, room.keys, room.stream, room.words, cmd)
        except DomainError as exc:
            member.send(error_reply(exc, ref))
            if isinstance(exc, STRIKES) and member.strike():
                await member.conn.close(CLOSE_ABUSE, "too many invalid or rejected frames")
        except RedisError:
            log.warning("room command failed: Redis unavailable", exc_info=True)
            member.send(error_event("unavailable", "the room store is unreachable; retry", ref))
        except Exception:
            log.exception("room command failed")
            member.send(error_event("internal", "internal error", ref))

    # -- fan-out -----------------------------------------------------------------------------

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
                self._resync_all()
                continue
            if msg is None:
                continue
            kind = msg["type"]
            if kind == "message":
                room = self._by_channel.get(msg["channel"])
                if room is not None:
                    self._on_event(room, msg["data"])
            elif kind == "subscribe":
                ev = self._subscribed.get(msg["channel"])
                if ev is not None:
                    ev.set()

    def _on_event(self, room: LocalRoom, data: bytes) -> None:
        try:
            ev = decode(data)
            kind = ev["type"]
        except Exception:
            log.warning("undecodable room event dropped")
            return
        if kind.startswith("_"):
            if kind == "_words":
                room.words = WordFilter(ev["words"])
            return
        self._observe(room, kind, ev)
        room.push(data, ev.get("seq", 0), self.limits.batch_window_s)

    def _observe(self, room: LocalRoom, kind: str, ev: dict[str, Any]) -> None:
        # Keep this process's caches in step with the room's events.
        if kind == "stream" and room.stream is not None:
            room.stream = dataclasses.replace(room.stream, status=ev["status"])
        elif kind == "sale":
            self._snapshots.forget_sale(room.stream_id)
        elif kind == "stock":
            self._snapshots.stock(room.stream_id, ev["sale_id"], ev["remaining"])
        elif kind == "moderation" and ev.get("action") == "ban":
            for m in room.members():
                if m.user_id == ev["user_id"]:
                    self.leave(m)
                    self._spawn(m.conn.close(CLOSE_BANNED, "banned"), "chat.kick")

    def _resync_all(self) -> None:
        for room in self._rooms.values():
            for member in list(room.live):
                room.lag(member)

    async def _resync(self, room: LocalRoom, member: Member) -> None:
        try:
            await self._catch_up(room, member, None, resync=True)
        except Exception:
            log.exception("resync failed; closing the client")
            self.leave(member)
            await member.conn.close(CLOSE_TOO_SLOW, "could not resync")

    # -- periodic work -----------------------------------------------------------------------

    async def _tick(self) -> None:
        lim = self.limits
        interval = lim.stock_interval_s
        last_reactions = last_viewers = time.monotonic()
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            try:
                await self.feed.flush_stock()
                self._check_lagging(now)
                if now - last_reactions >= lim.reactions_interval_s:
                    last_reactions = now
                    await self._reactions.flush({s: r.keys for s, r in self._rooms.items()})
                if now - last_viewers >= lim.viewers_interval_s:
                    last_viewers = now
                    await self._report_presence(now)
            except Exception:
                log.exception("room ticker step failed")

    def _check_lagging(self, now: float) -> None:
        for room in self._rooms.values():
            for member in list(room.lagging):
                if member.conn.buffered_bytes() <= self.limits.resume_buffer_bytes:
                    # Back to joining at once, so frames from now on queue behind the snapshot.
                    room.lagging.discard(member)
                    member.state = JOINING
                    member.pending.clear()
                    room.joining.add(member)
                    self._spawn(self._resync(room, member), "chat.resync")
                elif now - member.lag_since > self.limits.lag_timeout_s:
                    self.leave(member)
                    self._spawn(member.conn.close(CLOSE_TOO_SLOW, "too slow"), "chat.slow")

    async def _report_presence(self, now: float) -> None:
        for room in list(self._rooms.values()):
            if not room.ready.is_set() or room.failed is not None:
                continue
            idle = room.size() == 0 and now - room.empty_since > self.limits.idle_room_s
            await self._presence.report(room.keys, room.size(), withdraw=idle)
            if idle:
                async with self._sub_lock:
                    if room.size() == 0 and self._rooms.get(room.stream_id) is room:
                        self._drop_room(room)
                        await self._pubsub.unsubscribe(room.keys.channel)

    def stats(self) -> dict[str, int]:
        """Counters for health checks and benchmarks."""
        return {
            "rooms": len(self._rooms),
            "clients": sum(r.size() for r in self._rooms.values()),
            "frames_sent": self.frames_sent + sum(r.frames_sent for r in self._rooms.values()),
            "deliveries": self.deliveries + sum(r.deliveries for r in self._rooms.values()),
        }
