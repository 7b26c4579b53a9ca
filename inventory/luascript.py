"""The one way to load a Lua script: ``<package>/lua/<name>.lua``, registered once per client.

A registered script is called by EVALSHA and reloaded by redis-py when Redis answers NOSCRIPT
(after a restart, SCRIPT FLUSH, or a Cluster failover: the new primary never loaded it), so
callers never send a script's text per call. On a Cluster redis-py sends EVALSHA to the owner of
the first key's slot; every script's keys share one hash tag, so they all live there.
"""

from __future__ import annotations

from importlib import resources

from redis.asyncio import Redis
from redis.commands.core import AsyncScript

from inventory.redisclient import is_cluster, remember_script


def script_source(package: str, *names: str, cluster: bool = False) -> str:
    """The text of ``<package>/lua/<name>.lua`` for each name, in order (shared parts first).

    Scripts publish with ``redis.call(PUBLISH_CMD, ...)``: plain PUBLISH on one Redis, sharded
    SPUBLISH on a Cluster, so that a room's messages stay on the shard of its hash tag.
    """
    lua = resources.files(package).joinpath("lua")
    prelude = f"local PUBLISH_CMD = '{'SPUBLISH' if cluster else 'PUBLISH'}'"
    return "\n".join([prelude, *(lua.joinpath(f"{n}.lua").read_text() for n in names)])


def load_script(redis: Redis, package: str, *names: str) -> AsyncScript:
    """Register the script made of ``names`` (see ``script_source``) on ``redis``."""
    source = script_source(package, *names, cluster=is_cluster(redis))
    script = redis.register_script(source)
    remember_script(script.sha, source)
    return script
