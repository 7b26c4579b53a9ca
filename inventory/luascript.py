"""The one way to load a Lua script: ``<package>/lua/<name>.lua``, registered once per client.

A registered script is called by EVALSHA and reloaded by redis-py when Redis answers NOSCRIPT
(after a restart or SCRIPT FLUSH), so callers never send a script's text per call.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript


def script_source(package: str, *names: str) -> str:
    """The text of ``<package>/lua/<name>.lua`` for each name, in order (shared parts first)."""
    lua = resources.files(package).joinpath("lua")
    return "\n".join(lua.joinpath(f"{name}.lua").read_text() for name in names)


def load_script(redis: Redis, package: str, *names: str) -> AsyncScript:
    """Register the script made of ``names`` (see ``script_source``) on ``redis``."""
    return redis.register_script(script_source(package, *names))
