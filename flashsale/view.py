"""A sale as the API and the live room show it: its record plus live window, state and stock."""

from __future__ import annotations

import time
from dataclasses import dataclass

from inventory.ledger import SaleRecord

#: An end time far in the future: a sale with no start time waits for a manual open.
NOT_SCHEDULED_END_MS = 2**50


def now_ms() -> int:
    """Wall-clock milliseconds of this process."""
    return int(time.time() * 1000)


def public_state(state: str, starts_at_ms: int, ends_at_ms: int, now: int) -> str:
    """scheduled/countdown/open/ended at ``now``: the same rule as flashsale/lua/phase.lua."""
    if state == "closed" or now >= ends_at_ms:
        return "ended"
    if starts_at_ms and now >= starts_at_ms:
        return "open"
    return "countdown" if starts_at_ms else "scheduled"


@dataclass(frozen=True, slots=True)
class SaleView(SaleRecord):
    """A sale with its live state, window and remaining stock (from Redis while it runs)."""

    remaining: int
    #: Redis's clock when the live state was read (0: use this process's clock).
    clock_ms: int = 0

    def to_json(self, at_ms: int | None = None) -> dict[str, object]:
        """The API shape; ``state`` is as a buyer sees it at ``at_ms`` (default: the read)."""
        now = at_ms or self.clock_ms or now_ms()
        return {
            "id": self.id,
            "product_id": self.product_id,
            "stream_id": self.stream_id,
            "price_cents": self.price_cents,
            "quantity": self.quantity,
            "per_user_limit": self.per_user_limit,
            "starts_at_ms": self.starts_at_ms or None,
            "ends_at_ms": None if self.ends_at_ms >= NOT_SCHEDULED_END_MS else self.ends_at_ms,
            "hold_s": self.hold_s,
            "state": public_state(self.state, self.starts_at_ms, self.ends_at_ms, now),
            "remaining": self.remaining,
            "sold_out": self.remaining <= 0,
            "server_time_ms": now,
            "rehearsal": self.rehearsal,
        }
