"""Member prices: which buyers of a sale pay the member price the sale was made with.

The price itself is decided in ``buy.lua`` from the sale's ``mprice`` field, in the same step
that reserves the unit, so the order records what the buyer pays. Whether a buyer is a member
is SQL (``inventory/members.py``); this module answers it without SQL on most buys: a sale
without a member price asks nothing, a member stays a member (there is no leaving), and a
"not a member" answer is kept for a short while only, so a viewer who just joined pays the
member price at once in this process and within ``negative_ttl_s`` in any other. Buyers are
looked up in the store's roster (``flashsale/roster.py``, the store's members in memory, read
again at most every ``negative_ttl_s``); for a store too large to hold, unknown buyers who
arrive together share one SQL read.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from typing import Protocol

from redis.asyncio import Redis

from flashsale.coalescer import Coalescer
from flashsale.keys import SaleKeys
from flashsale.memo import Memo
from flashsale.roster import JoinLog, StoreRosters
from inventory.catalog import Catalog, ProductView
from inventory.ledger import Ledger, SaleRecord


class MemberCheck(JoinLog, Protocol):
    """Which users are members of a host's store, and who joined lately."""

    async def members_among(self, host_id: str, user_ids: Collection[str]) -> set[str]:
        """Those of ``user_ids`` who have joined ``host_id``'s store (one read)."""
        ...


def member_price_for(product: ProductView, sale_price_cents: int) -> int | None:
    """The member price a sale of ``product`` at ``sale_price_cents`` offers, if it is lower."""
    mp = product.member_price_cents
    return mp if mp is not None and mp < sale_price_cents else None


async def kept_member_price(rec: SaleRecord, catalog: Catalog) -> int | None:
    """The member price SQL kept for the sale ``rec`` (None: none), to rebuild it from SQL."""
    if rec.member_price_cents is None:
        # A sale made before migration 0013 did not keep its own: the product's current member
        # price stands in, though its owner may have changed or cleared it since.
        return member_price_for(await catalog.get_product(rec.product_id), rec.price_cents)
    return rec.member_price_cents if rec.member_price_cents < rec.price_cents else None


class _NoLiveState(Exception):
    """The sale has no state in Redis (lost, or purged): decide nothing for now."""


class MemberPrices:
    """Decides per buyer whether the sale's member price applies (cached membership)."""

    def __init__(
        self,
        members: MemberCheck,
        ledger: Ledger,
        catalog: Catalog,
        redis: Redis,
        prefix: str,
        negative_ttl_s: float = 2.0,
        max_entries: int = 100_000,
    ) -> None:
        self._members = members
        self._ledger = ledger
        self._catalog = catalog
        self._redis = redis
        self._prefix = prefix
        self._negative_ttl_s = negative_ttl_s
        self._max = max_entries
        self._host_of: Memo[int, str | None] = Memo(max_entries)  # None: no member price
        self._known: set[tuple[str, str]] = set()
        self._not_yet: dict[tuple[str, str], float] = {}
        # Each store's members in memory, brought up to date at most every negative_ttl_s: a
        # rush of non-members asked SQL once each and bought at a third of the plain rate.
        self._rosters = StoreRosters(members, negative_ttl_s, max_entries)
        # A store too large for a roster: unknown buyers arriving together share one read.
        self._lookups: Coalescer[str] = Coalescer(self._lookup, max_batch=500, max_inflight=1)

    async def _host(self, sale_id: int) -> str | None:
        async def load() -> str | None:
            rec = await self._ledger.get_sale(sale_id)
            if not rec.stream_id:
                return None
            # The sale's own member price, fixed when it was made: not the product's, which
            # its owner may change mid-sale (every process must decide alike).
            sale_id_field, mprice = await self._redis.hmget(
                SaleKeys.of(self._prefix, sale_id).meta, ["id", "mprice"]
            )
            if sale_id_field is None:
                raise _NoLiveState  # not cached: the reconciler may bring it back
            if not mprice:
                return None
            stream = await self._catalog.get_stream(rec.stream_id)
            return stream.host_id if stream is not None else None

        try:
            return await self._host_of.get(sale_id, load)
        except _NoLiveState:
            return None

    def joined(self, host_id: str, user_id: str) -> None:
        """Note a join made in this process, so the member's next buy gets the price at once."""
        self._not_yet.pop((host_id, user_id), None)
        self._rosters.joined(host_id, user_id)
        if len(self._known) < self._max:
            self._known.add((host_id, user_id))

    async def applies(self, sale_id: int, user_id: str) -> bool:
        """Whether ``user_id`` buys ``sale_id`` at its member price."""
        host = await self._host(sale_id)
        if host is None:
            return False
        key = (host, user_id)
        if key in self._known:
            return True
        roster = await self._rosters.get(host)
        if roster is not None:
            return user_id in roster.members
        if self._not_yet.get(key, 0.0) > time.monotonic():
            return False
        if await self._lookups.submit(sale_id, user_id):
            self.joined(host, user_id)
            return True
        if len(self._not_yet) >= self._max:
            self._not_yet.clear()
        self._not_yet[key] = time.monotonic() + self._negative_ttl_s
        return False

    async def _lookup(self, sale_id: int, user_ids: Sequence[str]) -> list[bool]:
        host = await self._host(sale_id)
        found = set() if host is None else await self._members.members_among(host, user_ids)
        return [u in found for u in user_ids]

    async def close(self) -> None:
        """Stop in-flight membership reads."""
        await self._lookups.close()
