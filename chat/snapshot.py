"""The join snapshot: stream, pinned product, sales, viewers, reactions, last 50 messages."""

from __future__ import annotations

import asyncio
import time
from functools import partial
from typing import TYPE_CHECKING, Any

from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import Identity, Member
from chat.moderation import ANONYMOUS, HOST, MODERATOR, VIEWER, Moderation, is_host
from chat.protocol import Frame, batch_payload
from chat.room import RoomSnapshot, RoomState
from chat.salefeed import RoomSales
from chat.sharedread import SharedRead
from chat.social import RoomSocial
from inventory.catalog import StreamView

if TYPE_CHECKING:
    from inventory.ledger import SaleRecord

#: How long the list of a room's sales (a SQL read) is reused between joins, at most: a new
#: sale's first event moves the room's sales version, which drops it at once in every process.
#: Their state and stock are read from Redis at every join.
SALE_CACHE_S = 1.0
#: Which sale matters most now: open with stock, open and sold out, counting down, scheduled.
_RANK = {"open": 0, "countdown": 2, "scheduled": 3}


def sale_rank(sale: dict[str, Any]) -> tuple[int, int, int]:
    """Sort key putting the sale a viewer should see first at the front."""
    rank = _RANK.get(str(sale["state"]), 4) + (sale["state"] == "open" and sale["sold_out"])
    return rank, int(sale["starts_at_ms"] or 0), int(sale["id"])


class Snapshots:
    """Builds ``snapshot`` events; caches the one SQL-backed part (the room's sales) briefly."""

    def __init__(
        self,
        state: RoomState,
        room_log: RoomLog,
        moderation: Moderation,
        sales: RoomSales,
        social: RoomSocial,
    ) -> None:
        self._state = state
        self._social = social
        self._log = room_log
        self._moderation = moderation
        self._room_sales = sales
        #: Per room: when read, the room's sales version then, the records.
        self._sales: dict[str, tuple[float, int, list[SaleRecord]]] = {}
        #: The room's shared state (seq, history, pin...), one read at a time shared by joiners.
        self._rooms: SharedRead[str, RoomSnapshot] = SharedRead()
        #: The room's sales and social state, one read at a time shared by the joiners.
        self._offer: SharedRead[str, tuple[list[dict[str, Any]], dict[str, Any]]] = SharedRead()

    def forget_sale(self, stream_id: str) -> None:
        """A sale of the room changed: read it again on the next join."""
        self._sales.pop(stream_id, None)

    async def _live_sales(self, stream_id: str, version: int) -> list[dict[str, Any]]:
        """Every sale of the room that has not ended, the one that matters most first.

        ``version``: the room's sales version read with its seq; records read at an older
        one may lack a sale whose first event that seq already covers.
        """
        now = time.monotonic()
        cached = self._sales.get(stream_id)
        if cached is None or cached[1] != version or now - cached[0] > SALE_CACHE_S:
            records = await self._room_sales.sales_for_stream(stream_id)
            cached = self._sales[stream_id] = (now, version, records)
        # State and stock come from Redis (with its clock) now, never from earlier events: a
        # sale that opened, sold out or ended while nobody watched is shown as it is.
        live = [v.to_json() for v in await self._room_sales.live_views(cached[2])]
        return sorted((s for s in live if s["state"] != "ended"), key=sale_rank)

    async def _sales_and_social(
        self, stream_id: str, version: int
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        sales = await self._live_sales(stream_id, version)
        return sales, await self._social.snapshot([int(s["id"]) for s in sales], stream_id)

    async def build(
        self, keys: RoomKeys, stream: StreamView, who: Identity | None
    ) -> dict[str, Any]:
        """The ``snapshot`` event for ``who`` (None: an anonymous viewer)."""
        # The room as one read begun after this call (shared by the joiners waiting for one),
        # and the joiner's own standing beside it.
        room = self._rooms.get(stream.id, 0, lambda _: self._state.snapshot(keys))
        if who is None:
            snap, standing = await room, None
        else:
            snap, standing = await asyncio.gather(room, self._state.standing(keys, who.user_id))
        role = ANONYMOUS
        if who is not None and standing is not None:
            role = HOST if is_host(who, stream) else MODERATOR if standing.moderator else VIEWER
        you: dict[str, Any] = {"role": role}
        # Read after the room: the sales are at least as new as every event up to ``seq``. A
        # read begun after this one's room read is shared by every joiner waiting for one.
        sales, social = await self._offer.get(
            stream.id, snap.sales_version, partial(self._sales_and_social, stream.id)
        )
        if who is not None and standing is not None:
            you.update(user_id=who.user_id, name=who.name, muted_until=standing.muted_until)
        return {
            "type": "snapshot",
            "seq": snap.seq,
            "server_time_ms": snap.server_time_ms,
            "stream": {
                "id": stream.id,
                "title": stream.title,
                "host_id": stream.host_id,
                "status": snap.stream_status or stream.status,
                "rehearsal": stream.rehearsal,
            },
            "you": you,
            "pinned": snap.pinned,
            "announcement": snap.announcement,
            "sale": sales[0] if sales else None,
            "sales": sales,
            "group_offers": social["group_offers"],
            "groups": social["groups"],
            "coupon": social["coupon"],
            "viewers": snap.viewers,
            "reactions": snap.reactions,
            "slow_mode_s": snap.slow_mode_s,
            "messages": snap.messages,
        }

    async def catch_up(
        self,
        keys: RoomKeys,
        stream: StreamView,
        member: Member,
        since: int | None,
        resync: bool = False,
    ) -> None:
        """Send ``resumed`` and the events after ``since``, or else a snapshot; sets after_seq."""
        if since is not None:
            replay = await self._log.replay(keys, since)
            if replay is not None:
                current, events, clock_ms = replay
                resumed = {"type": "resumed", "since": since, "seq": current}
                member.conn.send_frame(Frame.of({**resumed, "server_time_ms": clock_ms}))
                for i in range(0, len(events), 100):
                    member.conn.send_frame(Frame(batch_payload(events[i : i + 100])))
                member.after_seq = current
                return
        event = await self.build(keys, stream, member.identity)
        event["resync"] = since is not None or resync
        member.conn.send_frame(Frame.of(event))
        member.after_seq = event["seq"]
