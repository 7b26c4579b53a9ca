"""Group buys: an offer on a sale's stock; viewers open groups that fill or expire atomically.

Every decision is one Lua call over the sale's own keys (hash tag ``{s<ID>}``), so group units
and flash-sale units come out of one ``remaining`` counter and one per-user count: they can
never oversell together. A member's unit is an ordinary order from the moment they join (at
the group price, held until the group's deadline, payable early); a filled group gives each
reserved member order the sale's payment hold; an expired one releases every unit once and
marks paid orders ``refund``. See docs/social.md.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from flashsale import errors
from flashsale.coalescer import Coalescer
from flashsale.events import NullObserver, SaleEvent, SaleEventKind, SaleObserver
from flashsale.group import (
    GroupKeys,
    GroupNotFound,
    GroupOffer,
    GroupResult,
    GroupView,
    active_groupbuys_key,
    sale_id_of_group,
)
from flashsale.keys import active_sales_key
from flashsale.order import OrderView
from flashsale.redisguard import guarded, text
from flashsale.service import IDEMPOTENCY_KEY_RE, SaleService
from inventory.catalog import Actor
from inventory.errors import Conflict, DomainError, Gone
from inventory.luascript import load_script

log = logging.getLogger("livesell.groupbuy")

MAX_GROUP_SIZE = 20
GroupRequest = tuple[str, str, str]  # 'open' | 'join', user, idempotency key | group id


class GroupFull(Conflict):
    """The group has already filled."""

    code = "group_full"


class GroupExpired(Gone):
    """The group's time ran out before it filled."""

    code = "group_expired"


class NoGroupOffer(Conflict):
    """The sale offers no group buy (or the host closed the offer)."""

    code = "no_group_offer"


class LeftGroup(Conflict):
    """The user was in this group and left it (cancelled or let the hold lapse)."""

    code = "left_group"


_ERRORS: dict[str, type[DomainError]] = {
    "group_not_found": GroupNotFound,
    "group_full": GroupFull,
    "group_expired": GroupExpired,
    "no_group_offer": NoGroupOffer,
    "sold_out": errors.SoldOut,
    "limit_reached": errors.LimitReached,
    "not_open": errors.NotOpen,
    "ended": errors.Ended,
    "sale_not_found": errors.SaleNotFound,
    "too_many_attempts": errors.TooManyAttempts,
}


