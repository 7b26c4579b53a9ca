"""Redis key layout. Every key of one sale shares the hash tag ``{s<ID>}`` (Cluster-ready)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SaleKeys:
    """The keys of one sale."""

    meta: str
    users: str
    idem: str
    orders: str
    holds: str
    events: str
    #: The sale's last announced phase transitions (phase.lua).
    phases: str

    @classmethod
    def of(cls, prefix: str, sale_id: int) -> SaleKeys:
        """Keys of sale ``sale_id`` under ``prefix``."""
        base = f"{prefix}:{{s{sale_id}}}"
        return cls(
            meta=f"{base}:meta",
            users=f"{base}:users",
            idem=f"{base}:idem",
            orders=f"{base}:orders",
            holds=f"{base}:holds",
            events=f"{base}:events",
            phases=f"{base}:phases",
        )

    def for_buy(self) -> list[str]:
        """KEYS of buy.lua."""
        return [self.meta, self.users, self.idem, self.orders, self.holds, self.events]

    def for_settle(self) -> list[str]:
        """KEYS of settle.lua and expire.lua."""
        return [self.meta, self.users, self.orders, self.holds, self.events]


def active_sales_key(prefix: str) -> str:
    """The set of sale ids the reaper and persister watch (its own slot; read on its own)."""
    return f"{prefix}:sales:active"


def sale_id_of_order(order_id: str) -> int:
    """Order ids are ``<sale_id>-<seq>``, so any process finds an order's keys from its id."""
    head, sep, tail = order_id.partition("-")
    if not sep or not head.isdigit() or not tail.isdigit() or len(order_id) > 40:
        raise ValueError(f"malformed order id {order_id!r}")
    return int(head)
