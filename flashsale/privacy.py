"""Forgetting a buyer in the sales' Redis state: a pseudonym for their id, kept consistent.

Orders must be kept (stock, money, audits), so the buyer's id in every sale's order records,
per-user counters, idempotency fields, group members and coupon claims becomes one pseudonym,
atomically per sale (a Lua script), and the sale's event stream loses the entries naming them
once they are in SQL.
"""

from __future__ import annotations

from redis.asyncio import Redis

from flashsale.auction import LotForgetter
from flashsale.coupons import CouponKeys
from flashsale.group import GroupKeys
from flashsale.keys import SaleKeys
from flashsale.order import OrderView
from flashsale.persister import Persister
from inventory.ledger import Ledger
from inventory.luascript import load_script


def _sale_ids(keys: list[bytes], prefix: str) -> list[int]:
    """Sale ids of ``<prefix>:{s<ID>}:...`` key names."""
    out = []
    for raw in keys:
        tag = raw.decode()[len(prefix) + 3 :].split("}", 1)[0]
        if tag.isdigit():
            out.append(int(tag))
    return sorted(set(out))


class SaleForgetter:
    """Finds and pseudonymises a user's records in every sale Redis still holds."""

    def __init__(self, redis: Redis, ledger: Ledger, prefix: str) -> None:
        self._redis = redis
        self._ledger = ledger
        self._prefix = prefix
        self._script = load_script(redis, "flashsale", "pseudonymise")
        self._lots = LotForgetter(redis, prefix)  # auction bids and draw entrants

    async def sale_ids(self) -> list[int]:
        """Every sale with order records, a lot or draw entrants in Redis."""
        # A lot still running and a draw still open hold bidders and entrants but no order yet.
        found = [
            k
            for kind in ("orders", "lot", "entrants")
            async for k in self._redis.scan_iter(f"{self._prefix}:{{s*}}:{kind}", 1000)
        ]
        return _sale_ids(found, self._prefix)

    async def live_orders(self, user_id: str) -> list[OrderView]:
        """The user's orders as Redis holds them now (the export's live view)."""
        out = []
        for sale_id in await self.sale_ids():
            for oid, rec in (
                await self._redis.hgetall(SaleKeys.of(self._prefix, sale_id).orders)
            ).items():
                view = OrderView.parse(oid.decode(), rec)
                if view.user_id == user_id:
                    out.append(view)
        return out

    async def forget(self, user_id: str, pseudonym: str) -> int:
        """Pseudonymise the user in every sale; returns the Redis fields and entries changed."""
        changed = 0
        for sale_id in await self.sale_ids():
            keys = SaleKeys.of(self._prefix, sale_id)
            # Everything already in the stream reaches SQL first; then SQL is pseudonymised
            # by the caller and the stream's copies naming the user can go.
            await Persister(self._redis, self._ledger, self._prefix, consumer="privacy").drain(
                sale_id
            )
            groups = GroupKeys.of(self._prefix, sale_id)
            coupons = CouponKeys.of(self._prefix, sale_id)
            hashes = [keys.users, keys.orders, keys.idem, groups.idem, groups.members,
                      groups.groups, coupons.claims, coupons.redeemed]  # fmt: skip
            changed += int(await self._script(keys=hashes, args=[user_id, pseudonym]))
            changed += await self._lots.forget(sale_id, user_id, pseudonym)
            changed += await self._drop_stream_entries(keys.events, user_id)
        return changed

    async def _drop_stream_entries(self, stream: str, user_id: str) -> int:
        doomed = []
        for entry_id, fields in await self._redis.xrange(stream):
            rec = fields.get(b"r", b"").decode()
            if rec.split("|")[1:2] == [user_id]:
                doomed.append(entry_id)
        if doomed:
            await self._redis.xdel(stream, *doomed)
        return len(doomed)
