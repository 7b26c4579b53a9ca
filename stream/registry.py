"""Which worker holds each live stream, kept in Redis so any worker can redirect a viewer (307).

Each broadcast's worker claims ``<prefix>:{relay:<stream>}`` = its own URL (``SET NX`` with a
TTL, refreshed while the broadcast lives). A WHEP request reaching another worker reads the key
and is redirected there; a second publisher on any worker finds the claim and gets 409. A crashed
worker's claims expire on their own. The Redis client is passed in (redis.asyncio-compatible), so
this package does not depend on it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from importlib import resources
from typing import Any

from stream.tasks import cancel, supervise

log = logging.getLogger("livesell.stream")


def claim_key(prefix: str, stream_id: str) -> str:
    """The claim key of a stream: its own hash tag, so a Cluster spreads streams over slots."""
    return f"{prefix}:{{relay:{stream_id}}}"


def _script(redis: Any, name: str) -> Any:
    # The client's registered script runs by EVALSHA and reloads itself after NOSCRIPT.
    return redis.register_script(resources.files("stream").joinpath(f"lua/{name}.lua").read_text())


class StreamRegistry:
    """Claims of live streams by worker URL, shared by every worker through Redis."""

    def __init__(
        self, redis: Any, prefix: str, self_url: str, ttl_s: int = 15, refresh_s: float = 5.0
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self.self_url = self_url.rstrip("/")
        self._ttl = ttl_s
        self._refresh_s = refresh_s
        self._claimed: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._refresh = _script(redis, "claim_refresh")
        self._release = _script(redis, "claim_release")

    def key(self, stream_id: str) -> str:
        """The claim key of ``stream_id``."""
        return claim_key(self._prefix, stream_id)

    async def claim(self, stream_id: str) -> str | None:
        """Claim ``stream_id`` for this worker; return the holder's URL if another has it."""
        key = self.key(stream_id)
        if await self._redis.set(key, self.self_url, nx=True, ex=self._ttl):
            self._claimed.add(stream_id)
            return None
        holder = _text(await self._redis.get(key))
        if holder is None or holder == self.self_url:
            # Expired meanwhile, or our own claim from a broadcast that just ended: take it.
            await self._redis.set(key, self.self_url, ex=self._ttl)
            self._claimed.add(stream_id)
            return None
        return holder

    async def holder(self, stream_id: str) -> str | None:
        """The URL of the other worker holding ``stream_id``, or None (nobody, or us)."""
        holder = _text(await self._redis.get(self.key(stream_id)))
        return holder if holder and holder != self.self_url else None

    async def release(self, stream_id: str) -> None:
        """Drop this worker's claim on ``stream_id`` (if it is still ours)."""
        self._claimed.discard(stream_id)
        await self._release(keys=[self.key(stream_id)], args=[self.self_url])

    def start(self, is_live: Callable[[str], bool]) -> None:
        """Keep live streams' claims fresh and release the others, every ``refresh_s``."""
        self._task = supervise(self._run(is_live), "stream-registry")

    async def _run(self, is_live: Callable[[str], bool]) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            for stream_id in list(self._claimed):
                try:
                    if is_live(stream_id):
                        key = self.key(stream_id)
                        await self._refresh(keys=[key], args=[self.self_url, self._ttl])
                    else:
                        await self.release(stream_id)
                except Exception:
                    # Redis being away must not kill the refresher; claims expire meanwhile.
                    log.warning("stream registry: could not refresh %s", stream_id, exc_info=True)

    async def close(self) -> None:
        """Stop refreshing and release every claim."""
        await cancel(self._task)
        for stream_id in list(self._claimed):
            try:
                await self.release(stream_id)
            except Exception:
                log.warning("stream registry: could not release %s", stream_id, exc_info=True)


def _text(value: bytes | str | None) -> str | None:
    if isinstance(value, bytes):
        return value.decode()
    return value
