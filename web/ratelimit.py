"""Per-client-IP rate limits shared by every worker: one GCRA check, one Lua call, in Redis.

Limits are per minute with a burst of the whole minute's budget, so a crowd behind one NAT that
taps Buy in the same second is not refused; what is refused is a sustained flood. The client's
address is the peer, or the X-Forwarded-For entry a trusted proxy vouches for (``client_ip``).
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Iterable
from functools import lru_cache

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chat.errors import RateLimited
from inventory.luascript import load_script
from web.errors import ConfigError
from web.keys import CLIENTS, RATE_LIMITER
from web.settings import Settings

log = logging.getLogger("livesell.ratelimit")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
#: X-Forwarded-For entries looked at, right to left (a longer chain is someone's invention).
MAX_HOPS = 16
#: The limits, by name: guest sign-in, buying (HTTP and socket share it), socket connects.
GUEST, BUY, CONNECT = "guest", "buy", "connect"


def networks(raw: str, variable: str) -> tuple[Network, ...]:
    """Parse comma-separated addresses or CIDR blocks (a ConfigError names a bad one)."""
    out = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{variable}: {part!r} is not an address or CIDR block") from exc
    return tuple(out)


def _address(raw: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(raw.strip().strip("[]"))
    except ValueError:
        return None


def _within(addr: ipaddress.IPv4Address | ipaddress.IPv6Address, nets: Iterable[Network]) -> bool:
    return any(addr.version == n.version and addr in n for n in nets)


class ClientAddresses:
    """Who the client is: the peer address, or what a trusted proxy says in X-Forwarded-For."""

    def __init__(self, trusted_proxies: tuple[Network, ...]) -> None:
        self._trusted = trusted_proxies
        self.is_trusted = lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, raw: str) -> bool:
        addr = _address(raw)
        return addr is not None and _within(addr, self._trusted)

    def of(self, request: web.Request) -> str:
        """The client's address: X-Forwarded-For is read right to left, past trusted proxies only.

        Each proxy appends the address it saw; the rightmost entry not added by one of ours is
        the client (anything left of it the client may have written itself).
        """
        peer = request.remote or "unknown"
        forwarded = request.headers.getall("X-Forwarded-For", ())
        if not forwarded or not self._trusted or not self.is_trusted(peer):
            return peer
        hops = [h.strip() for value in forwarded for h in value.split(",")][-MAX_HOPS:]
        client = peer
        for hop in reversed(hops):
            addr = _address(hop)
            if addr is None:
                break  # garbage: the last address we could vouch for stands
            client = str(addr)
            if not _within(addr, self._trusted):
                break
        return client


class RateLimiter:
    """Named per-minute limits per client address, counted in Redis by one Lua call each."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        per_min: dict[str, int],
        exempt: tuple[Network, ...] = (),
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._per_min = per_min
        self._exempt = exempt
        self._script = load_script(redis, "web", "ratelimit")
        self.is_exempt = lru_cache(maxsize=4096)(self._is_exempt)
        self._last_warning = 0.0

    def _is_exempt(self, client: str) -> bool:
        addr = _address(client)
        return addr is not None and _within(addr, self._exempt)

    def key(self, client: str, limit: str) -> str:
        """The Redis key of ``client``'s ``limit``; one hash tag per client (Cluster-ready)."""
        return f"{self._prefix}:{{rl:{client}}}:{limit}"

    async def wait_ms(self, client: str, limit: str) -> int:
        """0 when ``client`` may do ``limit``'s action now (and it is counted), else ms to wait."""
        per_min = self._per_min.get(limit, 0)
        if per_min <= 0 or self.is_exempt(client):
            return 0
        interval_us = 60_000_000 // per_min
        try:
            key = self.key(client, limit)
            wait_us = await self._script(keys=[key], args=[interval_us, per_min])
        except RedisError:
            # Fail open: a limiter that cannot count must not take the show down with it.
            now = time.monotonic()
            if now - self._last_warning > 10:
                self._last_warning = now
                log.warning("rate limiter unavailable; %s not limited", limit, exc_info=True)
            return 0
        return 0 if int(wait_us) <= 0 else max(1, -(-int(wait_us) // 1000))


def rate_limiter(redis: Redis, settings: Settings) -> RateLimiter:
    """The app's limiter from the settings."""
    limits = {
        GUEST: settings.guest_logins_per_min,
        BUY: settings.buys_per_min,
        CONNECT: settings.socket_connects_per_min,
    }
    exempt = networks(settings.rate_limit_exempt, Settings.variable("rate_limit_exempt"))
    return RateLimiter(redis, settings.redis_prefix, limits, exempt)


def client_addresses(settings: Settings) -> ClientAddresses:
    """The app's client-address reader from the settings."""
    return ClientAddresses(networks(settings.trusted_proxies, Settings.variable("trusted_proxies")))


async def throttle(request: web.Request, limit: str) -> None:
    """Count one ``limit`` action of the request's client; RateLimited (429) when over."""
    wait = await request.app[RATE_LIMITER].wait_ms(request.app[CLIENTS].of(request), limit)
    if wait:
        raise RateLimited(wait, f"too many requests from your address; retry in {wait} ms")
