"""The request middleware: a request id for every HTTP request, and its metrics."""

from __future__ import annotations

import os
import re
import time
from itertools import count

from aiohttp import web
from aiohttp.typedefs import Middleware

from web.http import Handler
from web.logs import REQUEST_ID
from web.metrics import Metrics

REQUEST_ID_HEADER = "X-Request-Id"
#: An incoming id is kept when it could not break a log line or a header; else one is made.
_SANE_ID = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}", re.ASCII)
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
#: A client that went away before its reply (nginx's convention).
CLIENT_CLOSED = 499


class RequestIds:
    """Ids unique across processes and restarts, cheaper than a uuid4 per request."""

    def __init__(self) -> None:
        self._prefix = os.urandom(5).hex()
        self._next = count(1)

    def new(self) -> str:
        """A fresh id."""
        return f"{self._prefix}-{next(self._next):x}"


def observe_middleware(metrics: Metrics) -> Middleware:
    """The outermost middleware: sets the request id, times the request, counts its status."""
    ids = RequestIds()

    @web.middleware
    async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
        rid = request.headers.get(REQUEST_ID_HEADER)
        if rid is None or not _SANE_ID.fullmatch(rid):
            rid = ids.new()
        # Read back by log records and by _echo_request_id while this request is handled.
        REQUEST_ID.set(rid)
        started = time.perf_counter()
        status = CLIENT_CLOSED
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:  # redirects and the like pass the error middleware
            status = exc.status
            raise
        finally:
            method = request.method if request.method in _METHODS else "other"
            seconds = time.perf_counter() - started
            metrics.http_request(request.match_info.route.resource, method, status, seconds)

    return observe


async def _echo_request_id(request: web.Request, response: web.StreamResponse) -> None:
    rid = REQUEST_ID.get()
    if rid is not None:
        response.headers[REQUEST_ID_HEADER] = rid


def setup_observe(app: web.Application) -> None:
    """Echo the request id on every response, including websocket upgrades and streams."""
    app.on_response_prepare.append(_echo_request_id)
