"""The join snapshot: stream, pinned product, active sale, viewers, reactions, last 50 messages."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import Identity, Member
from chat.moderation import ANONYMOUS, HOST, MODERATOR, VIEWER, Moderation, is_host
from chat.protocol import Frame, batch_payload
from chat.room import RoomState
from chat.salefeed import RoomSales
from inventory.catalog import StreamView

if TYPE_CHECKING:
    from flashsale.service import SaleView

#: How long a room's active sale (a SQL read) is reused between joins; stock events keep its
#: remaining count current in the meantime, and sale events drop it at once.
SALE_CACHE_S = 1.0


class Snapshots:
    """Builds ``snapshot`` events; caches the one SQL-backed part (the active sale) briefly."""

    def __init__(
        self, state: RoomState, room_log: RoomLog, moderation: Moderation, sales: RoomSales
    ) -> None:
        self._state = state
        self._log = room_log
        self._moderation = moderation
        self._room_sales = sales
        self._sales: dict[str, tuple[float, SaleView | None, int | None]] = {}

    def forget_sale(self, stream_id: str) -> None:
        """A sale of the room changed: read it again on the next join."""
        self._sales.pop(stream_id, None)

    def stock(self, stream_id: str, sale_id: int, remaining: int) -> None:
        """Note the latest remaining stock of the room's cached sale."""
        cached = self._sales.get(stream_id)
        if cached is not None and cached[1] is not None and cached[1].id == sale_id:
            self._sales[stream_id] = (cached[0], cached[1], remaining)

    async def _sale(self, stream_id: str) -> dict[str, Any] | None:
        now = time.monotonic()
        cached = self._sales.get(stream_id)
        if cached is None or now - cached[0] > SALE_CACHE_S:
            cached = (now, await self._room_sales.active_sale_for_stream(stream_id), None)
            self._sales[stream_id] = cached
        _, view, remaining = cached
        if view is None:
            return None
        out = view.to_json()
        if remaining is not None:
            out["remaining"] = remaining
        return out

    async def build(
        self, keys: RoomKeys, stream: StreamView, who: Identity | None
    ) -> dict[str, Any]:
        """The ``snapshot`` event for ``who`` (None: an anonymous viewer)."""
        snap = await self._state.snapshot(keys, None if who is None else who.user_id)
        role = ANONYMOUS
        if who is not None:
            role = HOST if is_host(who, stream) else MODERATOR if snap.moderator else VIEWER
        you: dict[str, Any] = {"role": role}
        if who is not None:
            you.update(user_id=who.user_id, name=who.name, muted_until=snap.muted_until)
        return {
            "type": "snapshot",
            "seq": snap.seq,
            "stream": {
                "id": stream.id,
                "title": stream.title,
                "host_id": stream.host_id,
                "status": snap.stream_status or stream.status,
            },
            "you": you,
            "pinned": snap.pinned,
            "announcement": snap.announcement,
            "sale": await self._sale(stream.id),
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
                current, events = replay
                member.conn.send_frame(
                    Frame.of({"type": "resumed", "since": since, "seq": current})
                )
                for i in range(0, len(events), 100):
                    member.conn.send_frame(Frame(batch_payload(events[i : i + 100])))
                member.after_seq = current
                return
        event = await self.build(keys, stream, member.identity)
        event["resync"] = since is not None or resync
        member.conn.send_frame(Frame.of(event))
        member.after_seq = event["seq"]
