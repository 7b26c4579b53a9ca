"""Sale lifecycle events and the observer interface other layers implement to hear them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

SaleEventKind = Literal[
    "scheduled", "opened", "closed", "reserved", "paid", "cancelled", "expired", "sold_out"
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


class SaleObserver(Protocol):
    """Hears sale events. Must not block: implementations queue and return at once."""

    def sale_event(self, event: SaleEvent) -> None:
        """Take one event; called on the event loop right after the change is committed."""
        ...


class NullObserver:
    """An observer that ignores everything (the default when nothing listens)."""

    def sale_event(self, event: SaleEvent) -> None:
        """Ignore ``event``."""
