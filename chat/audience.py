"""This process's members of every room: joining, live, lagging, leaving, and resyncs."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import random
import time
from collections.abc import Callable, Coroutine
from typing import Any

from chat.errors import Banned, RoomNotFound
from chat.fanout import FanoutMeter, LocalRoom, NullFanoutMeter
from chat.keys import RoomKeys
from chat.member import ClientConnection, Delivery, Identity, Member, RoomLimits
from chat.moderation import WordFilter
from chat.protocol import (
    CLOSE_BANNED,
    CLOSE_GOING_AWAY,
    CLOSE_TOO_SLOW,
    RESTART_RETRY_MS,
    Frame,
    decode,
    encode,
    restarting_event,
    unwrap,
)
from chat.room import RoomState
from chat.snapshot import Snapshots
from chat.subscriptions import RoomChannels
from inventory.catalog import Catalog
from inventory.tasks import cancel_all, supervise

log = logging.getLogger("livesell.chat")


class _Channel:
    """chat.subscriptions.Listener of one local room."""

    __slots__ = ("_audience", "_room")

    def __init__(self, audience: Audience, room: LocalRoom) -> None:
        self._audience = audience
        self._room = room

    def message(self, data: bytes) -> None:
        """An event of the room: update the caches, queue it for the next frame."""
        self._audience.on_event(self._room, data)

    def lost(self) -> None:
        """Events may be lost: every live member gets a fresh snapshot."""
        for member in list(self._room.live):
            self._room.lag(member)


class Audience:
    """The local rooms of this process and every member's delivery state (``Delivery``).

    A member is registered (collecting live frames) before anything is read from Redis, so
    every event is either in its snapshot or replay or in ``member.pending``.
    """

    def __init__(
        self,
        catalog: Catalog,
        state: RoomState,
        snapshots: Snapshots,
        subscriptions: RoomChannels,
        keys_of: Callable[[str], RoomKeys],
        limits: RoomLimits,
        meter: FanoutMeter | None = None,
    ) -> None:
        self._catalog = catalog
        self._meter = meter or NullFanoutMeter()
        self._state = state
        self._snapshots = snapshots
        self._subs = subscriptions
        self._keys_of = keys_of
        self.limits = limits
        self._rooms: dict[str, LocalRoom] = {}
        self._side: set[asyncio.Task[Any]] = set()
        #: Counters of rooms dropped since start (kept in the process totals).
        self._frames_sent = 0
        self._deliveries = 0

    def get(self, stream_id: str) -> LocalRoom | None:
        """The local room of ``stream_id``, if this process has one."""
        return self._rooms.get(stream_id)

    def rooms(self) -> list[LocalRoom]:
        """Every local room."""
        return list(self._rooms.values())

    # -- rooms -------------------------------------------------------------------------------

    async def _room(self, stream_id: str) -> LocalRoom:
        room = self._rooms.get(stream_id)
        if room is None:
            room = self._rooms[stream_id] = LocalRoom(
                stream_id, self._keys_of(stream_id), self._meter
            )
            try:
                room.stream = await self._catalog.get_stream(stream_id)
                if room.stream is None:
                    raise RoomNotFound(f"stream {stream_id} not found")
                room.words = WordFilter(await self._state.banned_words(room.keys))
                # Only once Redis confirms the subscription may the snapshot be read:
                # otherwise an event published in between would be in neither.
                await self._subs.subscribe(room.keys.channel, _Channel(self, room))
            except BaseException as exc:
                room.failed = exc
                self._drop(room)
                raise
            finally:
                room.ready.set()
        else:
            await room.ready.wait()
            if room.failed is not None:
                raise RoomNotFound(f"stream {stream_id} not found")
        return room

    def _drop(self, room: LocalRoom) -> None:
        self._frames_sent += room.frames_sent
        self._deliveries += room.deliveries
        room.frames_sent = room.deliveries = 0
        self._rooms.pop(room.stream_id, None)
        self._subs.forget(room.keys.channel)
        if room.flush_handle is not None:
            room.flush_handle.cancel()

    async def drop_if_idle(self, room: LocalRoom) -> bool:
        """Drop an empty room and unsubscribe it, unless someone joined meanwhile."""

        def still_idle() -> bool:
            if room.size() == 0 and self._rooms.get(room.stream_id) is room:
                self._drop(room)
                return True
            return False

        return await self._subs.unsubscribe(room.keys.channel, still_idle)

    # -- members -----------------------------------------------------------------------------

    async def join(
        self, stream_id: str, conn: ClientConnection, identity: Identity | None, since: int | None
    ) -> Member:
        """Add a client: snapshot (or replay after ``since``), then live events in order."""
        room = await self._room(stream_id)
        member = Member(stream_id, conn, identity, self.limits)
        room.joining.add(member)  # at once: an idle room with a joiner is not dropped
        try:
            if identity is not None and await self._state.admit(
                room.keys, identity.user_id, identity.role == "admin"
            ):
                raise Banned("you are banned from this room")
            await self._catch_up(room, member, since)
        except BaseException:
            self.leave(member)
            raise
        return member

    async def _catch_up(
        self, room: LocalRoom, member: Member, since: int | None, resync: bool = False
    ) -> None:
        assert room.stream is not None
        await self._snapshots.catch_up(room.keys, room.stream, member, since, resync)
        if member.state is Delivery.CLOSED:
            return
        member.release_pending()
        room.joining.discard(member)
        member.state = Delivery.LIVE
        room.guard_seq = max(room.guard_seq, member.after_seq)
        room.live[member] = member.conn

    def leave(self, member: Member) -> None:
        """Forget a client (its socket closed)."""
        member.state = Delivery.CLOSED
        room = self._rooms.get(member.stream_id)
        if room is None:
            return
        room.live.pop(member, None)
        room.joining.discard(member)
        room.lagging.discard(member)
        if room.size() == 0:
            room.empty_since = time.monotonic()

    def _kick(self, member: Member, code: int, reason: str) -> None:
        self.leave(member)
        self._spawn(member.conn.close(code, reason), "chat.kick")

    def disconnect(
        self, match: Callable[[Identity], bool], code: int, event: dict[str, Any]
    ) -> int:
        """Send ``event`` to, then close with ``code``, every signed-in member ``match`` picks."""
        gone = [
            m
            for r in self._rooms.values()
            for m in r.members()
            if m.identity is not None and match(m.identity)
        ]
        for m in gone:
            m.send(event)
            self._kick(m, code, str(event.get("code", "")))
        return len(gone)

    async def close_clients(self, restarting: bool = False) -> None:
        """Close every local socket with 1001 (going away), first telling it (``restarting``)."""
        members = [m for r in self._rooms.values() for m in r.members()]
        for m in members:
            self.leave(m)
            if restarting:
                # Written now, ahead of the close frame; a member too far behind misses it and
                # still reconnects on 1001. A spread hint, so a room does not return at once.
                retry = random.randint(*RESTART_RETRY_MS)
                m.conn.send_frame(Frame(encode(restarting_event(retry))))
        await asyncio.gather(
            *(m.conn.close(CLOSE_GOING_AWAY, "server shutting down") for m in members),
            return_exceptions=True,
        )

    async def close(self) -> None:
        """Stop the side tasks (kicks, resyncs) and every pending flush."""
        await cancel_all(list(self._side))
        for room in self._rooms.values():
            if room.flush_handle is not None:
                room.flush_handle.cancel()

    # -- slow clients ------------------------------------------------------------------------

    def check_lagging(self, now: float) -> None:
        """Resync members that drained their buffers; disconnect those lagging too long."""
        for room in self._rooms.values():
            for member in list(room.lagging):
                if member.conn.buffered_bytes() <= self.limits.resume_buffer_bytes:
                    # Back to joining at once, so frames from now on queue behind the snapshot.
                    room.lagging.discard(member)
                    member.state = Delivery.JOINING
                    member.pending.clear()
                    room.joining.add(member)
                    self._spawn(self._resync(room, member), "chat.resync")
                elif now - member.lag_since > self.limits.lag_timeout_s:
                    self._kick(member, CLOSE_TOO_SLOW, "too slow")

    async def _resync(self, room: LocalRoom, member: Member) -> None:
        try:
            await self._catch_up(room, member, None, resync=True)
        except Exception:
            log.exception("resync failed; closing the client")
            self.leave(member)
            await member.conn.close(CLOSE_TOO_SLOW, "could not resync")

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        task = supervise(coro, name)
        self._side.add(task)
        task.add_done_callback(self._side.discard)

    # -- events ------------------------------------------------------------------------------

    def on_event(self, room: LocalRoom, message: bytes) -> None:
        """One event from the room's channel: keep the caches in step, queue it for delivery."""
        data, published_us = unwrap(message)
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
        if kind == "stream" and room.stream is not None:
            room.stream = dataclasses.replace(room.stream, status=ev["status"])
        elif kind == "sale":
            self._snapshots.forget_sale(room.stream_id)
        elif kind == "moderation" and ev.get("action") == "ban":
            for m in room.members():
                if m.user_id == ev["user_id"]:
                    self._kick(m, CLOSE_BANNED, "banned")
        room.push(data, ev.get("seq", 0), self.limits.batch_window_s, published_us)

    def stats(self) -> dict[str, int]:
        """Counters for health checks and benchmarks."""
        rooms = self._rooms.values()
        return {
            "rooms": len(self._rooms),
            "clients": sum(r.size() for r in rooms),
            "frames_sent": self._frames_sent + sum(r.frames_sent for r in rooms),
            "deliveries": self._deliveries + sum(r.deliveries for r in rooms),
        }
