"""Orders as Redis holds them: ``state|user|qty|unit_price|created_ms|expires_ms``."""

from __future__ import annotations

from dataclasses import dataclass

from flashsale.keys import sale_id_of_order
from inventory.ledger import OrderRecord


@dataclass(frozen=True, slots=True)
class OrderView(OrderRecord):
    """An order as the API returns it; it is also the row the persister writes."""

    @classmethod
    def parse(cls, order_id: str, record: bytes | str) -> OrderView:
        """Decode the compact record the Lua scripts write."""
        text = record.decode() if isinstance(record, bytes) else record
        state, user, qty, price, created, expires = text.split("|")
        return cls(
            id=order_id,
            sale_id=sale_id_of_order(order_id),
            user_id=user,
            qty=int(qty),
            unit_price_cents=int(price),
            state=state,
            created_at_ms=int(created),
            expires_at_ms=int(expires),
        )

    @classmethod
    def of(cls, row: OrderRecord) -> OrderView:
        """The view of a stored row."""
        return cls(
            row.id, row.sale_id, row.user_id, row.qty, row.unit_price_cents, row.state,
            row.created_at_ms, row.expires_at_ms,
        )  # fmt: skip

    def to_json(self) -> dict[str, object]:
        """The API shape."""
        return {
            "id": self.id,
            "sale_id": self.sale_id,
            "user_id": self.user_id,
            "qty": self.qty,
            "unit_price_cents": self.unit_price_cents,
            "total_cents": self.qty * self.unit_price_cents,
            "state": self.state,
            "created_at_ms": self.created_at_ms,
            "expires_at_ms": self.expires_at_ms,
        }
