"""Rebuilding a sale's Redis state from SQL after Redis lost it (a failover, a wiped instance).

SQL holds every order the persister wrote; the sale's event stream, when it survived, holds the
ones it had not written yet, so it is replayed into SQL first. From SQL the rebuild derives what
the sale scripts need to go on without overselling: remaining stock (quantity minus units in
reserved and paid orders), each user's units, the holds (reserved orders and their expiry),
every order's record (the audit compares them with SQL), and an order sequence far past any id
handed out before. One Lua call (``flashsale/lua/rebuild.lua``) over the sale's own keys (one
hash tag, so one Cluster slot) swaps it in, so no buy sees half a sale.

Not rebuilt, because SQL does not hold them (see docs/reliability.md): idempotency answers (a
retry after the rebuild is judged afresh, within the per-user limit), group-buy groups and
offers (members' reserved units fall back to ordinary holds that expire at the group's deadline),
coupon drops and claims, auction lots and bids, draws. Points are SQL only and unaffected.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from flashsale.keys import SaleKeys, active_sales_key
from flashsale.memberprice import kept_member_price
from flashsale.persister import GROUP, Persister
from flashsale.redisguard import guarded, text
from flashsale.view import now_ms
from inventory.catalog import Catalog
from inventory.errors import Conflict
from inventory.ledger import Ledger, OrderRecord, SaleRecord
from inventory.luascript import load_script

log = logging.getLogger("livesell.reconciler")

#: Order numbers skipped after a rebuild: room for the ids of writes Redis lost (a rush of
#: 50,000 buys/s with seconds of replication lag stays far below it), so none is reused.
SEQ_GAP = 1_000_000
#: Fallback window of a sale that was never opened (SQL does not keep its duration then).
UNOPENED_DURATION_MS = 300_000
_ATTEMPTS = 5


class SaleStatePresent(Conflict):
    """The sale still has live state in Redis; rebuilding it would drop what SQL lacks."""

    code = "sale_state_present"


class SaleStillMoving(Conflict):
    """Events kept arriving while the sale was being rebuilt (its state is live: use no force)."""

    code = "sale_still_moving"


@dataclass(frozen=True, slots=True)
class Rebuild:
    """What one rebuild put back."""

    sale_id: int
    remaining: int
    reserved: int
    paid: int
    orders: int
    holds: int
    buyers: int
    seq: int

    def to_json(self) -> dict[str, Any]:
        """The JSON shape ``livesell reconcile`` prints."""
        return {
            "rebuilt": True, "sale_id": self.sale_id, "remaining": self.remaining,
            "reserved": self.reserved, "paid": self.paid, "orders": self.orders,
            "holds": self.holds, "buyers": self.buyers, "next_order_seq": self.seq + 1,
        }  # fmt: skip


def _order_number(order_id: str) -> int:
    return int(order_id.partition("-")[2])


def _record(o: OrderRecord) -> str:
    """The compact record the sale scripts keep (flashsale/order.py)."""
    return f"{o.state}|{o.user_id}|{o.qty}|{o.unit_price_cents}|{o.created_at_ms}|{o.expires_at_ms}"


class Reconciler:
    """Rebuilds sales' Redis state from SQL (``livesell reconcile``, and at start-up)."""

    def __init__(self, redis: Redis, ledger: Ledger, catalog: Catalog, prefix: str) -> None:
        self._redis = redis
        self._ledger = ledger
        self._catalog = catalog
        self._prefix = prefix
        self._script = load_script(redis, "flashsale", "rebuild")

    async def reconcile(self, sale_id: int, force: bool = False) -> Rebuild:
        """Rebuild one sale; ``SaleStatePresent`` if its state exists and ``force`` is off."""
        rec = await self._ledger.get_sale(sale_id)
        k = SaleKeys.of(self._prefix, sale_id)
        if not force and await guarded(self._redis.exists(k.meta)):
            raise SaleStatePresent(f"sale {sale_id} has live state in Redis (use --force)")
        for _ in range(_ATTEMPTS):
            last = await self._replay_stream(sale_id, k)
            orders = await self._ledger.orders_for_sale(sale_id)
            args = await self._arguments(rec, orders, force, last)
            reply = await guarded(self._script(keys=self._keys(k), args=args))
            code = text(reply[0])
            if code == "present":
                raise SaleStatePresent(f"sale {sale_id} has live state in Redis (use --force)")
            if code == "ok":
                await guarded(self._redis.sadd(active_sales_key(self._prefix), sale_id))
                done = self._summary(sale_id, orders, int(reply[1]), int(reply[2]))
                log.warning("sale %d rebuilt from SQL: %s", sale_id, done.to_json())
                return done
        raise SaleStillMoving(f"sale {sale_id} kept changing during the rebuild")

    async def reconcile_missing(self) -> list[Rebuild]:
        """Rebuild every sale SQL knows as running (or holding reservations) that Redis lost."""
        done = []
        for sale_id in await self._ledger.sales_to_reconcile(now_ms()):
            try:
                done.append(await self.reconcile(sale_id))
            except SaleStatePresent:
                # The usual case: Redis has it (or another worker just rebuilt it). The active
                # set has a slot of its own and may be lost alone: the workers must watch it.
                await guarded(self._redis.sadd(active_sales_key(self._prefix), sale_id))
        return done

    @staticmethod
    def _keys(k: SaleKeys) -> list[str]:
        return [k.meta, k.users, k.idem, k.orders, k.holds, k.events, k.phases]

    async def _replay_stream(self, sale_id: int, k: SaleKeys) -> str:
        """Write the surviving stream's events into SQL; the stream's last id ('' = none)."""
        last = await guarded(self._redis.xrevrange(k.events, count=1))
        if not last:
            return ""
        # The group is created from the stream's start if it was lost: replaying is idempotent.
        await Persister(self._redis, self._ledger, self._prefix, consumer="reconcile").drain(
            sale_id
        )
        return text(last[0][0])

    async def _arguments(
        self, rec: SaleRecord, orders: list[OrderRecord], force: bool, last: str
    ) -> list[Any]:
        mprice = await kept_member_price(rec, self._catalog)  # not the product's: edited since
        started = rec.starts_at_ms > 0
        duration = rec.ends_at_ms - rec.starts_at_ms if started else UNOPENED_DURATION_MS
        held = sum(o.qty for o in orders if o.state in ("reserved", "paid"))
        meta: list[Any] = [
            "id", rec.id, "state", rec.state, "start_ms", rec.starts_at_ms,
            "end_ms", rec.ends_at_ms, "duration_ms", duration, "total", rec.quantity,
            "remaining", rec.quantity - held, "limit", rec.per_user_limit,
            "hold_ms", rec.hold_s * 1000, "price", rec.price_cents, "stream", rec.stream_id or "",
            "mprice", "" if mprice is None else mprice,
        ]  # fmt: skip
        users = Counter[str]()
        for o in orders:
            if o.state in ("reserved", "paid"):
                users[o.user_id] += o.qty
        floor = max((_order_number(o.id) for o in orders), default=0)
        args: list[Any] = ["1" if force else "0", last, GROUP, floor, SEQ_GAP]
        args += [len(meta) // 2, *meta, len(orders)]
        for o in orders:
            args += [o.id, _record(o)]
        args.append(len(users))
        for user, units in users.items():
            args += [user, units]
        return args

    @staticmethod
    def _summary(sale_id: int, orders: list[OrderRecord], remaining: int, seq: int) -> Rebuild:
        units = Counter[str]()
        for o in orders:
            units[o.state] += o.qty
        buyers = {o.user_id for o in orders if o.state in ("reserved", "paid")}
        holds = sum(1 for o in orders if o.state == "reserved")
        return Rebuild(sale_id, remaining, units["reserved"], units["paid"], len(orders), holds,
                       len(buyers), seq)  # fmt: skip
