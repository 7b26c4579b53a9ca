"""Cross-origin access to the JSON API: only the origins a setting names, preflights included.

Closed by default: a page on another origin gets no CORS header, so its browser neither sends
a write with a token (the preflight fails) nor lets it read an answer. The pages of this server
are same-origin and need none. The media edges keep their own answers: WHIP/WHEP and HLS are
``*`` (any player may watch; publishing needs the host's token, never an ambient credential).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Middleware

from web.http import Handler, json_error

ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
ALLOW_HEADERS = "Authorization, Content-Type, Idempotency-Key, X-Request-Id"
EXPOSE_HEADERS = "Retry-After, X-Request-Id, Idempotent-Replayed, WWW-Authenticate"
#: Browsers cache a successful preflight this long (seconds).
MAX_AGE = "600"


def allowed_origins(raw: str) -> frozenset[str]:
    """The origins of the ``cors_origins`` setting (``*``: any), without trailing slashes."""
    return frozenset(o.strip().rstrip("/") for o in raw.split(",") if o.strip())


def cors_middleware(origins: frozenset[str]) -> Middleware:
    """Answer preflights and add CORS headers on /api/ for the allowed ``origins`` only."""
    any_origin = "*" in origins

    def allows(origin: str | None) -> bool:
        return origin is not None and (any_origin or origin in origins)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/api/"):
            return await handler(request)
        origin = request.headers.get("Origin")
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if not allows(origin):
                return json_error(403, "origin_not_allowed", "this origin may not call the API")
            return web.Response(
                status=204,
                headers={
                    "Access-Control-Allow-Origin": origin or "",
                    "Access-Control-Allow-Methods": ALLOW_METHODS,
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": MAX_AGE,
                    "Vary": "Origin",
                },
            )
        response = await handler(request)
        if allows(origin):
            response.headers["Access-Control-Allow-Origin"] = origin or ""
            response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
        if origins:
            # The answer depends on the Origin: a shared cache must not hand one to another.
            response.headers.add("Vary", "Origin")
        return response

    return cors
