"""The HTTP edge's shared pieces: JSON errors, the error middleware, auth and body parsing."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from sqlalchemy import exc as sql_errors

from inventory.errors import DomainError, NotFound
from web.auth import Principal, Role
from web.errors import AuthError, ForbiddenError
from web.keys import SIGNER

log = logging.getLogger("livesell.web")

MAX_JSON_BODY = 64 * 1024
#: Integers a JSON body may carry: those a double holds exactly (I-JSON, RFC 7493). Larger ones
#: reached SQLite as an OverflowError (a 500) and Lua's numbers rounded them.
MAX_JSON_INT = 2**53 - 1
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
#: What SQL (SQLAlchemy, or the driver before SQLAlchemy wraps it) raises while unreachable.
DATABASE_DOWN = (
    sql_errors.OperationalError,
    sql_errors.InterfaceError,
    sql_errors.TimeoutError,
    ConnectionError,
    TimeoutError,
)


def json_error(
    status: int, code: str, message: str, field: str | None = None, **headers: str
) -> web.Response:
    """A JSON error response ``{"error": code, "message": ...}``, with ``"field"`` when one is
    at fault."""
    body = {"error": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Translate domain and edge errors into JSON; never leak a traceback."""
    try:
        return await handler(request)
    except DomainError as exc:
        retry_ms = getattr(exc, "retry_after_ms", None)
        if exc.status == 429 and isinstance(retry_ms, int):
            # Whole seconds, rounded up: a client retrying on the header is never early.
            retry = str(max(1, -(-retry_ms // 1000)))
            return json_error(429, exc.code, exc.message, **{"Retry-After": retry})
        return json_error(exc.status, exc.code, exc.message, exc.field)
    except AuthError as exc:
        return json_error(401, exc.code, str(exc), **{"WWW-Authenticate": "Bearer"})
    except ForbiddenError as exc:
        return json_error(403, exc.code, str(exc))
    except DATABASE_DOWN as exc:
        # The database is down, locked or silent: the request's transaction was rolled back,
        # and a retry can succeed (buys do not need it; orders wait in Redis meanwhile).
        log.warning("database unavailable on %s %s: %s", request.method, request.path,
                    type(exc).__name__)  # fmt: skip
        return json_error(503, "unavailable", "the database is unreachable; try again",
                          **{"Retry-After": "2"})  # fmt: skip
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            code = exc.reason.lower().replace(" ", "_")
            return json_error(exc.status, code, exc.reason, **dict(_safe_headers(exc)))
        raise
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return json_error(500, "internal", "internal server error")


def _safe_headers(exc: web.HTTPException) -> dict[str, str]:
    return {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "location")}


def principal(request: web.Request) -> Principal | None:
    """The caller from the ``Authorization`` header, or None when anonymous."""
    return request.app[SIGNER].from_header(request.headers.get("Authorization"))


def require(request: web.Request, *roles: Role) -> Principal:
    """The authenticated caller, required to hold one of ``roles`` (any role when empty)."""
    who = principal(request)
    if who is None:
        raise AuthError("a bearer token is required")
    if roles:
        who.require(*roles)
    return who


async def read_capped(request: web.Request, limit: int) -> bytes | None:
    """The whole body, or None once it exceeds ``limit`` bytes.

    One ``read(n)`` returns only what has arrived so far, so a body sent in several TCP
    segments must be read until its end.
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(limit + 1 - size)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return None


async def json_body(
    request: web.Request, required: bool = True, limit: int = MAX_JSON_BODY
) -> dict[str, Any]:
    """The request's JSON object body, with a size cap (413 past ``limit``) and clear 400s."""
    if request.content_length is not None and request.content_length > limit:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
    raw = await read_capped(request, limit)
    if raw is None:
        raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=limit + 1)
    if not raw.strip():
        if required:
            raise BadRequest("a JSON object body is required")
        return {}
    return json_object(raw)


def json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` parsed as a JSON object, or a 400."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"body is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    return body


class BadRequest(DomainError):
    """The request is malformed."""

    code = "bad_request"
    status = 400


def field(
    body: dict[str, Any], name: str, kind: type, default: Any = ..., optional: bool = False
) -> Any:
    """Read one typed field from a JSON body; a wrong type or a missing field is a 400."""
    if name not in body or (optional and body[name] is None):
        if default is ...:
            raise BadRequest(f"field {name!r} is required", field=name)
        return default
    value = body[name]
    if kind is int and not is_json_int(value):
        raise BadRequest(
            f"field {name!r} must be an integer of at most 2^53 - 1 in magnitude", field=name
        )
    if kind is not int and not isinstance(value, kind):
        raise BadRequest(f"field {name!r} must be {kind.__name__}", field=name)
    return value


def is_json_int(value: Any) -> bool:
    """Whether ``value`` is an integer (not a bool) within ``MAX_JSON_INT`` in magnitude."""
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_JSON_INT


def int_param(request: web.Request, name: str) -> int:
    """A positive integer path parameter, or a 404 for anything else."""
    raw = request.match_info[name]
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise NotFound(f"{name} {raw!r} not found")
    return int(raw)
