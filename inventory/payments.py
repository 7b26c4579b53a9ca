"""Payment provider events already applied, kept durably so a replayed event id changes nothing."""

from __future__ import annotations

import time

from sqlalchemy.dialects import postgresql, sqlite

from inventory.database import Database
from inventory.models import PaymentEvent


class PaymentEvents:
    """Repository of the provider's event ids (one row each, written once)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def seen(self, event_id: str) -> str | None:
        """The order an event id was applied to, or None when it is new."""
        async with self._db.session() as s:
            row = await s.get(PaymentEvent, event_id)
            return None if row is None else row.order_id

    async def record(self, event_id: str, order_id: str, type_: str) -> bool:
        """Remember an applied event; False when it was already remembered (a concurrent copy)."""
        ins = (postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert)(
            PaymentEvent
        )
        stmt = ins.on_conflict_do_nothing(index_elements=["event_id"]).values(
            event_id=event_id, order_id=order_id, type=type_, received_at_ms=int(time.time() * 1000)
        )
        async with self._db.transaction() as s:
            result = await s.execute(stmt)
            return bool(getattr(result, "rowcount", 0))
