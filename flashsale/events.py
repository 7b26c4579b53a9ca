"""Sale lifecycle events and the observer interface other layers implement to hear them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

SaleEventKind = Literal[
    "scheduled",
    "opened",
    "closed",
    "reserved",
    "paid",
    "cancelled",
    "expired",
    "sold_out",
    # Group buys and coupon drops (flashsale/groupbuy.py, flashsale/coupons.py).
    "group_offered",
    "group_opened",
    "group_joined",
    "group_filled",
    "group_expired",
    "coupon_dropped",
    "coupon_claimed",
]


@dataclass(frozen=True, slots=True)
class SaleEvent:
    """Something happened to a sale. ``remaining`` is the stock after the event."""

    kind: SaleEventKind
    sale_id: int
    stream_id: str | None
    remaining: int
    at_ms: int
    order_id: str | None = None
    user_id: str | None = None
    qty: int = 0
    #: The buyer's display name, only when the buyer opted in to be shown; else None.
    public_name: str | None = None
    #: The group or coupon drop a group_*/coupon_* event is about.
    ref_id: str | None = None
    #: The group's size, or the number of coupons dropped.
    size: int = 0
    #: The group's members so far, or the coupons left.
    count: int = 0
    #: When the group expires, or the coupons do (Redis's clock).
    deadline_ms: int = 0


class SaleObserver(Protocol):
    """Hears sale events. Must not block: implementations queue and return at once."""

    def sale_event(self, event: SaleEvent) -> None:
        """Take one event; called on the event loop right after the change is committed."""
        ...


class NullObserver:
    """An observer that ignores everything (the default when nothing listens)."""

    def sale_event(self, event: SaleEvent) -> None:
        """Ignore ``event``."""
