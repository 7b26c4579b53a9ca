"""Products and streams (shows): the catalogue a host sells from."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from inventory.database import Database
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.models import Product, Stream

STREAM_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
STREAM_STATUSES = ("scheduled", "live", "ended")


@dataclass(frozen=True, slots=True)
class ProductView:
    """A product as the API and the room show it."""

    id: int
    name: str
    description: str
    price_cents: int
    currency: str
    image_url: str
    member_price_cents: int | None = None


@dataclass(frozen=True, slots=True)
class StreamView:
    """A show: who hosts it and whether it is live."""

    id: str
    host_id: str
    title: str
    status: str
    #: A host's practice: unlisted, its orders out of every real figure (inventory/rehearsal.py).
    rehearsal: bool = False


def _product(p: Product) -> ProductView:
    return ProductView(
        p.id,
        p.name,
        p.description,
        p.price_cents,
        p.currency,
        p.image_url,
        p.member_price_cents,
    )


def _stream(s: Stream) -> StreamView:
    return StreamView(s.id, s.host_id, s.title, s.status, bool(s.rehearsal))


def _now_ms() -> int:
    return int(time.time() * 1000)


class Catalog:
    """Repository of products and streams."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_product(
        self,
        name: str,
        price_cents: int,
        description: str = "",
        currency: str = "USD",
        image_url: str = "",
        member_price_cents: int | None = None,
    ) -> ProductView:
        """Create a product after validating its fields."""
        name = name.strip()
        if not 1 <= len(name) <= 200:
            raise InvalidInput("name must be 1..200 characters")
        if not 0 <= price_cents <= 10**12:
            raise InvalidInput("price_cents must be between 0 and 10^12")
        if member_price_cents is not None and not 0 <= member_price_cents < price_cents:
            raise InvalidInput("member_price_cents must be below price_cents")
        if not re.fullmatch(r"[A-Z]{3}", currency):
            raise InvalidInput("currency must be a 3-letter ISO code")
        if len(description) > 5000 or len(image_url) > 500:
            raise InvalidInput("description or image_url too long")
        if image_url and not image_url.startswith(("https://", "http://", "/")):
            raise InvalidInput("image_url must be an http(s) URL or a path")
        async with self._db.transaction() as s:
            row = Product(
                name=name,
                description=description,
                price_cents=price_cents,
                currency=currency,
                image_url=image_url,
                member_price_cents=member_price_cents,
                created_at_ms=_now_ms(),
            )
            s.add(row)
            await s.flush()
            return _product(row)

    async def list_products(self, limit: int = 100, offset: int = 0) -> list[ProductView]:
        """Products, oldest first."""
        async with self._db.session() as s:
            rows = await s.scalars(select(Product).order_by(Product.id).limit(limit).offset(offset))
            return [_product(r) for r in rows]

    async def get_product(self, product_id: int) -> ProductView:
        """One product, or NotFound."""
        if not 1 <= product_id <= 2**31 - 1:  # beyond any id, and beyond the column's range
            raise NotFound(f"product {product_id} not found")
        async with self._db.session() as s:
            row = await s.get(Product, product_id)
            if row is None:
                raise NotFound(f"product {product_id} not found")
            return _product(row)

    async def create_stream(
        self, stream_id: str, host_id: str, title: str = "", rehearsal: bool = False
    ) -> StreamView:
        """Create a scheduled stream owned by ``host_id`` (a practice one when ``rehearsal``)."""
        if not STREAM_ID_RE.match(stream_id):
            raise InvalidInput("stream id must be 1..64 of [A-Za-z0-9_-]")
        if len(title) > 200:
            raise InvalidInput("title must be at most 200 characters")
        try:
            async with self._db.transaction() as s:
                if await s.get(Stream, stream_id) is not None:
                    raise Conflict(f"stream {stream_id} already exists", code="exists")
                row = Stream(
                    id=stream_id,
                    host_id=host_id,
                    title=title,
                    status="scheduled",
                    created_at_ms=_now_ms(),
                    rehearsal=rehearsal,
                )
                s.add(row)
                return _stream(row)
        except IntegrityError as exc:  # a concurrent create won the race
            raise Conflict(f"stream {stream_id} already exists", code="exists") from exc

    async def get_stream(self, stream_id: str) -> StreamView | None:
        """One stream, or None."""
        async with self._db.session() as s:
            row = await s.get(Stream, stream_id)
            return None if row is None else _stream(row)

    async def list_streams(self, limit: int = 100) -> list[StreamView]:
        """Streams, newest first."""
        async with self._db.session() as s:
            rows = await s.scalars(
                select(Stream).order_by(Stream.created_at_ms.desc()).limit(limit)
            )
            return [_stream(r) for r in rows]

    async def set_stream_status(self, stream_id: str, status: str) -> None:
        """Move a stream to ``status`` (scheduled, live or ended)."""
        if status not in STREAM_STATUSES:
            raise InvalidInput(f"bad stream status {status!r}")
        async with self._db.transaction() as s:
            await s.execute(update(Stream).where(Stream.id == stream_id).values(status=status))
