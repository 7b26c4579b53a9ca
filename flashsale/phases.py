"""A sale's phase transitions, decided once by Redis's clock for every server process."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from redis.asyncio import Redis

from flashsale.keys import SaleKeys
from inventory.luascript import load_script

#: What a viewer is told: created, counting down, buying possible, no stock, stock back, over.
Phase = Literal["scheduled", "countdown", "opened", "sold_out", "restocked", "closed"]


@dataclass(frozen=True, slots=True)
class Transition:
    """One announced change of a sale, with its window and stock at that moment (Redis time)."""

    number: int
    phase: Phase
    #: The sale's stored state (scheduled/open/closed); with the window it gives the public one.
    state: str
    starts_at_ms: int
    ends_at_ms: int
    remaining: int
    at_ms: int

    @classmethod
    def parse(cls, raw: bytes) -> Transition:
        """Decode ``n|phase|state|start_ms|end_ms|remaining|at_ms`` as phase.lua writes it."""
        n, phase, state, start, end, remaining, at = raw.decode().split("|")
        return cls(int(n), phase, state, int(start), int(end), int(remaining), int(at))  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class PhaseReport:
    """Where a sale stands: its stream, its last transition, the ones the caller lacked."""

    sale_id: int
    stream_id: str | None
    number: int
    transitions: list[Transition]
    #: Milliseconds until the clock alone moves the sale on (a start or an end); None: never.
    next_change_ms: int | None


class SalePhases:
    """Runs phase.lua: any process may call it; each transition is recorded by one call only."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._redis = redis
        self._script = load_script(redis, "flashsale", "phase")

    async def check(self, sale_id: int, known: int = 0) -> PhaseReport | None:
        """Record the sale's transition if it has one; return those after ``known``."""
        k = SaleKeys.of(self._prefix, sale_id)
        return self._report(sale_id, await self._script(keys=[k.meta, k.phases], args=[known]))

    async def check_many(self, known: Sequence[tuple[int, int]]) -> list[PhaseReport | None]:
        """``check`` for each (sale id, known), in one round trip."""
        if not known:
            return []
        async with self._redis.pipeline(transaction=False) as p:
            for sale_id, n in known:
                k = SaleKeys.of(self._prefix, sale_id)
                await self._script(keys=[k.meta, k.phases], args=[n], client=p)
            replies = await p.execute()
        return [self._report(s, r) for (s, _), r in zip(known, replies, strict=True)]

    @staticmethod
    def _report(sale_id: int, reply: list[bytes]) -> PhaseReport | None:
        if not reply:
            return None  # never initialised, or retired and past its retention
        stream, number, next_ms = reply[0].decode(), int(reply[1]), int(reply[2])
        return PhaseReport(
            sale_id,
            stream or None,
            number,
            [Transition.parse(r) for r in reply[3:]],
            None if next_ms < 0 else next_ms,
        )
