"""SQLAlchemy 2.0 models: products, streams (shows), sales, orders and room events."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    false,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

#: Order states and their rank: a later event may only move an order to a higher rank,
#: so replaying or reordering persisted events can never undo a payment.
ORDER_STATE_RANK = {"reserved": 1, "paid": 2, "cancelled": 2, "expired": 2}
#: A paid order of a group buy that expired unfilled: its unit went back, its money is owed.
ORDER_STATE_RANK["refund"] = 3


class Base(DeclarativeBase):
    """Declarative base of every livesell table."""


class Product(Base):
    """Something the host can pin and sell."""

    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    price_cents: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3), default="USD")
    image_url: Mapped[str] = mapped_column(String(500), default="")
    # What a member of the selling host's store pays; None: no member price.
    member_price_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # The host who created it; None (rows from before owners): only an admin may change it.
    owner_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)


class Stream(Base):
    """A live show owned by one host."""

    __tablename__ = "streams"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host_id: Mapped[str] = mapped_column(String(64), index=True)
    title: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # A host's practice: unlisted, and its sales' orders are kept out of every real figure.
    rehearsal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Sale(Base):
    """A timed flash sale of a limited quantity of one product."""

    __tablename__ = "sales"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    stream_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    price_cents: Mapped[int] = mapped_column(BigInteger)
    quantity: Mapped[int] = mapped_column(Integer)
    per_user_limit: Mapped[int] = mapped_column(Integer)
    starts_at_ms: Mapped[int] = mapped_column(BigInteger)
    ends_at_ms: Mapped[int] = mapped_column(BigInteger)
    hold_s: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default="scheduled")
    created_by: Mapped[str] = mapped_column(String(64))
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    # Copied from the stream when the sale is made, and frozen once the sale has orders:
    # a stream later switched to a real show must not turn practice orders into real ones.
    rehearsal: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # A lot's sale sells in this stream without being offered on its flash-sale card (so
    # stream_id stays NULL); attribution, points, webhooks and reports read sale_stream().
    lot_stream_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    # What a member of the host's store pays in this sale, copied from the product when the
    # sale is made (its owner may change or clear the product's later); the sale's own price
    # when it has no member price. NULL only for sales made before migration 0013.
    member_price_cents: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


def sale_stream() -> ColumnElement[str | None]:
    """The stream a sale sells in, a lot's included (NULL: none)."""
    return func.coalesce(Sale.stream_id, Sale.lot_stream_id)


class Order(Base):
    """A buyer's claim on units of a sale. Written by the persister from Redis events."""

    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    sale_id: Mapped[int] = mapped_column(ForeignKey("sales.id"), index=True)
    user_id: Mapped[str] = mapped_column(String(64))
    qty: Mapped[int] = mapped_column(Integer)
    unit_price_cents: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16))
    state_rank: Mapped[int] = mapped_column(Integer)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    expires_at_ms: Mapped[int] = mapped_column(BigInteger)
    updated_at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (Index("ix_orders_sale_user", "sale_id", "user_id"),)


class CouponRedemption(Base):
    """A coupon used to pay an order: the discount taken off its total, once per order."""

    __tablename__ = "coupon_redemptions"
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    coupon_id: Mapped[str] = mapped_column(String(40), index=True)
    discount_cents: Mapped[int] = mapped_column(BigInteger)
    at_ms: Mapped[int] = mapped_column(BigInteger)


class StoreMember(Base):
    """A viewer who joined a host's store; ``version`` serialises their points spends."""

    __tablename__ = "store_members"
    host_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    joined_at_ms: Mapped[int] = mapped_column(BigInteger)
    version: Mapped[int] = mapped_column(Integer, default=0)


class PointsEntry(Base):
    """One line of a member's append-only points ledger; the balance is the sum of ``delta``."""

    __tablename__ = "points_ledger"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    host_id: Mapped[str] = mapped_column(String(64))
    user_id: Mapped[str] = mapped_column(String(64))
    delta: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(String(16))
    ref: Mapped[str] = mapped_column(String(80))
    at_ms: Mapped[int] = mapped_column(BigInteger)

    __table_args__ = (
        Index("ix_points_member", "host_id", "user_id"),
        # One entry per (member, reason, ref): crediting an order twice is a no-op.
        Index("ux_points_once", "host_id", "user_id", "reason", "ref", unique=True),
    )


class AttributionTouch(Base):
    """A viewer's last visit to a show through someone's share link (last touch wins)."""

    __tablename__ = "attribution_touches"
    user_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    promoter_id: Mapped[str] = mapped_column(String(64), index=True)
    at_ms: Mapped[int] = mapped_column(BigInteger)


class OrderAttribution(Base):
    """Who brought an order (``promoter_id`` '' when nobody did), with the commission owed."""

    __tablename__ = "order_attributions"
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), primary_key=True)
    promoter_id: Mapped[str] = mapped_column(String(64), index=True)
    stream_id: Mapped[str] = mapped_column(String(64), index=True)
    commission_bp: Mapped[int] = mapped_column(Integer)
    at_ms: Mapped[int] = mapped_column(BigInteger)


class ProductCommission(Base):
    """The commission a host pays promoters on a product, in basis points of the order."""

    __tablename__ = "product_commissions"
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"), primary_key=True)
    rate_bp: Mapped[int] = mapped_column(Integer)


class RoomEvent(Base):
    """One live-room event kept for replays: the room's Redis stream keeps only the last 1,000."""

    __tablename__ = "room_events"
    stream_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    at_ms: Mapped[int] = mapped_column(BigInteger)
    #: The event as the room sent it, JSON.
    payload: Mapped[str] = mapped_column(Text)


class WebhookEvent(Base):
    """One order event in the webhook outbox, written in the transaction that stores the order.

    ``event_id`` is ``<order id>.<state>``: an order reaches each state once, so a replayed
    persister batch can never add the same event twice. ``pending`` stays 1 until every
    configured URL has answered 2xx; ``done_urls`` remembers which already have.
    """

    __tablename__ = "webhook_outbox"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(64), unique=True)
    order_id: Mapped[str] = mapped_column(String(40))
    type: Mapped[str] = mapped_column(String(32))
    #: The exact JSON bytes sent (and signed) on every attempt.
    body: Mapped[str] = mapped_column(Text)
    created_at_ms: Mapped[int] = mapped_column(BigInteger)
    pending: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_ms: Mapped[int] = mapped_column(BigInteger)
    claimed_by: Mapped[str] = mapped_column(String(80))
    done_urls: Mapped[str] = mapped_column(Text)
    delivered_at_ms: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    last_error: Mapped[str] = mapped_column(String(200))

    __table_args__ = (
        Index("ix_webhook_outbox_due", "pending", "next_attempt_ms"),
        Index("ix_webhook_outbox_order", "order_id", "id"),
    )


class PaymentEvent(Base):
    """A payment provider's event already applied: a replay of its id changes nothing."""

    __tablename__ = "payment_events"
    event_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    order_id: Mapped[str] = mapped_column(String(40), index=True)
    type: Mapped[str] = mapped_column(String(40))
    received_at_ms: Mapped[int] = mapped_column(BigInteger)
