"""Redis failures as the domain's ``RedisUnavailable``, for the social-selling services."""

from __future__ import annotations

from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from flashsale import errors


async def guarded(call: Any) -> Any:
    """Await one Redis call; an unreachable or busy Redis becomes ``RedisUnavailable``."""
    try:
        return await call
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise errors.RedisUnavailable("the sale store is unreachable; try again") from exc
    except RedisError as exc:
        if "BUSY" in str(exc) or "LOADING" in str(exc):
            raise errors.RedisUnavailable("the sale store is busy; try again") from exc
        raise


def text(v: Any) -> str:
    """A Redis reply item as text."""
    return v.decode() if isinstance(v, bytes) else str(v)
