"""Settling reserved orders: pay, cancel, expire due holds, and an order's live state.

Each settlement is one atomic Lua call (settle.lua, expire.lua) on the order's sale, so a
payment racing its hold's expiry has exactly one winner. ``SaleService`` keeps the public
methods (``pay``, ``cancel``, ``get_order``, ``expire_due``) and hands them here.
"""

from __future__ import annotations

from collections.abc import Callable

from redis.asyncio import Redis

from flashsale import errors
from flashsale.keys import SaleKeys, sale_id_of_order
from flashsale.meter import BuyMeter
from flashsale.order import OrderView
from flashsale.redisguard import guarded, text
from flashsale.scripts import Scripts
from inventory.ledger import Ledger

#: Reports one sale event: ``SaleService._emit`` (kind, sale id, stock left, event fields).
Emit = Callable[..., None]


class Settlement:
    """Pays, cancels and expires reserved orders; each step is one Lua call on its sale."""

    def __init__(
        self,
        redis: Redis,
        ledger: Ledger,
        scripts: Scripts,
        prefix: str,
        emit: Emit,
        meter: BuyMeter,
    ) -> None:
        self._redis = redis
        self._ledger = ledger
        self._scripts = scripts
        self._prefix = prefix
        self._emit = emit
        self._meter = meter

    def _keys(self, sale_id: int) -> SaleKeys:
        return SaleKeys.of(self._prefix, sale_id)

    async def get_order(self, order_id: str) -> OrderView:
        """The order's live state from Redis (falling back to SQL once the sale is purged)."""
        try:
            sale_id = sale_id_of_order(order_id)
        except ValueError as exc:
            raise errors.OrderNotFound(f"order {order_id} not found") from exc
        rec = await guarded(self._redis.hget(self._keys(sale_id).orders, order_id))
        if rec is not None:
            return OrderView.parse(order_id, rec)
        row = await self._ledger.get_order(order_id)
        if row is None:
            raise errors.OrderNotFound(f"order {order_id} not found")
        return OrderView.of(row)

    async def settle(self, order_id: str, action: str, caller: str) -> OrderView:
        """``pay`` or ``cancel`` a reserved order; ``caller`` '' means any user."""
        try:
            sale_id = sale_id_of_order(order_id)
        except ValueError as exc:
            raise errors.OrderNotFound(f"order {order_id} not found") from exc
        reply = await guarded(
            self._scripts.settle(
                keys=self._keys(sale_id).for_settle(), args=[order_id, action, caller]
            )
        )
        code = text(reply[0])
        if code == "order_not_found":
            raise errors.OrderNotFound(f"order {order_id} not found")
        if code == "forbidden":
            raise errors.OrderNotFound(f"order {order_id} not found")  # do not reveal others' ids
        order = OrderView.parse(order_id, reply[1])
        remaining = int(reply[2])
        if code == "expired_now":
            self._emit("expired", sale_id, remaining, order_id=order_id, qty=order.qty)
            self._meter.holds_expired(1)
        if code in ("expired", "expired_now"):
            raise errors.HoldExpired(f"order {order_id} expired; its stock went back on sale")
        if code in ("paid", "cancelled"):
            raise errors.OrderStateConflict(f"order {order_id} is {code}")
        if code == "ok":
            kind = "paid" if action == "pay" else "cancelled"
            self._emit(kind, sale_id, remaining, order_id=order_id, user_id=order.user_id,
                       qty=order.qty)  # fmt: skip
        return order

    async def expire_due(self, sale_id: int, limit: int) -> int:
        """Expire this sale's due holds; returns how many orders expired."""
        reply = await guarded(
            self._scripts.expire(keys=self._keys(sale_id).for_settle(), args=[limit])
        )
        remaining = int(reply[0])
        n = (len(reply) - 1) // 3
        for i in range(n):
            oid, user, qty = text(reply[1 + i * 3]), text(reply[2 + i * 3]), int(reply[3 + i * 3])
            self._emit("expired", sale_id, remaining, order_id=oid, user_id=user, qty=qty)
        if n:
            self._meter.holds_expired(n)
        return n
