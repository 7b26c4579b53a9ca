"""Lua scripts load from their packages' lua/ folders and survive a SCRIPT FLUSH (real Redis)."""

from __future__ import annotations

from importlib import resources

import pytest
from redis.asyncio import Redis

from inventory.luascript import load_script, script_source


@pytest.mark.parametrize("package", ["chat", "flashsale", "stream"])
async def test_every_script_compiles(redis_url: str, package: str) -> None:
    redis = Redis.from_url(redis_url)
    names = [f.name[:-4] for f in resources.files(package).joinpath("lua").iterdir()]
    assert names
    for name in names:
        # The room's scripts start with its shared publish function.
        shared = package == "chat" and name not in ("presence", "publish_fn")
        parts = ("publish_fn", name) if shared else (name,)
        assert len(await redis.script_load(script_source(package, *parts))) == 40
    await redis.aclose()


async def test_a_flushed_script_is_reloaded_on_noscript(redis_url: str) -> None:
    redis = Redis.from_url(redis_url)
    publish = load_script(redis, "chat", "publish_fn", "publish")
    keys = ["t:{lua}:seq", "t:{lua}:events", "t:{lua}:history"]
    await redis.delete(*keys)
    first = await publish(keys=keys, args=["t:{lua}:ch", 10, b"\x81\xa4type\xa1x"])
    await redis.script_flush()  # what a Redis restart does to the script cache
    assert await redis.script_exists(publish.sha) == [False]
    second = await publish(keys=keys, args=["t:{lua}:ch", 10, b"\x81\xa4type\xa1x"])
    assert (first, second) == (1, 2)
    await redis.delete(*keys)
    await redis.aclose()
