"""Verified reviews: one per paid order, rated 1-5, shown per product, moderated by the host.

Whether the order is the caller's and paid is decided by the caller (the sale service knows the
live state); this module stores, lists, moderates and, for privacy, forgets the reviewer.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import BigInteger, Boolean, Integer, String, Text, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from inventory.database import Database
from inventory.errors import Conflict, DomainError, InvalidInput, NotFound
from inventory.models import Base

#: Longest review text (characters); longer is a 400, not a truncation.
MAX_TEXT = 1000
#: Reviews a product card shows besides the average.
LATEST = 3


class NotABuyer(DomainError):
    """Only a buyer with a paid order may review the product."""

    code = "not_a_buyer"
    status = 403


class Review(Base):
    """A buyer's rating and text of a product, tied to the paid order that makes it verified."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(40), unique=True)
    product_id: Mapped[int] = mapped_column(Integer, index=True)
    stream_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_id: Mapped[str] = mapped_column(String(64), index=True)
    #: The reviewer's display name, only when they chose to show it.
    name: Mapped[str | None] = mapped_column(String(80), nullable=True)
    rating: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    at_ms: Mapped[int] = mapped_column(BigInteger)


@dataclass(frozen=True, slots=True)
class ReviewView:
    """A review as shown: never the reviewer's id, a name only if they opted in."""

    id: int
    product_id: int
    stream_id: str | None
    rating: int
    text: str
    name: str | None
    hidden: bool
    at_ms: int

    @classmethod
    def of(cls, r: Review) -> ReviewView:
        """From a row."""
        return cls(r.id, r.product_id, r.stream_id, r.rating, r.text, r.name, r.hidden, r.at_ms)

    def to_json(self) -> dict[str, object]:
        """The API shape (every review here is from a verified buyer)."""
        return {
            "id": self.id, "product_id": self.product_id, "rating": self.rating,
            "text": self.text, "name": self.name, "verified": True, "hidden": self.hidden,
            "at_ms": self.at_ms,
        }  # fmt: skip


class Reviews:
    """Stores reviews and answers a product card's summary."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def write(
        self, order_id: str, product_id: int, stream_id: str | None, user_id: str,
        name: str | None, rating: int, text: str,
    ) -> ReviewView:  # fmt: skip
        """Store the review of a paid order (the caller checked it); a second one is a 409."""
        if not 1 <= rating <= 5:
            raise InvalidInput("rating must be 1..5")
        text = text.strip()
        if len(text) > MAX_TEXT:
            raise InvalidInput(f"a review is at most {MAX_TEXT} characters")
        row = Review(
            order_id=order_id, product_id=product_id, stream_id=stream_id, user_id=user_id,
            name=name, rating=rating, text=text, hidden=False, at_ms=int(time.time() * 1000),
        )  # fmt: skip
        try:
            async with self._db.transaction() as s:
                s.add(row)
        except IntegrityError as exc:
            raise Conflict("this order already has a review", code="already_reviewed") from exc
        return ReviewView.of(row)

    async def get(self, review_id: int) -> ReviewView:
        """One review (hidden or not); 404 when there is none."""
        async with self._db.session() as s:
            row = await s.get(Review, review_id)
        if row is None:
            raise NotFound(f"review {review_id} not found")
        return ReviewView.of(row)

    async def summary(self, product_id: int, latest: int = LATEST) -> dict[str, object]:
        """A product card's figures: visible reviews' count, average rating, the latest few."""
        shown = (Review.product_id == product_id, Review.hidden.is_(False))
        async with self._db.session() as s:
            count, avg = (await s.execute(select(func.count(), func.avg(Review.rating))
                                          .where(*shown))).one()  # fmt: skip
            rows = await s.scalars(
                select(Review).where(*shown).order_by(Review.id.desc()).limit(latest)
            )
            recent = [ReviewView.of(r).to_json() for r in rows]
        return {
            "product_id": product_id,
            "count": int(count),
            "average": round(float(avg), 2) if avg is not None else None,
            "latest": recent,
        }

    async def for_stream(self, stream_id: str) -> list[ReviewView]:
        """Every review of a show's products (hidden ones too): the host's moderation list."""
        async with self._db.session() as s:
            rows = await s.scalars(
                select(Review).where(Review.stream_id == stream_id).order_by(Review.id.desc())
            )
            return [ReviewView.of(r) for r in rows]

    async def set_hidden(self, review_id: int, hidden: bool) -> ReviewView:
        """Hide a review from the room (or show it again)."""
        async with self._db.transaction() as s:
            await s.execute(update(Review).where(Review.id == review_id).values(hidden=hidden))
        return await self.get(review_id)

    async def delete(self, review_id: int) -> None:
        """Remove a review for good."""
        async with self._db.transaction() as s:
            await s.execute(delete(Review).where(Review.id == review_id))
