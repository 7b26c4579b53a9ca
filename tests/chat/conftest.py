"""Hub fixtures: real Redis (the session's private server), fake transports and catalogue."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from chat.errors import Unauthorized
from chat.factory import build_room
from chat.hub import Hub
from chat.member import Identity, RoomLimits
from chat.salefeed import SaleFeed
from tests.chat.helpers import FakeCatalog, HashSales
from tests.flashsale.conftest import core  # noqa: F401  (the sale service on real Redis and SQL)

FAST = RoomLimits(
    batch_window_s=0.02,
    stock_interval_s=0.05,
    reactions_interval_s=0.1,
    viewers_interval_s=0.2,
    lag_timeout_s=1.0,
)


def fake_auth(token: str) -> Identity:
    """Tokens in hub unit tests are ``user:role[:name]``."""
    parts = token.split(":")
    if len(parts) < 2 or parts[1] not in ("admin", "host", "viewer"):
        raise Unauthorized("invalid token")
    return Identity(parts[0], parts[2] if len(parts) > 2 else parts[0], parts[1])


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the session's private Redis."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own."""
    return f"c{uuid.uuid4().hex[:8]}"


@pytest.fixture
def catalog() -> FakeCatalog:
    """A catalogue with stream ``show`` hosted by ``hostess``."""
    c = FakeCatalog()
    c.add_stream("show")
    return c


@pytest.fixture
async def make_hub(
    redis: Redis, prefix: str, catalog: FakeCatalog
) -> AsyncIterator[Callable[..., Hub]]:
    """``await make_hub(limits=...)``: started hubs sharing Redis, prefix and catalogue."""
    hubs: list[Hub] = []

    async def make(limits: RoomLimits = FAST) -> Hub:
        hub = build_room(
            redis,
            catalog,  # type: ignore[arg-type]
            prefix,
            HashSales(redis, prefix),  # type: ignore[arg-type]
            SaleFeed(),
            authenticate=fake_auth,
            limits=limits,
        )
        await hub.start()
        hubs.append(hub)
        return hub

    yield make  # type: ignore[misc]
    for hub in hubs:
        await hub.close()
