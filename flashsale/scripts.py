"""The sale's Lua scripts (``flashsale/lua``), registered once per client."""

from __future__ import annotations

from redis.asyncio import Redis

from inventory.luascript import load_script


class Scripts:
    """Registered script objects for one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.buy = load_script(redis, "flashsale", "buy")
        self.settle = load_script(redis, "flashsale", "settle")
        self.expire = load_script(redis, "flashsale", "expire")
        self.control = load_script(redis, "flashsale", "control")
