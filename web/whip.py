"""The stream relay's HTTP edge: WHIP ingest, WHEP playback, stream metrics. Thin handlers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from aiohttp import web

from inventory.catalog import Catalog, StreamView
from stream.errors import AlreadyLive, StreamError, UnsupportedMediaType
from stream.lifecycle import UNPUBLISHED
from stream.registry import StreamRegistry
from web.auth import Principal, Role
from web.errors import AuthError, ForbiddenError
from web.http import json_error, read_capped
from web.keys import CATALOG, RELAY, SETTINGS, SIGNER, STREAM_REGISTRY

log = logging.getLogger("livesell.web")

SDP = "application/sdp"
TRICKLE = "application/trickle-ice-sdpfrag"
MAX_SDP = 64 * 1024
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, If-Match",
    "Access-Control-Expose-Headers": "Location, ETag, Link, Accept-Patch, Accept-Post",
    "Access-Control-Max-Age": "86400",
}
ENDPOINT_METHODS = "POST, OPTIONS"
SESSION_METHODS = "PATCH, DELETE, OPTIONS"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class StreamAnnouncer(Protocol):
    """The live room as the relay's lifecycle sees it (``chat.hub.Hub``)."""

    async def stream_status(self, stream_id: str, status: str) -> None:
        """Announce that the stream went live or ended."""
        ...


class StreamSales(Protocol):
    """The stream's flash sales as the relay's lifecycle sees them (``SaleService``)."""

    async def close_stream_sales(self, stream_id: str) -> list[int]:
        """Close the stream's open and counting-down sales; returns their ids."""
        ...


class RoomStreamLifecycle:
    """StreamLifecycle for the app: records the status in the catalog and tells the live room."""

    def __init__(
        self,
        catalog: Catalog,
        room: StreamAnnouncer,
        release: Callable[[str], Awaitable[None]],
        sales: StreamSales,
    ) -> None:
        self._catalog = catalog
        self._room = room
        self._release = release
        self._sales = sales

    async def stream_live(self, stream_id: str) -> None:
        """Mark the stream live and announce it in its room."""
        await self._set(stream_id, "live")

    async def stream_ended(self, stream_id: str, reason: str) -> None:
        """Mark the stream ended and announce it in its room."""
        log.info("stream %s ended (%s)", stream_id, reason)
        await self._release(stream_id)
        if reason == UNPUBLISHED:
            await self._close_sales(stream_id)
        await self._set(stream_id, "ended")

    async def _close_sales(self, stream_id: str) -> None:
        # Only the host's End closes the sales: a publisher lost to the network may come back
        # within the sale's window, and its buyers should not lose the sale meanwhile.
        try:
            closed = await self._sales.close_stream_sales(stream_id)
        except Exception:
            log.exception("could not close stream %s's sales", stream_id)
            return
        if closed:
            log.info("stream %s ended by its host: closed sales %s", stream_id, closed)

    async def _set(self, stream_id: str, status: str) -> None:
        try:
            await self._catalog.set_stream_status(stream_id, status)
        except Exception:
            log.exception("could not record stream %s as %s", stream_id, status)
        try:
            await self._room.stream_status(stream_id, status)
        except Exception:
            # A room failure must never break the relay.
            log.exception("room hub failed to announce stream %s %s", stream_id, status)


def setup_stream(app: web.Application) -> None:
    """Register the WHIP/WHEP routes (the relay is built by the composition root)."""
    r = app.router
    for kind, post, delete in (("whip", publish, unpublish), ("whep", watch, leave)):
        r.add_route("POST", f"/{kind}/{{stream_id}}", _edge(post))
        r.add_route("OPTIONS", f"/{kind}/{{stream_id}}", _preflight(ENDPOINT_METHODS))
        r.add_route("DELETE", f"/{kind}/{{stream_id}}/{{session_id}}", _edge(delete))
        r.add_route("PATCH", f"/{kind}/{{stream_id}}/{{session_id}}", _edge(trickle))
        r.add_route("OPTIONS", f"/{kind}/{{stream_id}}/{{session_id}}", _preflight(SESSION_METHODS))
    r.add_route("GET", "/api/streams/{stream_id}/metrics", _edge(metrics))


# -- handlers --------------------------------------------------------------------------------


async def publish(request: web.Request) -> web.StreamResponse:
    """WHIP: the stream's host (or an admin) starts broadcasting with an SDP offer."""
    stream_id = request.match_info["stream_id"]
    who = _principal(request)
    if who is None:
        raise AuthError("publishing needs the host's bearer token")
    stream = await _stream(request, stream_id)
    if who.role != Role.ADMIN and who.user_id != stream.host_id:
        raise ForbiddenError("only the stream's host may publish it")
    offer = await _body(request, SDP)
    relay = request.app[RELAY]
    holder = await _claim(request.app, stream_id)
    if holder is not None:
        raise AlreadyLive(f"stream {stream_id!r} is live on another worker ({holder})")
    try:
        answer = await relay.publish(stream_id, offer)
    except BaseException:
        if not relay.is_live(stream_id):
            await _release(request.app, stream_id)
        raise
    return _created(request, answer.sdp, answer.session_id, answer.etag)


async def watch(request: web.Request) -> web.StreamResponse:
    """WHEP: anyone (anonymous too) watches a live stream with an SDP offer."""
    stream_id = request.match_info["stream_id"]
    _principal(request)  # a token is optional, but a bad one is still a 401
    await _stream(request, stream_id)
    relay = request.app[RELAY]
    if not relay.is_live(stream_id):
        holder = await _holder(request.app, stream_id)
        if holder is not None:
            # 307 keeps the method and the SDP body: the player re-POSTs to the owning worker.
            location = f"{holder}/whep/{stream_id}"
            return web.Response(status=307, headers={**CORS, "Location": location})
    offer = await _body(request, SDP)
    answer = await relay.watch(stream_id, offer)
    return _created(request, answer.sdp, answer.session_id, answer.etag)


