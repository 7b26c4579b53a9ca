"""Coupon drops: N coupons on a sale, first come first served, one per user, used once at pay.

A drop lives under its sale's hash tag, so claiming is one Lua call like a flash-sale buy, and
paying with a coupon is one Lua call that uses the coupon and pays the order together: a coupon
can never be used twice, nor an order discounted twice. See docs/social.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from flashsale import errors
from flashsale.coalescer import Coalescer
from flashsale.events import NullObserver, SaleEvent, SaleEventKind, SaleObserver
from flashsale.keys import SaleKeys, sale_id_of_order
from flashsale.order import OrderView
from flashsale.redisguard import guarded, text
from flashsale.service import SaleService
from inventory.catalog import Actor
from inventory.errors import Conflict, DomainError, Gone, NotFound
from inventory.luascript import load_script

log = logging.getLogger("livesell.coupons")


class CouponNotFound(NotFound):
    """No such coupon drop."""

    code = "coupon_not_found"


class CouponsGone(Conflict):
    """Every coupon of the drop has been claimed."""

    code = "coupons_gone"


class CouponExpired(Gone):
    """The coupon drop has expired."""

    code = "coupon_expired"


class CouponNotClaimed(Conflict):
    """The user has not claimed a coupon of this drop."""

    code = "coupon_not_claimed"


class CouponUsed(Conflict):
    """The user's coupon of this drop was already used."""

    code = "coupon_used"


class BelowMinimumSpend(Conflict):
    """The order's total is below the coupon's minimum spend."""

    code = "below_minimum_spend"


_ERRORS: dict[str, type[DomainError]] = {
    "coupon_not_found": CouponNotFound,
    "coupons_gone": CouponsGone,
    "coupon_expired": CouponExpired,
    "coupon_not_claimed": CouponNotClaimed,
    "coupon_used": CouponUsed,
    "below_minimum_spend": BelowMinimumSpend,
    "order_not_found": errors.OrderNotFound,
}


@dataclass(frozen=True, slots=True)
class CouponKeys:
    """The coupon keys of one sale (same hash tag as its ``SaleKeys``)."""

    sale: SaleKeys
    drops: str
    claims: str
    redeemed: str

    @classmethod
    def of(cls, prefix: str, sale_id: int) -> CouponKeys:
        """Coupon keys of sale ``sale_id`` under ``prefix``."""
        base = f"{prefix}:{{s{sale_id}}}"
        return cls(SaleKeys.of(prefix, sale_id), f"{base}:cdrops", f"{base}:cclaims",
                   f"{base}:credeemed")  # fmt: skip

    def for_pay(self) -> list[str]:
        """KEYS of coupon_pay.lua."""
        s = self.sale
        return [s.meta, s.users, s.orders, s.holds, s.events,
                self.drops, self.claims, self.redeemed]  # fmt: skip


def sale_id_of_drop(drop_id: str) -> int:
    """Drop ids are ``<sale_id>-c<seq>``."""
    head, sep, tail = drop_id.partition("-c")
    if not sep or not head.isdigit() or not tail.isdigit() or len(drop_id) > 40:
        raise CouponNotFound(f"coupon {drop_id!r} not found")
    return int(head)


@dataclass(frozen=True, slots=True)
class CouponDrop:
    """A drop: its terms and how many coupons are left."""

    id: str
    sale_id: int
    kind: str
    value: int
    min_spend_cents: int
    expires_at_ms: int
    total: int
    left: int

    @classmethod
    def parse(cls, drop_id: str, record: Any, left: Any) -> CouponDrop:
        """Decode the record ``drop`` writes: ``kind|value|min_spend|expires_ms|total``."""
        kind, value, min_spend, expires, total = text(record).split("|")
        return cls(drop_id, sale_id_of_drop(drop_id), kind, int(value), int(min_spend),
                   int(expires), int(total), int(left or 0))  # fmt: skip

    def to_json(self) -> dict[str, object]:
        """The API shape."""
        return {
            "id": self.id,
            "sale_id": self.sale_id,
            "kind": self.kind,
            "value": self.value,
            "min_spend_cents": self.min_spend_cents,
            "expires_at_ms": self.expires_at_ms,
            "total": self.total,
            "left": self.left,
            "server_time_ms": int(time.time() * 1000),
        }