class GroupBuys:
    """Runs group buys over a ``SaleService``'s sales (one Lua call per decision)."""

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
        self._join = load_script(redis, "flashsale", "group_common", "group_join")
        self._expire = load_script(redis, "flashsale", "group_common", "group_expire")
        # Concurrent opens and joins of one sale ride one script call, as buys do.
        self._coalescer = Coalescer(self._run_batch) if coalesce else None

    def keys(self, sale_id: int) -> GroupKeys:
        """The group keys of a sale."""
        return GroupKeys.of(self._prefix, sale_id)

    async def stream_of(self, sale_id: int) -> str | None:
        """The stream a sale sells in (cached: a sale never changes stream)."""
        return await self._sales.stream_of(sale_id)

    async def _emit(self, kind: SaleEventKind, group: GroupView, remaining: int,
                    **fields: Any) -> None:  # fmt: skip
        try:
            stream = await self.stream_of(group.sale_id)
            self._observer.sale_event(SaleEvent(
                kind, group.sale_id, stream, remaining, int(time.time() * 1000),
                ref_id=group.id, size=group.size, count=len(group.members),
                deadline_ms=group.deadline_ms, **fields,
            ))  # fmt: skip
        except DomainError:
            log.warning("group event %s of %s not announced", kind, group.id)
        except Exception:  # an observer bug must never fail a purchase
            log.exception("sale observer failed")

    # -- the offer -------------------------------------------------------------------------

    async def offer(
        self, sale_id: int, price_cents: int, size: int, ttl_s: int, by: Actor
    ) -> GroupOffer:
        """Offer (or re-price) a group buy on a sale; open groups keep their own terms."""
        if not 2 <= size <= MAX_GROUP_SIZE:
            raise errors.BadSaleInput(f"size must be 2..{MAX_GROUP_SIZE}")
        if not 1 <= ttl_s <= 86400:
            raise errors.BadSaleInput("ttl_s must be 1..86400")
        if not 0 <= price_cents <= 10**12:
            raise errors.BadSaleInput("price_cents must be between 0 and 10^12")
        sale = await self._sales.own_sale(sale_id, by)
        if sale.state == "closed":
            raise errors.Ended(f"sale {sale_id} has ended")
        k = self.keys(sale_id)
        await guarded(self._redis.hset(k.offer, mapping={
            "state": "open", "price": price_cents, "size": size, "ttl_ms": ttl_s * 1000,
        }))  # fmt: skip
        await guarded(self._redis.sadd(active_groupbuys_key(self._prefix), sale_id))
        self._offered(sale_id, sale.remaining, sale.stream_id)
        return GroupOffer(sale_id, "open", price_cents, size, ttl_s)

    async def close_offer(self, sale_id: int) -> GroupOffer:
        """Stop new groups and joins; open groups still fill or expire (and release) on time."""
        got = await self.get_offer(sale_id)
        if got is None:
            raise NoGroupOffer(f"sale {sale_id} has no group offer")
        await guarded(self._redis.hset(self.keys(sale_id).offer, "state", "closed"))
        self._offered(sale_id, 0, self._sales.known_stream_of(sale_id))
        return GroupOffer(sale_id, "closed", got.price_cents, got.size, got.ttl_s)

    def _offered(self, sale_id: int, remaining: int, stream_id: str | None) -> None:
        # The room reads the offer itself; the event says only that it changed.
        try:
            at = int(time.time() * 1000)
            self._observer.sale_event(SaleEvent("group_offered", sale_id, stream_id, remaining,
                                                at, ref_id=f"{sale_id}-offer"))  # fmt: skip
        except Exception:
            log.exception("sale observer failed")

    async def get_offer(self, sale_id: int) -> GroupOffer | None:
        """The sale's group-buy terms, or None."""
        m = await guarded(
            self._redis.hmget(self.keys(sale_id).offer, ["state", "price", "size", "ttl_ms"])
        )
        if m[1] is None:
            return None
        return GroupOffer(sale_id, text(m[0]), int(m[1]), int(m[2]), int(m[3]) // 1000)

    # -- groups ----------------------------------------------------------------------------

    async def open_group(
        self, sale_id: int, user_id: str, idempotency_key: str, public_name: str | None = None
    ) -> GroupResult:
        """Open a group, reserving one unit for its opener; a retry with the key replays it."""
        if not IDEMPOTENCY_KEY_RE.match(idempotency_key):
            raise errors.BadSaleInput("Idempotency-Key must be 1..80 of [A-Za-z0-9_.:-]")
        return await self._decide(sale_id, "open", user_id, idempotency_key, public_name)

    async def join_group(
        self, group_id: str, user_id: str, public_name: str | None = None
    ) -> GroupResult:
        """Join a group, reserving one unit; joining again replays the first join."""
        sale_id = sale_id_of_group(group_id)
        return await self._decide(sale_id, "join", user_id, group_id, public_name)

    async def _run_batch(self, sale_id: int, batch: Sequence[GroupRequest]) -> list[Any]:
        args: list[Any] = [len(batch)]
        for request in batch:
            args += request
        return list(await self._join(keys=self.keys(sale_id).for_join(), args=args))

    async def _decide(
        self, sale_id: int, action: str, user_id: str, arg: str, public_name: str | None
    ) -> GroupResult:
        request = (action, user_id, arg)
        if self._coalescer is not None:
            reply = await guarded(self._coalescer.submit(sale_id, request))
        else:
            reply = (await guarded(self._run_batch(sale_id, [request])))[0]
        code = text(reply[0])
        if code in _ERRORS:
            raise _ERRORS[code](f"{code.replace('_', ' ')} (sale {sale_id})")
        if code not in ("ok", "filled", "duplicate"):  # a remembered refusal of an open
            raise _ERRORS.get(code, Conflict)(f"{code.replace('_', ' ')} (sale {sale_id})")
        group = GroupView.parse(text(reply[1]), reply[4], reply[5])
        order = OrderView.parse(text(reply[2]), reply[3])
        remaining = int(reply[6])
        duplicate = code == "duplicate"
        if duplicate and action == "join" and order.state not in ("reserved", "paid"):
            raise LeftGroup(f"you left group {group.id}")
        if not duplicate:
            opened = action == "open"
            await self._emit("group_opened" if opened else "group_joined", group, remaining,
                             order_id=order.id, qty=1, public_name=public_name)  # fmt: skip
            if code == "filled":
                await self._emit("group_filled", group, remaining)
            if remaining == 0:
                self._sale_event("sold_out", sale_id, 0)
        return GroupResult(group, order, remaining, duplicate)

    def _sale_event(self, kind: SaleEventKind, sale_id: int, remaining: int, qty: int = 0) -> None:
        try:
            stream = self._sales.known_stream_of(sale_id)
            self._observer.sale_event(
                SaleEvent(kind, sale_id, stream, remaining, int(time.time() * 1000), qty=qty)
            )
        except Exception:
            log.exception("sale observer failed")

    async def get_group(self, group_id: str) -> GroupView:
        """One group with its progress."""
        k = self.keys(sale_id_of_group(group_id))
        async with self._redis.pipeline(transaction=False) as p:
            p.hget(k.groups, group_id)
            p.hget(k.members, group_id)
            record, members = await guarded(p.execute())
        if record is None:
            raise GroupNotFound(f"group {group_id} not found")
        return GroupView.parse(group_id, record, members)

    async def open_groups(self, sale_id: int, limit: int = 50) -> list[GroupView]:
        """The sale's groups still open, soonest deadline first (for the room's list)."""
        k = self.keys(sale_id)
        ids = [text(g) for g in await guarded(self._redis.zrange(k.due, 0, limit - 1))]
        if not ids:
            return []
        async with self._redis.pipeline(transaction=False) as p:
            p.hmget(k.groups, ids)
            p.hmget(k.members, ids)
            records, members = await guarded(p.execute())
        return [
            GroupView.parse(g, r, m)
            for g, r, m in zip(ids, records, members, strict=True)
            if r is not None
        ]

    # -- expiry ----------------------------------------------------------------------------

    async def expire_due(self, sale_id: int, limit: int = 200) -> int:
        """Expire this sale's unfilled groups past their deadline; returns how many expired."""
        k = self.keys(sale_id)
        reply = await guarded(self._expire(keys=k.for_expire(), args=[limit]))
        remaining = int(reply[0])
        n = (len(reply) - 1) // 3
        for i in range(n):
            gid, released, refunds = (
                text(reply[1 + i * 3]),
                int(reply[2 + i * 3]),
                int(reply[3 + i * 3]),
            )
            log.info("group %s expired: %d units released, %d refunds due", gid, released, refunds)
            group = await self.get_group(gid)
            await self._emit("group_expired", group, remaining, qty=released)
            if released:  # units back on sale: the room re-reads the sale's phase (restocked)
                self._sale_event("expired", sale_id, remaining, released)
        if n:
            # A refund may be written after the sale left the active set: bring it back so the
            # persister records it (the reaper retires it again once all is persisted).
            await guarded(self._redis.sadd(active_sales_key(self._prefix), sale_id))
        return n

    async def retire_if_done(self, sale_id: int) -> bool:
        """Stop sweeping a sale once it has ended and has no open group (Redis's clock)."""
        k = self.keys(sale_id)
        m = await guarded(self._redis.hmget(k.sale.meta, ["state", "end_ms"]))
        if m[0] is not None:
            sec, usec = await guarded(self._redis.time())
            ended = text(m[0]) == "closed" or sec * 1000 + usec // 1000 >= int(m[1])
            if not ended or await guarded(self._redis.zcard(k.due)):
                return False
        await guarded(self._redis.srem(active_groupbuys_key(self._prefix), sale_id))
        return True

    async def active_sale_ids(self) -> list[int]:
        """Ids of sales with a group offer still being swept."""
        members = await guarded(self._redis.smembers(active_groupbuys_key(self._prefix)))
        return sorted(int(m) for m in members)

    async def close(self) -> None:
        """Stop in-flight batches."""
        if self._coalescer is not None:
            await self._coalescer.close()
