"""The Hub: the room's entry points (join, frames, host actions, stream status) over its parts."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from redis.exceptions import RedisError

from chat.audience import Audience
from chat.commands import Commands, error_reply, is_strike
from chat.errors import BadFrame, RateLimited, RoomNotFound, Unauthorized
from chat.figures import FiguresReader, RoomFigures
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import ClientConnection, Delivery, Identity, Member, RoomLimits
from chat.moderation import ACTIONS, Moderation, WordFilter, auth_ok
from chat.protocol import (
    CLOSE_ABUSE,
    CLOSE_BANNED,
    CLOSE_UNAUTHORIZED,
    Command,
    error_event,
    parse_command,
)
from chat.room import RoomState
from chat.salefeed import SaleAnnouncer, SaleFeed
from chat.subscriptions import RoomChannels
from chat.ticker import RoomTicker
from inventory.catalog import Catalog, StreamView
from inventory.errors import DomainError
from inventory.tasks import cancel_all, supervise

log = logging.getLogger("livesell.chat")

Authenticate = Callable[[str], Identity]
#: Commands that wait on a coalesced sale call: they run beside the socket's next frames.
SALE_COMMANDS = frozenset({"buy", "group_open", "group_join", "coupon_claim", "bid", "enter_draw"})


class Hub:
    """Fans room events out to this process's sockets and runs what clients ask of the room.

    Every event is encoded once (by its publisher), arrives here once per process through the
    room's pub/sub channel (``Subscriptions``), and joins a batch of its ``LocalRoom``; each batch
    becomes one frame whose bytes are written to every local socket (``Audience``).
    """

    def __init__(
        self,
        *,
        keys_of: Callable[[str], RoomKeys],
        catalog: Catalog,
        state: RoomState,
        room_log: RoomLog,
        moderation: Moderation,
        commands: Commands,
        audience: Audience,
        subscriptions: RoomChannels,
        ticker: RoomTicker,
        feed: SaleFeed,
        announcer: SaleAnnouncer,
        authenticate: Authenticate | None,
        figures: FiguresReader,
    ) -> None:
        self.keys = keys_of
        self._catalog = catalog
        self.state = state
        self.log = room_log
        self.moderation = moderation
        self._commands = commands
        self.audience = audience
        self._subs = subscriptions
        self._ticker = ticker
        #: The room's sale observer (given to the sale service by the composition root).
        self.feed = feed
        self._announcer = announcer
        self._authenticate = authenticate
        self._figures = figures
        self._tasks: list[Any] = []

    @property
    def limits(self) -> RoomLimits:
        """The room's limits."""
        return self.audience.limits

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Subscribe the control channel and start the reader, ticker and sale announcer."""
        await self._subs.start()
        self._tasks += [
            supervise(self._ticker.run(), "chat.hub.ticker"),
            supervise(self._announcer.run(), "chat.hub.salefeed"),
        ]

    async def close_clients(self, restarting: bool = False) -> None:
        """Close every local socket with 1001 (going away); ``server_restarting`` first."""
        await self.audience.close_clients(restarting)

    def disconnect(
        self, match: Callable[[Identity], bool], code: int, event: dict[str, Any]
    ) -> int:
        """Close this process's sockets whose user ``match`` picks (e.g. a revoked token's)."""
        return self.audience.disconnect(match, code, event)

    async def close(self) -> None:
        """Close every socket (1001), then stop the tasks and the subscription."""
        await self.audience.close_clients()
        await cancel_all(self._tasks)
        await self.audience.close()
        await self._subs.close()

    async def stream_status(self, stream_id: str, status: str) -> None:
        """Announce that the stream went live or ended (called by the relay's lifecycle)."""
        keys = self.keys(stream_id)
        await self.state.set_stream_status(keys, status)
        await self.log.publish(keys, {"type": "stream", "status": status})
        await self.state.retain(keys, ended=status == "ended")

    def stream_changed(self, stream: StreamView) -> None:
        """Take a stream's new row (e.g. its rehearsal flag) into this process's open room.

        Other processes keep theirs until their room goes idle; only badges read it.
        """
        room = self.audience.get(stream.id)
        if room is not None and room.stream is not None:
            room.stream = stream

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
        return await self._figures({sid: self.keys(sid) for sid in stream_ids})

    # -- members -----------------------------------------------------------------------------

    async def join(
        self,
        stream_id: str,
        conn: ClientConnection,
        identity: Identity | None = None,
        since: int | None = None,
    ) -> Member:
        """Add a client: snapshot (or replay after ``since``), then live events in order."""
        return await self.audience.join(stream_id, conn, identity, since)

    def leave(self, member: Member) -> None:
        """Forget a client (its socket closed)."""
        member.cancel_in_flight()
        self.audience.leave(member)

    async def authenticate(self, member: Member, token: str, ref: Any = None) -> None:
        """Attach a user to an anonymous connection (the ``auth`` event); bad tokens close 4001."""
        if self._authenticate is None:
            raise Unauthorized("this server does not accept tokens")
        try:
            identity = self._authenticate(token)
        except Unauthorized as exc:
            member.send(error_event(exc.code, exc.message, ref))
            await member.conn.close(CLOSE_UNAUTHORIZED, "invalid token")
            return
        room = self.audience.get(member.stream_id)
        assert room is not None and room.stream is not None
        if await self.state.admit(room.keys, identity.user_id, identity.role == "admin"):
            member.send(error_event("banned", "you are banned from this room", ref))
            await member.conn.close(CLOSE_BANNED, "banned")
            return
        member.identity = identity
        standing = await self.moderation.standing(room.keys, room.stream, identity)
        member.send(auth_ok(identity, standing, ref))

    async def receive(self, member: Member, data: bytes) -> None:
        """Handle one client frame: errors become ``error`` events, repeated abuse closes 4008."""
        if member.state is Delivery.CLOSED:
            return  # kicked (ban, too slow) while this frame was in flight
        ref = None
        try:
            within_budget = member.frames.take()
            cmd = parse_command(data)  # first, so that even the rate-limit error has the ref
            ref = cmd.ref
            if not within_budget:
                raise RateLimited(1000, "too many frames; slow down")
            room = self.audience.get(member.stream_id)
            assert room is not None and room.stream is not None
            if cmd.type == "auth":
                await self.authenticate(member, cmd["token"], ref)
                return
            if cmd.type in SALE_COMMANDS:
                await member.run_beside(self._run(member, room.keys, room.stream, room.words, cmd))
                return
            await self._commands.run(member, room.keys, room.stream, room.words, cmd)
        except Exception as exc:
            await self._failed(member, exc, ref)

    async def _run(
        self, member: Member, keys: RoomKeys, stream: StreamView, words: WordFilter, cmd: Command
    ) -> None:
        try:
            await self._commands.run(member, keys, stream, words, cmd)
        except Exception as exc:
            await self._failed(member, exc, cmd.ref)

    async def _failed(self, member: Member, exc: Exception, ref: Any) -> None:
        """Answer a failed frame: an ``error`` event; repeated abuse closes 4008."""
        if isinstance(exc, DomainError):
            if isinstance(exc, BadFrame):
                ref = exc.ref
            member.send(error_reply(exc, ref))
            if is_strike(exc) and member.strike():
                await member.conn.close(CLOSE_ABUSE, "too many invalid or rejected frames")
        elif isinstance(exc, RedisError):
            log.warning("room command failed: Redis unavailable", exc_info=exc)
            member.send(error_event("unavailable", "the room store is unreachable; retry", ref))
        else:
            log.error("room command failed", exc_info=exc)
            member.send(error_event("internal", "internal error", ref))

    def stats(self) -> dict[str, int]:
        """Counters for health checks and benchmarks."""
        return self.audience.stats()
