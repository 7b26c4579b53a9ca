"""Points at checkout: members spend points as a discount on a reserved order, earn on paid ones.

The points ledger is in SQL (``inventory/members.py``) and the order in Redis, so paying with
points is two steps made safe by idempotency: the spend is recorded once per order, then the
order is paid; if the pay is refused (the hold ran out, the order is no longer reserved) the
spend is given back by a reversal line, also once per order. Earning reads SQL only: paid
orders of members that have no credit line yet get one (``points_accrual``), and the same pass
undoes the points of orders refunded since (a group that expired unfilled): the spend comes
back and the credit is taken back, each once (``Members.settle_refunds``).
"""

from __future__ import annotations

from dataclasses import dataclass

from flashsale import errors
from flashsale.order import OrderView
from flashsale.service import SaleService
from flashsale.sweeper import Repeat
from inventory.catalog import Catalog
from inventory.errors import Conflict, DomainError, InvalidInput
from inventory.members import Members, NotAMember


@dataclass(frozen=True, slots=True)
class PointsPayment:
    """An order paid partly with points."""

    order: OrderView
    points: int
    balance: int

    def to_json(self) -> dict[str, object]:
        """The API shape: the order with the points spent (one point is one cent)."""
        total = self.order.qty * self.order.unit_price_cents
        return {**self.order.to_json(), "points_spent": self.points,
                "charged_cents": total - self.points, "points_balance": self.balance}  # fmt: skip


class PointsCheckout:
    """Pays reserved orders with points of the member's store (the sale's stream's host)."""

    def __init__(self, sales: SaleService, catalog: Catalog, members: Members) -> None:
        self._sales = sales
        self._catalog = catalog
        self._members = members

    async def host_of_sale(self, sale_id: int) -> str:
        """The host whose store a sale belongs to (a sale outside a show has none)."""
        stream_id = await self._sales.stream_of(sale_id)
        stream = None if stream_id is None else await self._catalog.get_stream(stream_id)
        if stream is None:
            raise NotAMember("this sale belongs to no store")
        return stream.host_id

    async def pay(self, order_id: str, user_id: str, points: int) -> PointsPayment:
        """Spend ``points`` on the caller's reserved order and pay it."""
        order = await self._sales.get_order(order_id)
        if order.user_id != user_id:
            raise errors.OrderNotFound(f"order {order_id} not found")
        if not 1 <= points <= order.qty * order.unit_price_cents:
            raise InvalidInput("points must be 1..the order's total in cents")
        if order.state != "reserved":
            raise errors.OrderStateConflict(f"order {order_id} is {order.state}")
        if (await self._sales.get_sale(order.sale_id)).rehearsal:
            # Practice orders are never paid with a member's real points.
            raise Conflict("a rehearsal's order cannot be paid with points", code="rehearsal")
        host = await self.host_of_sale(order.sale_id)
        balance = await self._members.spend(host, user_id, points, ref=order_id)
        try:
            paid = await self._sales.pay(order_id, user_id)
        except DomainError:
            # Refused for good: give the points back, once. (A crash right here leaves a spend
            # with no payment; spends whose order never paid are the reconciler's to reverse.)
            await self._members.credit(host, user_id, points, "unspend", order_id)
            raise
        return PointsPayment(paid, points, balance)


def points_accrual(members: Members, interval_s: float = 3600.0) -> Repeat:
    """Catches up points the persister did not settle as it wrote the orders; safe anywhere.

    The persister credits and undoes points right after it writes an order
    (``Members.orders_written``). This pass reads every paid order, so it runs rarely: it
    finds what an older persister wrote without doing so, and a spend whose order had already
    ended in SQL when a crash cut the checkout short. Each line is written once (the ledger's
    unique key), so any number of processes may run it.
    """

    async def step() -> int:
        return await members.credit_paid_orders() + await members.settle_refunds()

    return Repeat("points-accrual", step, interval_s)
