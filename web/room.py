"""The live room's edge: the websocket ``GET /ws/rooms/{stream_id}`` and HTTP host actions."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import WSMsgType, web

from chat.errors import Banned, RoomNotFound, Unauthorized
from chat.hub import Authenticate
from chat.member import Identity, RoomLimits
from chat.moderation import ACTIONS
from chat.protocol import (
    CLOSE_BANNED,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    CLOSE_TRY_AGAIN,
    CLOSE_UNAUTHORIZED,
    MAX_FRAME_BYTES,
    MAX_HOST_FRAME_BYTES,
    Frame,
    encode,
    error_event,
    parse_command,
)
from inventory.errors import Unavailable
from web.auth import Principal, Role, TokenSigner
from web.errors import AuthError
from web.http import DATABASE_DOWN, json_body, principal, require
from web.keys import CLIENTS, RATE_LIMITER, ROOM_HUB, SIGNER
from web.ratelimit import CONNECT
from web.settings import Settings

log = logging.getLogger("livesell.web")

routes = web.RouteTableDef()


class WsConnection:
    """chat.member.ClientConnection over an aiohttp websocket.

    Broadcast frames are written straight to the transport as one pre-built websocket frame
    (server frames are unmasked, so the bytes are the same for every socket); the transport's
    write buffer is the client's bounded send queue. Replies are corked: those made in one
    event-loop turn go out in one write (a socket's taps run side by side, so one coalesced batch
    answers them together, and each write is a syscall); any frame sent while replies wait
    joins them, in order.
    """

    __slots__ = ("_corked", "_corked_bytes", "_limit", "_transport", "ws")

    def __init__(self, ws: web.WebSocketResponse, transport: Any, limit: int) -> None:
        self.ws = ws
        self._transport = transport
        self._limit = limit
        self._corked: list[bytes] | None = None
        self._corked_bytes = 0

    def send_frame(self, frame: Frame, corked: bool = False) -> bool:
        """Write the frame unless the client's buffer is over the limit."""
        t = self._transport
        if t is None or t.is_closing():
            return True  # gone: the handler's read loop ends and leaves the room
        if t.get_write_buffer_size() + self._corked_bytes > self._limit:
            return False
        data = frame.wire
        if self._corked is not None:
            self._corked.append(data)
            self._corked_bytes += len(data)
        elif corked:
            self._corked = [data]
            self._corked_bytes = len(data)
            asyncio.get_running_loop().call_soon(self._uncork)
        else:
            t.write(data)
        return True

    def _uncork(self) -> None:
        corked, self._corked, self._corked_bytes = self._corked, None, 0
        t = self._transport
        if corked and t is not None and not t.is_closing():
            t.write(corked[0] if len(corked) == 1 else b"".join(corked))

    def buffered_bytes(self) -> int:
        """Bytes queued in the transport."""
        t = self._transport
        return 0 if t is None or t.is_closing() else int(t.get_write_buffer_size())

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code``; a client that does not drain is cut off after 2 s."""
        self._uncork()  # the reply saying why (an error, server_restarting) goes first
        try:
            await asyncio.wait_for(self.ws.close(code=code, message=reason.encode()), 2)
        except (TimeoutError, ConnectionError, RuntimeError):
            if self._transport is not None:
                self._transport.abort()


def _identity(who: Principal) -> Identity:
    return Identity(who.user_id, who.name, who.role.value, who.jti, who.issued_at)


async def _refuse(ws: web.WebSocketResponse, code: str, message: str, close: int) -> None:
    await ws.send_bytes(encode(error_event(code, message)))
    await ws.close(code=close, message=message.encode()[:120])


@routes.get("/ws/rooms/{stream_id}")
async def room_socket(request: web.Request) -> web.WebSocketResponse:
    """The live room. Token: ``?token=``, an Authorization header, or an ``auth`` event."""
    hub = request.app[ROOM_HUB]
    client = request.app[CLIENTS].of(request)
    wait_ms = await request.app[RATE_LIMITER].wait_ms(client, CONNECT)
    # compress=False: frames are pre-built once and shared by every socket.
    ws = web.WebSocketResponse(max_msg_size=MAX_HOST_FRAME_BYTES, compress=False, heartbeat=30)
    await ws.prepare(request)
    if wait_ms:
        # Refused after the upgrade: a browser cannot read a failed upgrade's status or headers.
        message = f"too many connections from your address; retry in {wait_ms} ms"
        await ws.send_bytes(encode(error_event("rate_limited", message, retry_after_ms=wait_ms)))
        await ws.close(code=CLOSE_RATE_LIMITED, message=b"rate limited")
        return ws
    conn = WsConnection(ws, request.transport, hub.limits.max_buffer_bytes)
    token = request.query.get("token")
    header = request.headers.get("Authorization", "")
    if not token and header.lower().startswith("bearer "):
        token = header[7:].strip()
    identity: Identity | None = None
    if token:
        try:
            identity = _identity(request.app[SIGNER].verify(token))
        except AuthError as exc:
            await _refuse(ws, exc.code, str(exc), CLOSE_UNAUTHORIZED)
            return ws
    raw_since = request.query.get("since")
    since = None
    if (
        raw_since is not None
        and raw_since.isascii()
        and raw_since.isdigit()
        and len(raw_since) < 19
    ):
        since = int(raw_since)
    try:
        member = await hub.join(request.match_info["stream_id"], conn, identity, since)
    except RoomNotFound as exc:
        await _refuse(ws, exc.code, exc.message, CLOSE_NOT_FOUND)
        return ws
    except Banned as exc:
        await _refuse(ws, exc.code, exc.message, CLOSE_BANNED)
        return ws
    except (Unavailable, *DATABASE_DOWN) as exc:
        # Redis or SQL is away (a join reads the stream from SQL, the room from Redis). The
        # socket is already upgraded, so an HTTP 503 can no longer be sent: say it in-protocol.
        log.warning("room join refused, a backing service is down: %s", type(exc).__name__)
        await _refuse(ws, "unavailable", "the room is unavailable; try again", CLOSE_TRY_AGAIN)
        return ws
    member.client = client
    try:
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await hub.receive(member, msg.data)
            elif msg.type == WSMsgType.TEXT:
                # Text frames are not the protocol; this yields a bad_frame error (a strike).
                await hub.receive(member, msg.data.encode()[: MAX_FRAME_BYTES + 1])
    finally:
        hub.leave(member)
    return ws


@routes.post("/api/streams/{stream_id}/room/{action}")
async def room_action(request: web.Request) -> web.Response:
    """A host/moderator action over HTTP, e.g. ``pin`` with ``{"product_id": 1}``."""
    who = principal(request)
    if who is None:
        raise AuthError("a bearer token is required")
    action = request.match_info["action"]
    if action not in ACTIONS:
        raise web.HTTPNotFound(reason="unknown room action")
    body = await json_body(request, required=False)
    command = parse_command(encode({**body, "type": action}))
    seq = await request.app[ROOM_HUB].act(request.match_info["stream_id"], _identity(who), command)
    return web.json_response({"ok": True, "seq": seq})


@routes.get("/api/rooms/stats")
async def room_stats(request: web.Request) -> web.Response:
    """This process's room counters (rooms, clients, frames, deliveries), for admins."""
    require(request, Role.ADMIN)
    return web.json_response(request.app[ROOM_HUB].stats())


