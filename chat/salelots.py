"""Bids and draw entries over the room socket: the same services as HTTP, for this room only.

Entering a draw over the socket is what proves the viewer is present in the room.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from chat.errors import Unauthorized
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import Member
from chat.protocol import Command
from flashsale.errors import SaleNotFound

if TYPE_CHECKING:
    from flashsale.lot import AuctionEvent, BidResult


class LotBids(Protocol):
    """What the room asks of the auctions (``flashsale.auction.Auctions``)."""

    async def stream_of(self, lot_id: int) -> str | None:
        """The lot's stream (it never changes)."""
        ...

    async def bid(
        self, lot_id: int, user_id: str, idempotency_key: str, amount_cents: int,
        public_name: str | None = None,
    ) -> BidResult:  # fmt: skip
        """Bid, exactly as the HTTP bid does."""
        ...


class DrawEntries(Protocol):
    """What the room asks of the draws (``flashsale.draw.Draws``)."""

    async def enter(self, sale_id: int, user_id: str) -> tuple[str, bool]:
        """Enter once; the entry id, and False for a repeated entry."""
        ...


class StreamOf(Protocol):
    """Finds a sale's stream (``flashsale.service.SaleService.stream_of``)."""

    async def __call__(self, sale_id: int) -> str | None:
        """The stream a sale sells in."""
        ...


class RoomLots:
    """Runs ``bid`` and ``enter_draw`` for a member; replies go to that member with its ref."""

    def __init__(self, auctions: LotBids, draws: DrawEntries, stream_of: StreamOf) -> None:
        self._auctions = auctions
        self._draws = draws
        self._stream_of = stream_of

    async def run(self, member: Member, cmd: Command) -> None:
        """Execute one ``bid`` or ``enter_draw``."""
        who = member.identity
        if who is None:
            raise Unauthorized("sign in to bid or enter: send an auth event with a bearer token")
        if cmd.type == "bid":
            # A room takes bids on its own stream's lots only (the stream is read once per lot).
            if await self._auctions.stream_of(cmd["lot_id"]) != member.stream_id:
                raise SaleNotFound(f"lot {cmd['lot_id']} is not in this room")
            name = who.name if cmd["show_name"] else None
            result = await self._auctions.bid(
                cmd["lot_id"], who.user_id, cmd["key"], cmd["amount_cents"], public_name=name
            )
            member.send({"type": "bid_result", "ref": cmd.ref, **result.to_json()})
            return
        if await self._stream_of(cmd["sale_id"]) != member.stream_id:
            raise SaleNotFound(f"sale {cmd['sale_id']} is not in this room")
        eid, entered = await self._draws.enter(cmd["sale_id"], who.user_id)
        member.send({"type": "draw_entered", "ref": cmd.ref, "sale_id": cmd["sale_id"],
                     "entry_id": eid, "duplicate": not entered})  # fmt: skip


class LotAnnouncer:
    """The auctions' observer: each lot event becomes a sequenced ``auction`` room event."""

    def __init__(self, room_log: RoomLog, keys_of: Callable[[str], RoomKeys]) -> None:
        self._log = room_log
        self._keys_of = keys_of

    async def auction_event(self, event: AuctionEvent) -> None:
        """Publish the lot's state (never a bidder's id) in its stream's room."""
        if event.stream_id is not None:
            await self._log.publish(
                self._keys_of(event.stream_id),
                {"type": "auction", "event": event.kind, "lot": event.lot},
            )
