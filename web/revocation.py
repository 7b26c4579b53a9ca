"""Token revocation, by ``jti`` or by user, kept in Redis and pushed to every worker's memory.

Every verified token is checked against this process's ``RevocationList`` (two dict lookups,
no Redis round trip per request). The list is loaded at start-up and kept current through a
pub/sub channel: a revocation is written (sorted set or hash) and published in one MULTI, and
every process applies the message, then closes the room sockets it covers. A process that loses
its subscription reloads the whole list once it is back, so a message missed meanwhile counts.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chat.protocol import CLOSE_UNAUTHORIZED, error_event
from inventory.redisclient import is_cluster
from inventory.tasks import cancel_all, supervise
from web.auth import USER_ID_RE, Principal, Role
from web.errors import AuthError
from web.http import BadRequest, field, json_body, require
from web.keys import REDIS, ROOM_HUB, SETTINGS, SIGNER

log = logging.getLogger("livesell.revocation")

routes = web.RouteTableDef()

#: A jti revoked without its token (so without its expiry) is remembered this long.
UNKNOWN_EXPIRY_S = 365 * 24 * 3600


@dataclass(frozen=True, slots=True)
class Revocation:
    """A token by its ``jti``, or every token of ``user_id`` issued by ``before`` (seconds)."""

    jti: str = ""
    exp: int = 0
    user_id: str = ""
    before: int = 0

    def covers(self, user_id: str, jti: str, issued_at: int) -> bool:
        """Whether a token with these claims is revoked by this record."""
        if self.jti:
            return jti == self.jti
        return user_id == self.user_id and issued_at <= self.before


class RevocationList:
    """This process's copy of every revocation: what ``TokenSigner`` asks after each verify."""

    def __init__(self) -> None:
        self._jtis: dict[str, int] = {}
        self._users: dict[str, int] = {}

    def is_revoked(self, who: Principal) -> bool:
        """Whether ``who``'s token is revoked (its jti, or its user since its issue time)."""
        if who.jti in self._jtis:  # "" (a token without an id) is never a key
            return True
        before = self._users.get(who.user_id)
        return before is not None and who.issued_at <= before

    def apply(self, rev: Revocation) -> None:
        """Add one revocation."""
        if rev.jti:
            self._jtis[rev.jti] = rev.exp
        elif rev.user_id:
            self._users[rev.user_id] = max(rev.before, self._users.get(rev.user_id, 0))

    def replace(self, jtis: dict[str, int], users: dict[str, int]) -> None:
        """Swap in the whole list as read from Redis."""
        self._jtis, self._users = jtis, users

    def __len__(self) -> int:
        return len(self._jtis) + len(self._users)


