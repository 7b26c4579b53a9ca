"""The room-event log in SQL: what a show's replay shows (pins, sales, chat), in room order."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql, sqlite

from inventory.database import Database
from inventory.models import RoomEvent

#: Most events one timeline read returns; a client pages on with ``after_seq``.
PAGE = 5000


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """One room event as archived: the room's ``seq``, its type, when, and the event itself."""

    seq: int
    type: str
    at_ms: int
    event: dict[str, Any]


class RoomEventLog:
    """Appends room events (idempotently, by ``seq``) and reads a show's timeline back."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(self, stream_id: str, events: list[LoggedEvent]) -> None:
        """Store ``events``; one already stored (same stream and seq) is left as it was."""
        if not events:
            return
        rows = [
            {
                "stream_id": stream_id,
                "seq": e.seq,
                "type": e.type,
                "at_ms": e.at_ms,
                "payload": json.dumps(e.event, separators=(",", ":"), default=str),
            }
            for e in events
        ]
        ins = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
        # Several server processes may archive the same room: the first write wins.
        stmt = ins(RoomEvent).values(rows).on_conflict_do_nothing()
        async with self._db.transaction() as s:
            await s.execute(stmt)

    async def last_seq(self, stream_id: str) -> int:
        """The highest archived ``seq`` of the stream's room (0 when none)."""
        async with self._db.session() as s:
            found = await s.scalar(
                select(func.max(RoomEvent.seq)).where(RoomEvent.stream_id == stream_id)
            )
        return int(found or 0)

    async def timeline(
        self, stream_id: str, after_seq: int = 0, limit: int = PAGE
    ) -> list[LoggedEvent]:
        """The stream's archived events after ``after_seq``, in room order, at most ``limit``."""
        query = (
            select(RoomEvent)
            .where(RoomEvent.stream_id == stream_id, RoomEvent.seq > after_seq)
            .order_by(RoomEvent.seq)
            .limit(max(1, min(limit, PAGE)))
        )
        async with self._db.session() as s:
            rows = (await s.scalars(query)).all()
        return [LoggedEvent(r.seq, r.type, r.at_ms, json.loads(r.payload)) for r in rows]
