"""Payments confirmed by the payment provider: the real path that replaces the simulated Pay.

The provider's signed event (checked at the edge, flashsale/signature.py) names an order; it
is paid through ``SaleService.pay``, the same atomic step as every other payment, so stock,
holds, room events, the persister and the audit see nothing different. Each event id is
applied once: it is remembered in SQL after the order is paid, and a replay of it answers
with the order as it is now. Remembering after paying (not before) means a failure between
the two leaves the event unremembered, and the provider's retry pays nothing twice, because
paying an order that is already paid is recognised below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from flashsale import errors
from flashsale.order import OrderView
from inventory.errors import Conflict, InvalidInput

EVENT_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,100}\Z")
#: The one event type that pays an order; others are acknowledged and ignored.
PAYMENT_SUCCEEDED = "payment.succeeded"


class AmountMismatch(Conflict):
    """The amount the provider took is not the order's total."""

    code = "amount_mismatch"


class Orders(Protocol):
    """What confirming needs of the sale service."""

    async def get_order(self, order_id: str) -> OrderView:
        """The order now."""
        ...

    async def pay(self, order_id: str, caller: str = "") -> OrderView:
        """Pay a reserved order."""
        ...


class AppliedEvents(Protocol):
    """The durable memory of applied provider events (inventory/payments.py)."""

    async def seen(self, event_id: str) -> str | None:
        """The order the event was applied to, or None."""
        ...

    async def record(self, event_id: str, order_id: str, type_: str) -> bool:
        """Remember it; False when it already was."""
        ...


@dataclass(frozen=True, slots=True)
class Confirmation:
    """The outcome of one provider event."""

    order: OrderView | None
    duplicate: bool
    ignored: bool = False

    def to_json(self) -> dict[str, object]:
        """The webhook's answer."""
        out: dict[str, object] = {"received": True, "duplicate": self.duplicate}
        if self.ignored:
            out["ignored"] = True
        if self.order is not None:
            out["order"] = self.order.to_json()
        return out


class PaymentConfirmations:
    """Applies the provider's events to orders, each event id once."""

    def __init__(self, orders: Orders, applied: AppliedEvents) -> None:
        self._orders = orders
        self._applied = applied

    async def apply(
        self, event_id: str, type_: str, order_id: str, amount_cents: int | None
    ) -> Confirmation:
        """Apply one verified event; raises OrderNotFound, HoldExpired, OrderStateConflict."""
        if not EVENT_ID_RE.match(event_id):
            raise InvalidInput("id must be 1..100 of [A-Za-z0-9_.:-]")
        if type_ != PAYMENT_SUCCEEDED:
            return Confirmation(None, duplicate=False, ignored=True)
        prior = await self._applied.seen(event_id)
        if prior is not None:
            return Confirmation(await self._orders.get_order(prior), duplicate=True)
        order = await self._orders.get_order(order_id)
        total = order.qty * order.unit_price_cents
        if amount_cents is not None and amount_cents != total:
            raise AmountMismatch(f"order {order_id} costs {total}, the payment was {amount_cents}")
        try:
            order = await self._orders.pay(order_id)
        except errors.OrderStateConflict:
            # Paid already (by this event before a crash, or by hand): the same outcome.
            order = await self._orders.get_order(order_id)
            if order.state != "paid":
                raise
        await self._applied.record(event_id, order_id, type_)
        return Confirmation(order, duplicate=False)