def authenticator(signer: TokenSigner) -> Authenticate:
    """The room's token check (the ``auth`` event), over the app's token signer."""

    def authenticate(token: str) -> Identity:
        try:
            return _identity(signer.verify(token))
        except AuthError as exc:
            raise Unauthorized(str(exc), code=exc.code) from exc

    return authenticate


def room_limits(settings: Settings) -> RoomLimits:
    """The room's limits from the settings."""
    return RoomLimits(
        chat_burst=settings.room_chat_burst,
        chat_per_s=settings.room_chat_per_s,
        max_buffer_bytes=settings.room_send_buffer_bytes,
        resume_buffer_bytes=min(64 << 10, settings.room_send_buffer_bytes // 4),
        batch_window_s=settings.room_batch_window_s,
    )


async def _close_sockets(app: web.Application) -> None:
    # on_shutdown runs before aiohttp waits for open handlers: close sockets with 1001 now,
    # instead of letting every client hang until the shutdown timeout.
    if ROOM_HUB in app:  # absent when start-up failed before the room was built
        await app[ROOM_HUB].close_clients(restarting=True)


def setup_room(app: web.Application) -> None:
    """Register the room routes (the Hub is built by the composition root)."""
    app.on_shutdown.append(_close_sockets)
    app.add_routes(routes)
