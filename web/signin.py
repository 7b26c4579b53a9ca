"""Getting in: one-time login codes for the operator, guest tokens for viewers (HTTP edge)."""

from __future__ import annotations

import json
import re
import secrets
import unicodedata

from aiohttp import web
from redis.asyncio import Redis

from web.auth import Role, TokenSigner
from web.errors import AuthError
from web.http import BadRequest, field, json_body, json_error
from web.keys import REDIS, SETTINGS, SIGNER
from web.ratelimit import GUEST, throttle

routes = web.RouteTableDef()

#: A login code is good for one exchange within this many seconds.
CODE_TTL_S = 600
MAX_GUEST_NAME = 40
#: Control, format (zero-width, bidi overrides), separators other than space: not in names.
_DROP = frozenset({"Cc", "Cf", "Zl", "Zp"})
_SPACES = re.compile(r"\s+")


class LoginCodes:
    """Short-lived single-use codes in Redis, each exchanged once for a bearer token."""

    def __init__(self, redis: Redis, prefix: str, signer: TokenSigner) -> None:
        self._redis = redis
        self._prefix = prefix
        self._signer = signer

    def _key(self, code: str) -> str:
        return f"{self._prefix}:login:{code}"

    async def issue(self, role: Role, user_id: str, name: str | None = None) -> str:
        """Store a fresh code for ``user_id`` with ``role`` and return it."""
        self._signer.mint(user_id, role, name)  # validates the user id before anything is stored
        code = secrets.token_urlsafe(18)
        claims = json.dumps({"user": user_id, "role": str(role), "name": name or user_id})
        await self._redis.set(self._key(code), claims, ex=CODE_TTL_S)
        return code

    async def redeem(self, code: str) -> tuple[str, dict[str, str]]:
        """Exchange ``code`` for (token, who); GETDEL makes a second use fail. AuthError if bad."""
        if not (8 <= len(code) <= 64) or not code.isascii():
            raise AuthError("invalid login code")
        raw = await self._redis.getdel(self._key(code))
        if raw is None:
            raise AuthError("login code unknown, used or expired; ask for a new link")
        who = json.loads(raw)
        token = self._signer.mint(who["user"], Role(who["role"]), who["name"])
        return token, who


def clean_name(raw: str) -> str:
    """A display name: no control or invisible characters, spaces collapsed, 1..40 characters."""
    text = "".join(c for c in raw if unicodedata.category(c) not in _DROP)
    text = _SPACES.sub(" ", text).strip()[:MAX_GUEST_NAME].strip()
    if not text:
        raise BadRequest("a display name of 1 to 40 visible characters is required")
    return text


def login_codes(app: web.Application) -> LoginCodes:
    """The app's login codes (built on use: they need only Redis and the signer)."""
    return LoginCodes(app[REDIS], app[SETTINGS].redis_prefix, app[SIGNER])


@routes.post("/api/login")
async def login(request: web.Request) -> web.Response:
    """Exchange a one-time login code: ``{code}`` -> ``{token, user_id, role, name}``."""
    body = await json_body(request)
    token, who = await login_codes(request.app).redeem(field(body, "code", str))
    return web.json_response(
        {"token": token, "user_id": who["user"], "role": who["role"], "name": who["name"]}
    )


@routes.post("/api/guest")
async def guest(request: web.Request) -> web.Response:
    """A viewer token for a guest with a display name: ``{name}`` -> ``{token, user_id, ...}``."""
    if not request.app[SETTINGS].guest_login:
        return json_error(403, "guest_login_off", "guest sign-in is turned off on this server")
    body = await json_body(request)
    name = clean_name(field(body, "name", str))
    await throttle(request, GUEST)
    user_id = f"g-{secrets.token_hex(6)}"
    token = request.app[SIGNER].mint(user_id, Role.VIEWER, name)
    return web.json_response(
        {"token": token, "user_id": user_id, "role": "viewer", "name": name}, status=201
    )
