"""A lot of a live auction: its Redis keys, its public state, its bid replies and its errors.

The rules that decide bids and closes live in ``flashsale/auction.py`` and its Lua scripts;
this module only names and shapes what they produce. See docs/auctions.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from flashsale import errors
from inventory.errors import Conflict, DomainError, Gone, NotFound

AuctionEventKind = Literal["lot_opened", "bid_accepted", "lot_extended", "lot_closed"]
MAX_CENTS = 10**12


class LotNotFound(NotFound):
    """No such lot."""

    code = "lot_not_found"


class SaleIsALot(Conflict):
    """A flash-sale action on a lot's sale: a lot sells only by bidding."""

    code = "sale_is_a_lot"


class LotNotOpen(Conflict):
    """The lot has not been opened for bidding yet."""

    code = "lot_not_open"


class LotClosed(Gone):
    """The lot's time ran out (by Redis's clock): bids are refused."""

    code = "lot_closed"


class BidTooLow(Conflict):
    """The bid is below the start (first bid) or the current bid plus the increment."""

    code = "bid_too_low"


class OwnLot(Conflict):
    """The lot's seller may not bid on it (shill bidding)."""

    code = "own_lot"


class NoRunnerUp(Conflict):
    """The lot cannot be offered to a runner-up (the winner still holds it, or nobody is left)."""

    code = "no_runner_up"


BID_ERRORS: dict[str, type[DomainError]] = {
    "lot_not_found": LotNotFound,
    "lot_not_open": LotNotOpen,
    "lot_closed": LotClosed,
    "bid_too_low": BidTooLow,
    "own_lot": OwnLot,
    "too_many_attempts": errors.TooManyAttempts,
}


@dataclass(frozen=True, slots=True)
class LotKeys:
    """The auction keys of one lot (same hash tag as its sale's keys)."""

    lot: str
    bids: str
    idem: str
    offered: str

    @classmethod
    def of(cls, prefix: str, lot_id: int) -> LotKeys:
        """Keys of lot ``lot_id`` (its sale's id) under ``prefix``."""
        base = f"{prefix}:{{s{lot_id}}}"
        return cls(f"{base}:lot", f"{base}:bids", f"{base}:bidem", f"{base}:offered")


def stream_lots_key(prefix: str, stream_id: str) -> str:
    """The sorted set of a stream's lot ids (scored by creation), for the room's lot card."""
    return f"{prefix}:auction:stream:{stream_id}"


def active_lots_key(prefix: str) -> str:
    """The set of lot ids the auction sweeper watches until they close."""
    return f"{prefix}:auction:active"


@dataclass(frozen=True, slots=True)
class Lot:
    """A lot and its live state; ``leader_name`` is set only when the leader opted in."""

    id: int
    stream_id: str | None
    product_id: int
    state: str
    start_cents: int
    increment_cents: int
    reserve_cents: int
    end_ms: int
    bid_cents: int
    bids: int
    leader_name: str | None
    winner: str | None
    price_cents: int
    order_id: str | None
    clock_ms: int

    @property
    def next_bid_cents(self) -> int:
        """The least bid the lot accepts now."""
        return self.bid_cents + self.increment_cents if self.bids else self.start_cents

    def to_json(self, viewer: str | None = None) -> dict[str, object]:
        """The public shape; the winner's id only to the winner (or the host: ``viewer='*'``)."""
        shown = viewer is not None and viewer in ("*", self.winner)
        return {
            "id": self.id,
            "stream_id": self.stream_id,
            "product_id": self.product_id,
            "state": self.state,
            "start_cents": self.start_cents,
            "increment_cents": self.increment_cents,
            "reserve_met": self.bid_cents >= self.reserve_cents and self.bids > 0,
            "ends_at_ms": self.end_ms,
            "bid_cents": self.bid_cents,
            "bids": self.bids,
            "next_bid_cents": self.next_bid_cents,
            "leader_name": self.leader_name,
            "winner": self.winner if shown else None,
            "price_cents": self.price_cents,
            "order_id": self.order_id if shown else None,
            "server_time_ms": self.clock_ms,
        }


@dataclass(frozen=True, slots=True)
class BidResult:
    """The reply to one accepted bid."""

    lot_id: int
    amount_cents: int
    ends_at_ms: int
    bids: int
    duplicate: bool

    def to_json(self) -> dict[str, object]:
        """The API shape."""
        return {
            "lot_id": self.lot_id,
            "amount_cents": self.amount_cents,
            "ends_at_ms": self.ends_at_ms,
            "bids": self.bids,
            "duplicate": self.duplicate,
        }


@dataclass(frozen=True, slots=True)
class AuctionEvent:
    """Something happened to a lot; the room shows it (never a bidder's id)."""

    kind: AuctionEventKind
    lot: dict[str, object]
    stream_id: str | None