async def unpublish(request: web.Request) -> web.StreamResponse:
    """WHIP DELETE: end the broadcast. The unguessable session URL is the capability."""
    m = request.match_info
    await request.app[RELAY].unpublish(m["stream_id"], m["session_id"])
    await _release(request.app, m["stream_id"])
    return web.Response(status=200, headers=CORS)


async def leave(request: web.Request) -> web.StreamResponse:
    """WHEP DELETE: the viewer leaves."""
    m = request.match_info
    await request.app[RELAY].leave(m["stream_id"], m["session_id"])
    return web.Response(status=200, headers=CORS)


async def trickle(request: web.Request) -> web.StreamResponse:
    """PATCH: trickle ICE candidates into a session (ICE restarts answer 422)."""
    m = request.match_info
    relay = request.app[RELAY]
    fragment = await _body(request, TRICKLE)
    if_match = request.headers.get("If-Match")
    etag = await relay.trickle(m["stream_id"], m["session_id"], fragment, if_match)
    return web.Response(status=204, headers={**CORS, "ETag": etag})


async def metrics(request: web.Request) -> web.StreamResponse:
    """Per-stream relay metrics, for the stream's host or an admin."""
    stream_id = request.match_info["stream_id"]
    who = _principal(request)
    if who is None:
        raise AuthError("a bearer token is required")
    stream = await _stream(request, stream_id)
    if who.role != Role.ADMIN and who.user_id != stream.host_id:
        raise ForbiddenError("only the stream's host or an admin may see its metrics")
    data = request.app[RELAY].metrics(stream_id)
    if data is None:
        data = {"stream_id": stream_id, "live": False, "viewers": 0}
    return web.json_response(data)


# -- helpers ---------------------------------------------------------------------------------


def _edge(handler: Handler) -> Handler:
    """Turn stream and auth errors into JSON with CORS headers (browsers must read them)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except StreamError as exc:
            return json_error(exc.status, exc.code, exc.message, **CORS)
        except AuthError as exc:
            return json_error(401, exc.code, str(exc), **CORS, **{"WWW-Authenticate": "Bearer"})
        except ForbiddenError as exc:
            return json_error(403, exc.code, str(exc), **CORS)

    wrapped.__doc__ = handler.__doc__
    return wrapped


async def _claim(app: web.Application, stream_id: str) -> str | None:
    try:
        return await app[STREAM_REGISTRY].claim(stream_id)
    except Exception:
        # Fail open: with Redis away a single worker still works; only cross-worker checks lapse.
        log.warning("stream registry unavailable; publishing %s unregistered", stream_id)
        return None


async def _holder(app: web.Application, stream_id: str) -> str | None:
    try:
        return await app[STREAM_REGISTRY].holder(stream_id)
    except Exception:
        log.warning("stream registry unavailable; cannot look up %s", stream_id)
        return None


async def _release(app: web.Application, stream_id: str) -> None:
    await release_claim(app[STREAM_REGISTRY], stream_id)


async def release_claim(registry: StreamRegistry, stream_id: str) -> None:
    """Drop this worker's claim on a stream; with Redis away the claim expires by itself."""
    try:
        await registry.release(stream_id)
    except Exception:
        log.warning("stream registry unavailable; %s's claim will expire", stream_id)


def _preflight(methods: str) -> Handler:
    async def options(request: web.Request) -> web.StreamResponse:
        headers = {**CORS, "Access-Control-Allow-Methods": methods, "Allow": methods}
        if methods == ENDPOINT_METHODS:
            headers["Accept-Post"] = SDP
        else:
            headers["Accept-Patch"] = TRICKLE
        return web.Response(status=204, headers=headers)

    return options


def _principal(request: web.Request) -> Principal | None:
    return request.app[SIGNER].from_header(request.headers.get("Authorization"))


async def _stream(request: web.Request, stream_id: str) -> StreamView:
    stream = await request.app[CATALOG].get_stream(stream_id)
    if stream is None:
        raise _NoSuchStream(f"stream {stream_id!r} not found")
    return stream


class _NoSuchStream(StreamError):
    """The stream does not exist."""

    code = "stream_not_found"
    status = 404


async def _body(request: web.Request, content_type: str) -> str:
    if request.content_type != content_type:
        raise UnsupportedMediaType(f"Content-Type must be {content_type}")
    if request.content_length is not None and request.content_length > MAX_SDP:
        raise _TooLarge(f"the body exceeds {MAX_SDP} bytes")
    raw = await read_capped(request, MAX_SDP)
    if raw is None:
        raise _TooLarge(f"the body exceeds {MAX_SDP} bytes")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _BadBody("the body is not UTF-8") from exc


class _TooLarge(StreamError):
    """The body is too large."""

    code = "payload_too_large"
    status = 413


class _BadBody(StreamError):
    """The body cannot be read."""

    code = "bad_request"
    status = 400


def _created(request: web.Request, sdp: str, session_id: str, etag: str) -> web.Response:
    kind = request.path.strip("/").split("/", 1)[0]
    location = f"/{kind}/{request.match_info['stream_id']}/{session_id}"
    # The session lives in this process: behind a shared port or a load balancer its PATCH and
    # DELETE must come back here, at this process's own address (docs/deploy.md).
    own = request.app[SETTINGS].advertise_url.rstrip("/")
    if own:
        location = own + location
    headers = {**CORS, "Location": location, "ETag": etag, "Accept-Patch": TRICKLE}
    return web.Response(status=201, body=sdp.encode(), content_type=SDP, headers=headers)