class RevocationStore:
    """Revocations in Redis: written and published together, loaded and followed per process."""

    def __init__(self, redis: Redis, prefix: str, revoked: RevocationList) -> None:
        self._redis = redis
        self._revoked = revoked
        tag = f"{prefix}:{{auth}}"  # one slot on a Cluster: the MULTI stays on one node
        self._jti_key = f"{tag}:revoked-jti"
        self._user_key = f"{tag}:revoked-users"
        self.channel = f"{tag}:revocations"

    async def revoke_jti(self, jti: str, exp: int | None = None) -> Revocation:
        """Revoke one token by its id (``exp``: its expiry, after which the record can go)."""
        now = int(time.time())
        rev = Revocation(jti=jti, exp=exp if exp is not None else now + UNKNOWN_EXPIRY_S)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(self._jti_key, "-inf", now)
            pipe.zadd(self._jti_key, {jti: rev.exp})
            pipe.publish(self.channel, json.dumps(asdict(rev)))
            await pipe.execute()
        return rev

    async def revoke_user(self, user_id: str) -> Revocation:
        """Revoke every token of ``user_id`` issued up to now (Redis's clock, in seconds)."""
        seconds, _ = await self._redis.time()
        rev = Revocation(user_id=user_id, before=int(seconds))
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(self._user_key, user_id, str(rev.before))
            pipe.publish(self.channel, json.dumps(asdict(rev)))
            await pipe.execute()
        return rev

    async def load(self) -> None:
        """Read every revocation still in force into this process's list."""
        now = int(time.time())
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(self._jti_key, now, "+inf", withscores=True)
            pipe.hgetall(self._user_key)
            jtis, users = await pipe.execute()
        self._revoked.replace(
            {_text(j): int(exp) for j, exp in jtis},
            {_text(u): int(before) for u, before in users.items()},
        )

    async def follow(self, on_revoke: Callable[[Revocation], None]) -> None:
        """Apply every published revocation (and call ``on_revoke``) until cancelled.

        Subscribed before the list is (re)loaded, so nothing falls between the two.
        """
        backoff = 0.5
        while True:
            pubsub = self._pubsub()
            try:
                await pubsub.subscribe(self.channel)
                await self.load()
                backoff = 0.5
                while True:
                    msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if msg is not None and msg["type"] == "message":
                        self._receive(msg["data"], on_revoke)
            except (RedisError, OSError):
                log.warning("revocation channel lost; reloading in %.1f s", backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
            finally:
                await pubsub.aclose()

    def _pubsub(self) -> Any:
        # redis-py 5.2.1's cluster client has no pub/sub. A plain PUBLISH reaches every node of
        # a cluster, so listening on the primary of the channel's slot (re-resolved after each
        # loss, which also follows a failover) hears every revocation.
        if is_cluster(self._redis):
            cluster: Any = self._redis
            pool = cluster.node_pool(cluster.keyslot(self.channel))
            return Redis(connection_pool=pool).pubsub()
        return self._redis.pubsub()

    def _receive(self, data: Any, on_revoke: Callable[[Revocation], None]) -> None:
        try:
            raw = json.loads(data)
            rev = Revocation(
                jti=str(raw["jti"]), exp=int(raw["exp"]),
                user_id=str(raw["user_id"]), before=int(raw["before"]),
            )  # fmt: skip
        except (ValueError, KeyError, TypeError):
            log.warning("malformed revocation message ignored")
            return
        self._revoked.apply(rev)
        on_revoke(rev)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


REVOCATIONS = web.AppKey("revocations", RevocationStore)
#: This process's copy, made with the app (the signer asks it) and filled by the store.
REVOKED = web.AppKey("revoked", RevocationList)


def _close_sockets(app: web.Application) -> Callable[[Revocation], None]:
    """Close this process's room sockets signed in with a token ``rev`` covers (4001)."""

    def close(rev: Revocation) -> None:
        event = error_event("token_revoked", "your token was revoked; sign in again")
        app[ROOM_HUB].disconnect(
            lambda who: rev.covers(who.user_id, who.token_id, who.issued_at),
            CLOSE_UNAUTHORIZED,
            event,
        )

    return close


async def revocation_ctx(app: web.Application) -> AsyncIterator[None]:
    """Load the revocations, then follow them for the app's lifetime (after the room exists)."""
    store = app[REVOCATIONS] = RevocationStore(app[REDIS], app[SETTINGS].redis_prefix, app[REVOKED])
    await store.load()
    task = supervise(store.follow(_close_sockets(app)), "revocations")
    try:
        yield
    finally:
        await cancel_all([task])


@routes.post("/api/admin/revocations")
async def revoke(request: web.Request) -> web.Response:
    """Revoke (admin) ``{"jti"}``, ``{"token"}`` (its jti), or all tokens of ``{"user_id"}``."""
    require(request, Role.ADMIN)
    body = await json_body(request)
    given = [k for k in ("jti", "token", "user_id") if k in body]
    if len(given) != 1:
        raise BadRequest("give exactly one of jti, token, user_id")
    store = request.app[REVOCATIONS]
    if given[0] == "user_id":
        user_id = field(body, "user_id", str)
        if not USER_ID_RE.match(user_id):
            raise BadRequest("user_id must be 1..64 of [A-Za-z0-9_.@:-]")
        rev = await store.revoke_user(user_id)
    elif given[0] == "jti":
        jti = field(body, "jti", str)
        if not 1 <= len(jti) <= 64:
            raise BadRequest("jti must be 1..64 characters")
        rev = await store.revoke_jti(jti)
    else:
        try:
            who, exp = request.app[SIGNER].verify_signature(field(body, "token", str))
        except AuthError as exc:
            raise BadRequest(f"token: {exc}") from exc
        if not who.jti:
            raise BadRequest("this token has no id: revoke its user instead")
        rev = await store.revoke_jti(who.jti, int(exp))
    return web.json_response({"revoked": asdict(rev)}, status=201)


def setup_revocation(app: web.Application) -> None:
    """Register the admin route and the follower (after the composition root's context)."""
    app.cleanup_ctx.append(revocation_ctx)
    app.add_routes(routes)
