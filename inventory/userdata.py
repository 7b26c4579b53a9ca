"""What SQL keeps about one user: exported on request, erased or pseudonymised on request.

Orders are kept (stock and money must add up) under a pseudonym; points, memberships, share-link
touches and archived chat go; reviews stay without a name; promoter credit moves to the pseudonym.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, or_, select, update

from inventory.database import Database
from inventory.models import (
    AttributionTouch,
    Order,
    OrderAttribution,
    PointsEntry,
    RoomEvent,
    StoreMember,
    WebhookEvent,
)
from inventory.reviews import Review


def _row(obj: Any) -> dict[str, Any]:
    return {c.key: getattr(obj, c.key) for c in obj.__table__.columns}


def names_user(event: dict[str, Any], user_id: str, name: str) -> bool:
    """Whether an archived room event names the user (as author, buyer or target)."""
    values = {str(v) for v in event.values() if isinstance(v, str | int)}
    return user_id in values or bool(name and name in values)


class UserData:
    """Exports and erases one user's rows across the ledger's tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _archived_events(self, user_id: str, name: str) -> list[RoomEvent]:
        """Archived room events whose payload mentions the user's id or name."""
        like = [RoomEvent.payload.contains(user_id)]
        if name:
            like.append(RoomEvent.payload.contains(name))
        async with self._db.session() as s:
            rows = await s.scalars(select(RoomEvent).where(or_(*like)))
            return [r for r in rows if names_user(json.loads(r.payload), user_id, name)]

    async def export(self, user_id: str, name: str = "") -> dict[str, Any]:
        """Every row about the user, as plain JSON-able data."""
        async with self._db.session() as s:

            async def rows(query: Any) -> list[dict[str, Any]]:
                return [_row(r) for r in await s.scalars(query)]

            own_orders = select(Order.id).where(Order.user_id == user_id)
            out = {
                "orders": await rows(select(Order).where(Order.user_id == user_id)),
                "reviews": await rows(select(Review).where(Review.user_id == user_id)),
                "points": await rows(select(PointsEntry).where(PointsEntry.user_id == user_id)),
                "memberships": await rows(
                    select(StoreMember).where(StoreMember.user_id == user_id)),
                "attribution": {
                    "touches": await rows(select(AttributionTouch).where(
                        or_(AttributionTouch.user_id == user_id,
                            AttributionTouch.promoter_id == user_id))),
                    "orders_brought": await rows(select(OrderAttribution).where(
                        OrderAttribution.promoter_id == user_id)),
                    "own_orders": await rows(select(OrderAttribution).where(
                        OrderAttribution.order_id.in_(own_orders))),
                },
            }  # fmt: skip
        archived = await self._archived_events(user_id, name)
        out["archived_room_events"] = [
            {"stream_id": r.stream_id, "seq": r.seq, "type": r.type, "event": json.loads(r.payload)}
            for r in archived
        ]
        return out

    async def erase(self, user_id: str, name: str, pseudonym: str) -> int:
        """Erase or pseudonymise every row about the user; returns the rows changed."""
        archived = await self._archived_events(user_id, name)
        changed = 0
        # Webhook events (sent or not yet) carry the buyer's id in their body: the pseudonym
        # replaces it there too. Ids are JSON-safe characters, so the text match is exact.
        buyer, alias = f'"user_id":"{user_id}"', f'"user_id":"{pseudonym}"'
        async with self._db.transaction() as s:
            for stmt in (
                update(Order).where(Order.user_id == user_id).values(user_id=pseudonym),
                update(Review).where(Review.user_id == user_id)
                .values(user_id=pseudonym, name=None),
                update(OrderAttribution).where(OrderAttribution.promoter_id == user_id)
                .values(promoter_id=pseudonym),
                delete(PointsEntry).where(PointsEntry.user_id == user_id),
                delete(StoreMember).where(StoreMember.user_id == user_id),
                delete(AttributionTouch).where(or_(AttributionTouch.user_id == user_id,
                                                   AttributionTouch.promoter_id == user_id)),
                update(WebhookEvent).where(WebhookEvent.body.contains(buyer, autoescape=True))
                .values(body=func.replace(WebhookEvent.body, buyer, alias)),
            ):  # fmt: skip
                changed += int((await s.execute(stmt)).rowcount or 0)  # type: ignore[attr-defined]
            for r in archived:
                await s.execute(
                    delete(RoomEvent).where(
                        RoomEvent.stream_id == r.stream_id, RoomEvent.seq == r.seq
                    )
                )
        return changed + len(archived)