@dataclass(frozen=True, slots=True)
class Claim:
    """A user's coupon of a drop: ``claimed``, or ``used=<order id>``."""

    drop: CouponDrop
    state: str
    duplicate: bool


@dataclass(frozen=True, slots=True)
class CouponPayment:
    """An order paid with a coupon, and the discount it got."""

    order: OrderView
    drop_id: str
    discount_cents: int

    def to_json(self) -> dict[str, object]:
        """The API shape: the order with the discount and what was charged."""
        total = self.order.qty * self.order.unit_price_cents
        return {**self.order.to_json(), "coupon_id": self.drop_id,
                "discount_cents": self.discount_cents,
                "charged_cents": total - self.discount_cents}  # fmt: skip


class Coupons:
    """Runs coupon drops on a ``SaleService``'s sales (one Lua call per decision)."""

    def __init__(
        self,
        redis: Redis,
        sales: SaleService,
        prefix: str,
        observer: SaleObserver | None = None,
        coalesce: bool = True,
    ) -> None:
        self._redis = redis
        self._sales = sales
        self._prefix = prefix
        self._observer: SaleObserver = observer or NullObserver()
        # Concurrent claims of one sale ride one script call, as buys do.
        self._coalescer = Coalescer(self._run_batch) if coalesce else None
        self._claim = load_script(redis, "flashsale", "coupon_claim")
        self._pay = load_script(redis, "flashsale", "coupon_pay")

    def keys(self, sale_id: int) -> CouponKeys:
        """The coupon keys of a sale."""
        return CouponKeys.of(self._prefix, sale_id)

    async def _emit(self, kind: SaleEventKind, drop: CouponDrop, remaining: int) -> None:
        try:
            stream = await self._sales.stream_of(drop.sale_id)
            self._observer.sale_event(SaleEvent(
                kind, drop.sale_id, stream, remaining, int(time.time() * 1000),
                ref_id=drop.id, size=drop.total, count=drop.left, deadline_ms=drop.expires_at_ms,
            ))  # fmt: skip
        except Exception:  # an observer bug must never fail a claim
            log.exception("coupon event %s of %s not announced", kind, drop.id)

    async def drop(
        self,
        sale_id: int,
        kind: str,
        value: int,
        count: int,
        expires_s: int,
        min_spend_cents: int = 0,
        *,
        by: Actor,
    ) -> CouponDrop:
        """Drop ``count`` coupons worth ``value`` cents (``amount``) or percent (``percent``)."""
        if kind not in ("amount", "percent"):
            raise errors.BadSaleInput("kind must be 'amount' or 'percent'")
        top = 100 if kind == "percent" else 10**12
        if not 1 <= value <= top:
            raise errors.BadSaleInput(f"value must be 1..{top}")
        if not 1 <= count <= 1_000_000:
            raise errors.BadSaleInput("count must be 1..1,000,000")
        if not 1 <= expires_s <= 7 * 86400:
            raise errors.BadSaleInput("expires_s must be 1..604800")
        if not 0 <= min_spend_cents <= 10**12:
            raise errors.BadSaleInput("min_spend_cents must be 0..10^12")
        sale = await self._sales.own_sale(sale_id, by)
        if sale.state == "closed":
            raise errors.Ended(f"sale {sale_id} has ended")
        k = self.keys(sale_id)
        sec, usec = await guarded(self._redis.time())
        # Redis's clock decides expiry, as it decides everything else in a sale.
        expires = sec * 1000 + usec // 1000 + expires_s * 1000
        drop_id = f"{sale_id}-c{await guarded(self._redis.hincrby(k.drops, 'seq', 1))}"
        record = f"{kind}|{value}|{min_spend_cents}|{expires}|{count}"
        await guarded(
            self._redis.hset(k.drops, mapping={drop_id: record, f"{drop_id}:left": count})
        )
        drop = CouponDrop.parse(drop_id, record, count)
        await self._emit("coupon_dropped", drop, sale.remaining)
        return drop

    async def get_drop(self, drop_id: str) -> CouponDrop:
        """One drop with the coupons left."""
        k = self.keys(sale_id_of_drop(drop_id))
        record, left = await guarded(self._redis.hmget(k.drops, [drop_id, f"{drop_id}:left"]))
        if record is None:
            raise CouponNotFound(f"coupon {drop_id} not found")
        return CouponDrop.parse(drop_id, record, left)

    async def active_drop(self, sale_id: int) -> CouponDrop | None:
        """The sale's latest drop while it has coupons left and has not expired (for a join)."""
        seq = await guarded(self._redis.hget(self.keys(sale_id).drops, "seq"))
        if seq is None:
            return None
        drop = await self.get_drop(f"{sale_id}-c{int(seq)}")
        sec, usec = await guarded(self._redis.time())
        if drop.left <= 0 or drop.expires_at_ms <= sec * 1000 + usec // 1000:
            return None
        return drop

    async def _run_batch(self, sale_id: int, batch: Sequence[tuple[str, str]]) -> list[Any]:
        k = self.keys(sale_id)
        args: list[Any] = [len(batch)]
        for drop_id, user_id in batch:
            args += [drop_id, user_id]
        return list(await self._claim(keys=[k.drops, k.claims, k.sale.meta], args=args))

    async def claim(self, drop_id: str, user_id: str) -> Claim:
        """Claim one coupon of a drop; claiming again replays the first claim."""
        sale_id = sale_id_of_drop(drop_id)
        if self._coalescer is not None:
            reply = await guarded(self._coalescer.submit(sale_id, (drop_id, user_id)))
        else:
            reply = (await guarded(self._run_batch(sale_id, [(drop_id, user_id)])))[0]
        code = text(reply[0])
        if code in _ERRORS:
            raise _ERRORS[code](f"{code.replace('_', ' ')} ({drop_id})")
        drop = CouponDrop.parse(drop_id, reply[1], reply[2])
        if code == "ok":
            await self._emit("coupon_claimed", drop, int(reply[4]))
        return Claim(drop, text(reply[3]), code == "duplicate")

    async def pay(self, order_id: str, user_id: str, drop_id: str) -> CouponPayment:
        """Pay the caller's reserved order with their coupon of ``drop_id``, atomically."""
        try:
            sale_id = sale_id_of_order(order_id)
        except ValueError as exc:
            raise errors.OrderNotFound(f"order {order_id} not found") from exc
        if sale_id_of_drop(drop_id) != sale_id:
            raise CouponNotFound(f"coupon {drop_id} does not apply to order {order_id}")
        reply = await guarded(
            self._pay(keys=self.keys(sale_id).for_pay(), args=[order_id, user_id, drop_id])
        )
        code = text(reply[0])
        if code in _ERRORS:
            raise _ERRORS[code](f"{code.replace('_', ' ')} ({order_id})")
        if code == "hold_over":
            await self._sales.pay(order_id, user_id)  # expires it and raises HoldExpired
            raise errors.HoldExpired(f"order {order_id} expired")
        if code == "order_state":
            state = OrderView.parse(order_id, reply[1]).state
            if state == "expired":
                raise errors.HoldExpired(f"order {order_id} expired; its stock went back on sale")
            raise errors.OrderStateConflict(f"order {order_id} is {state}")
        order = OrderView.parse(order_id, reply[1])
        if code == "already":
            return CouponPayment(order, drop_id, int(reply[2]))
        try:
            self._observer.sale_event(SaleEvent(
                "paid", sale_id, await self._sales.stream_of(sale_id), int(reply[3]),
                int(time.time() * 1000), order_id=order_id, user_id=user_id, qty=order.qty,
                ref_id=drop_id,
            ))  # fmt: skip
        except Exception:
            log.exception("sale observer failed")
        return CouponPayment(order, drop_id, int(reply[2]))

    async def redemption(self, order_id: str) -> tuple[str, int] | None:
        """The coupon an order was paid with and its discount, or None."""
        try:
            k = self.keys(sale_id_of_order(order_id))
        except ValueError:
            return None
        got = await guarded(self._redis.hget(k.redeemed, order_id))
        if got is None:
            return None
        drop_id, _, discount = text(got).partition("|")
        return drop_id, int(discount)

    async def close(self) -> None:
        """Stop in-flight batches."""
        if self._coalescer is not None:
            await self._coalescer.close()
