"""The Lua scripts, registered once per client (EVALSHA, reloaded after NOSCRIPT)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from redis.asyncio import Redis


def script_source(name: str) -> str:
    """The text of ``flashsale/lua/<name>.lua``."""
    return resources.files("flashsale").joinpath(f"lua/{name}.lua").read_text()


class Scripts:
    """Registered script objects for one Redis client."""

    def __init__(self, redis: Redis) -> None:
        self.buy: Any = redis.register_script(script_source("buy"))
        self.settle: Any = redis.register_script(script_source("settle"))
        self.expire: Any = redis.register_script(script_source("expire"))
        self.control: Any = redis.register_script(script_source("control"))
