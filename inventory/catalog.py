"""Products and streams (shows): the catalogue a host sells from."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from inventory.database import Database
from inventory.errors import Conflict, Forbidden, InvalidInput, NotFound
from inventory.models import Product, Stream

STREAM_ID_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
STREAM_STATUSES = ("scheduled", "live", "ended")
#: What ``update_product`` may change; the currency stays (prices already quoted in it).
EDITABLE = frozenset({"name", "description", "price_cents", "image_url", "member_price_cents"})


@dataclass(frozen=True, slots=True)
class Actor:
    """Who asks for a change to a product: a user id, and whether they are an admin."""

    user_id: str
    admin: bool = False


def may_change(actor: Actor, owner_id: str | None) -> bool:
    """Whether ``actor`` may change a product owned by ``owner_id`` (None: admins only)."""
    return actor.admin or (owner_id is not None and owner_id == actor.user_id)


def require_owner(actor: Actor, product_id: int, owner_id: str | None) -> None:
    """Raise Forbidden unless ``actor`` is the product's owner or an admin."""
    if not may_change(actor, owner_id):
        raise Forbidden(f"product {product_id} is not yours: only its owner or an admin may")


def _validated(
    name: str,
    price_cents: int,
    member_price_cents: int | None,
    description: str,
    image_url: str,
    currency: str = "USD",
) -> str:
    """The product's name, stripped, once every field is valid; else InvalidInput."""
    name = name.strip()
    if not 1 <= len(name) <= 200:
        raise InvalidInput("name must be 1..200 characters", field="name")
    if not 0 <= price_cents <= 10**12:
        raise InvalidInput("price_cents must be between 0 and 10^12", field="price_cents")
    if member_price_cents is not None and not 0 <= member_price_cents < price_cents:
        raise InvalidInput(
            "member_price_cents must be below price_cents", field="member_price_cents"
        )
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise InvalidInput("currency must be a 3-letter ISO code", field="currency")
    if len(description) > 5000:
        raise InvalidInput("description must be at most 5000 characters", field="description")
    if len(image_url) > 500:
        raise InvalidInput("image_url must be at most 500 characters", field="image_url")
    if image_url and not image_url.startswith(("https://", "http://", "/")):
        raise InvalidInput("image_url must be an http(s) URL or a path", field="image_url")
    return name


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
    #: The host who created it; None: an admin's (rows from before owners).
    owner_id: str | None = None


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
        p.owner_id,
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
        owner_id: str | None = None,
    ) -> ProductView:
        """Create a product owned by ``owner_id`` (None: an admin's) after validating its fields."""
        name = _validated(name, price_cents, member_price_cents, description, image_url, currency)
        async with self._db.transaction() as s:
            row = Product(
                name=name,
                description=description,
                price_cents=price_cents,
                currency=currency,
                image_url=image_url,
                member_price_cents=member_price_cents,
                owner_id=owner_id,
                created_at_ms=_now_ms(),
            )
            s.add(row)
            await s.flush()
            return _product(row)

    async def update_product(
        self, product_id: int, actor: Actor, changes: dict[str, Any]
    ) -> ProductView:
        """Change some of a product's fields (its owner or an admin), validated as on create.

        Sales copied their price when made, so no reserved order's price moves.
        """
        unknown = set(changes) - EDITABLE
        if unknown:
            raise InvalidInput(f"cannot change {', '.join(sorted(unknown))}")
        async with self._db.transaction() as s:
            row = await self._product_row(s, product_id)
            require_owner(actor, product_id, row.owner_id)
            merged = {
                "name": row.name, "description": row.description, "price_cents": row.price_cents,
                "image_url": row.image_url, "member_price_cents": row.member_price_cents,
                **changes,
            }  # fmt: skip
            merged["name"] = _validated(
                merged["name"], merged["price_cents"], merged["member_price_cents"],
                merged["description"], merged["image_url"],
            )  # fmt: skip
            for key, value in merged.items():
                setattr(row, key, value)
            return _product(row)

    async def list_products(
        self, limit: int = 100, offset: int = 0, owner_id: str | None = None
    ) -> list[ProductView]:
        """Products, oldest first; only ``owner_id``'s when given."""
        query = select(Product).order_by(Product.id).limit(limit).offset(offset)
        if owner_id is not None:
            query = query.where(Product.owner_id == owner_id)
        async with self._db.session() as s:
            return [_product(r) for r in await s.scalars(query)]

    async def get_product(self, product_id: int) -> ProductView:
        """One product, or NotFound."""
        async with self._db.session() as s:
            return _product(await self._product_row(s, product_id))

    async def owned_product(self, product_id: int, actor: Actor) -> ProductView:
        """One product that ``actor`` may change (its owner or an admin): NotFound, Forbidden."""
        product = await self.get_product(product_id)
        require_owner(actor, product_id, product.owner_id)
        return product

    @staticmethod
    async def _product_row(s: AsyncSession, product_id: int) -> Product:
        if not 1 <= product_id <= 2**31 - 1:  # beyond any id, and beyond the column's range
            raise NotFound(f"product {product_id} not found")
        row = await s.get(Product, product_id)
        if row is None:
            raise NotFound(f"product {product_id} not found")
        return row

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
