"""Store rosters: each store's members as last read from SQL, so a buy asks no SQL at all.

A sale with a member price needs, for every buyer, "is this a member?". Asked per buyer, a rush
of non-members queued a SQL read each; batched, still a read per handful of buyers. A roster
holds the whole store in memory instead and is brought up to date at most every ``ttl_s`` with
the joins since the last read, so "not in the roster" means "not a member as of at most
``ttl_s`` ago": the same promise as before (a join served by another process counts within
``ttl_s``). Joins are re-read from ``SKEW_MS`` back, so a join committed late, or stamped by a
process whose clock is behind, is still found. A store larger than ``max_members`` has no
roster (``None``): the caller asks SQL per buyer as before.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Protocol

#: How far back each refresh re-reads joins (clock skew between processes, late commits).
SKEW_MS = 60_000
#: Rosters held at most (stores with a member-price sale selling now are few).
MAX_STORES = 1000


class JoinLog(Protocol):
    """The joins of a store, oldest first."""

    async def joined_since(self, host_id: str, since_ms: int, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` (user id, joined_at_ms) of joins at or after ``since_ms``."""
        ...


@dataclass(slots=True)
class Roster:
    """A store's members up to the newest join read (``through_ms``)."""

    members: set[str] = field(default_factory=set)
    through_ms: int = 0
    fresh_until: float = 0.0  # monotonic: until then the roster answers alone


class StoreRosters:
    """Rosters of the stores whose sales are selling, one refresh at a time per store."""

    def __init__(self, joins: JoinLog, ttl_s: float = 2.0, max_members: int = 100_000) -> None:
        self._joins = joins
        self._ttl_s = ttl_s
        self._max = max_members
        self._rosters: dict[str, Roster | None] = {}  # None: too large to hold
        self._refreshing: dict[str, asyncio.Future[Roster | None]] = {}

    async def get(self, host_id: str) -> Roster | None:
        """The store's roster, fresh within ``ttl_s``; None for a store too large to hold."""
        roster = self._rosters.get(host_id, Roster())
        if roster is None or roster.fresh_until > time.monotonic():
            return roster
        pending = self._refreshing.get(host_id)
        if pending is not None:
            # Every buyer arriving during a refresh waits for that one read.
            return await asyncio.shield(pending)
        fut: asyncio.Future[Roster | None] = asyncio.get_running_loop().create_future()
        self._refreshing[host_id] = fut
        try:
            got = await self._refresh(host_id, roster)
            fut.set_result(got)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: waiters re-raise it, nobody else need
            raise
        finally:
            del self._refreshing[host_id]
        return got

    async def _refresh(self, host_id: str, roster: Roster) -> Roster | None:
        started = time.monotonic()
        since = max(0, roster.through_ms - SKEW_MS) if roster.through_ms else 0
        rows = await self._joins.joined_since(host_id, since, self._max + 1)
        if len(rows) > self._max or len(roster.members) + len(rows) > self._max:
            self._rosters[host_id] = None
            return None
        if len(self._rosters) >= MAX_STORES and host_id not in self._rosters:
            self._rosters.clear()  # stores selling with member prices at once are few
        roster.members.update(user for user, _ in rows)
        roster.through_ms = max([roster.through_ms, *(at for _, at in rows)])
        roster.fresh_until = started + self._ttl_s
        self._rosters[host_id] = roster
        return roster

    def joined(self, host_id: str, user_id: str) -> None:
        """Note a join made in this process: it counts at once."""
        roster = self._rosters.get(host_id)
        if roster is not None:
            roster.members.add(user_id)
