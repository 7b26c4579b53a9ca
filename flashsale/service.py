"""The flash-sale service: create, open, close, buy.

Pay and cancel go through flashsale/settlement.py, retiring a finished sale through
flashsale/retirement.py.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from redis.asyncio import Redis

from flashsale import errors
from flashsale.coalescer import BuyRequest, Coalescer
from flashsale.events import NullObserver, SaleEvent, SaleObserver
from flashsale.keys import SaleKeys, active_sales_key
from flashsale.memberprice import MemberPrices, kept_member_price, member_price_for
from flashsale.memo import Memo
from flashsale.meter import BuyMeter, NullMeter
from flashsale.order import OrderView
from flashsale.phases import PhaseReport, SalePhases
from flashsale.redisguard import guarded
from flashsale.redisguard import text as _s
from flashsale.retirement import Retirement
from flashsale.saleterms import check_price, check_terms
from flashsale.scripts import Scripts
from flashsale.settlement import Settlement
from flashsale.view import NOT_SCHEDULED_END_MS, SaleView, now_ms
from inventory.catalog import Actor, Catalog
from inventory.errors import DomainError, NotFound
from inventory.ledger import Ledger, SaleRecord

log = logging.getLogger("livesell.flashsale")

IDEMPOTENCY_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}\Z")
_BUY_ERRORS: dict[str, type[DomainError]] = {
    "sold_out": errors.SoldOut,
    "limit_reached": errors.LimitReached,
    "not_open": errors.NotOpen,
    "ended": errors.Ended,
    "sale_not_found": errors.SaleNotFound,
    "too_many_attempts": errors.TooManyAttempts,
}


@dataclass(frozen=True, slots=True)
class BuyResult:
    """The reply to one buy: the order, the stock left, and whether this was a replay."""

    order: OrderView
    remaining: int
    duplicate: bool


class SaleService:
    """Runs flash sales on Redis (one Lua call per decision) with SQL as the durable record."""

    def __init__(
        self,
        redis: Redis,
        ledger: Ledger,
        catalog: Catalog,
        prefix: str,
        observer: SaleObserver | None = None,
        coalesce: bool = True,
        meter: BuyMeter | None = None,
        member_prices: MemberPrices | None = None,
    ) -> None:
        self._redis = redis
        self._ledger = ledger
        self._catalog = catalog
        self._prefix = prefix
        self._scripts = Scripts(redis)
        self._observer: SaleObserver = observer or NullObserver()
        self._meter: BuyMeter = meter or NullMeter()
        self._coalescer = Coalescer(self._run_batch) if coalesce else None
        self._stream_of: Memo[int, str | None] = Memo()
        self._phases = SalePhases(redis, prefix)
        self._member_prices = member_prices
        self._settlement = Settlement(redis, ledger, self._scripts, prefix, self._emit, self._meter)
        self._retirement = Retirement(redis, ledger, prefix)

    def keys(self, sale_id: int) -> SaleKeys:
        """The Redis keys of a sale."""
        return SaleKeys.of(self._prefix, sale_id)

    def _emit(self, kind: Any, sale_id: int, remaining: int, **fields: Any) -> None:
        try:
            self._observer.sale_event(
                SaleEvent(
                    kind, sale_id, self._stream_of.known(sale_id), remaining, now_ms(), **fields
                )
            )
        except Exception:  # an observer bug must never fail a purchase
            log.exception("sale observer failed")

    async def _call(self, coro: Any) -> Any:
        return await guarded(coro)

    # -- lifecycle -------------------------------------------------------------------------

    async def create_sale(
        self,
        product_id: int,
        quantity: int,
        per_user_limit: int,
        by: Actor,
        price_cents: int | None = None,
        duration_s: int = 300,
        hold_s: int = 300,
        starts_at_ms: int | None = None,
        stream_id: str | None = None,
        lot_stream_id: str | None = None,
    ) -> SaleView:
        """Create a scheduled sale of a product ``by`` owns (or any, for an admin).

        It opens at ``starts_at_ms`` or when ``open_sale`` is called.
        """
        check_terms(product_id, quantity, per_user_limit, duration_s, hold_s, starts_at_ms)
        product = await self._catalog.owned_product(product_id, by)
        price = product.price_cents if price_cents is None else price_cents
        check_price(price)
        if stream_id is not None and await self._catalog.get_stream(stream_id) is None:
            raise NotFound(f"stream {stream_id} not found", code="stream_not_found")
        start = starts_at_ms or 0
        end = start + duration_s * 1000 if start else NOT_SCHEDULED_END_MS
        member_price = member_price_for(product, price)
        rec = await self._ledger.create_sale(
            product_id, price, quantity, per_user_limit, start, end, hold_s, by.user_id, stream_id,
            lot_stream_id, member_price,
        )  # fmt: skip
        await self._init_redis(rec, duration_s * 1000, member_price)
        self._stream_of.put(rec.id, stream_id)
        self._emit("scheduled", rec.id, quantity)
        return await self.get_sale(rec.id)

    async def _init_redis(
        self, rec: SaleRecord, duration_ms: int, member_price: int | None
    ) -> None:
        k = self.keys(rec.id)
        fields: list[Any] = [
            "id", rec.id, "state", "scheduled", "start_ms", rec.starts_at_ms,
            "end_ms", rec.ends_at_ms, "duration_ms", duration_ms, "total", rec.quantity,
            "remaining", rec.quantity, "limit", rec.per_user_limit, "hold_ms", rec.hold_s * 1000,
            "price", rec.price_cents, "seq", 0, "stream", rec.stream_id or "",
            "mprice", "" if member_price is None else member_price,
        ]  # fmt: skip
        await self._call(self._scripts.control(keys=[k.meta], args=["init", *fields]))
        await self._call(self._redis.sadd(active_sales_key(self._prefix), rec.id))

    async def _ensure_redis(self, rec: SaleRecord) -> None:
        # A sale whose Redis half is missing because it was created while Redis was down is
        # initialised from SQL ('init' never overwrites, so this is safe to repeat). One that
        # already sold (Redis lost its data, or its retention ran out) is never rebuilt with
        # its full stock: that would sell its units again.
        if await self._call(self._redis.exists(self.keys(rec.id).meta)):
            return
        if rec.state == "closed":
            raise errors.Ended(f"sale {rec.id} has ended")
        if await self._ledger.orders_for_sale(rec.id):
            raise errors.RedisUnavailable(
                f"sale {rec.id} has orders but no live state in Redis; it needs reconciling"
            )
        duration = rec.ends_at_ms - rec.starts_at_ms if rec.starts_at_ms else 300_000
        await self._init_redis(rec, duration, await kept_member_price(rec, self._catalog))

    async def own_sale(self, sale_id: int, by: Actor) -> SaleView:
        """The sale, once ``by`` is shown to own its product (or be an admin): Forbidden if not.

        What sells a product (a group offer, coupons, a draw) is its owner's to add.
        """
        sale = await self.get_sale(sale_id)
        await self._catalog.owned_product(sale.product_id, by)
        return sale

    async def get_sale(self, sale_id: int) -> SaleView:
        """The sale with its live state and remaining stock."""
        rec = await self._ledger.get_sale(sale_id)
        return (await self.live_views([rec]))[0]

    async def live_views(self, records: Sequence[SaleRecord]) -> list[SaleView]:
        """The sales with their live window, state and stock, read together with Redis's clock."""
        if not records:
            return []
        async with self._redis.pipeline(transaction=False) as p:
            for rec in records:
                self._stream_of.put(rec.id, rec.stream_id)
                p.hmget(self.keys(rec.id).meta, ["state", "start_ms", "end_ms", "remaining"])
            p.time()
            *metas, (sec, usec) = await self._call(p.execute())
        clock = int(sec) * 1000 + int(usec) // 1000
        views = []
        for rec, m in zip(records, metas, strict=True):
            if m[0] is None:  # never initialised, or retired and past its retention
                held = await self._ledger.units_held(rec.id)
                views.append(SaleView(**asdict(rec), remaining=rec.quantity - held, clock_ms=clock))
                continue
            live = {"starts_at_ms": int(m[1]), "ends_at_ms": int(m[2]), "state": _s(m[0])}
            views.append(SaleView(**{**asdict(rec), **live}, remaining=int(m[3]), clock_ms=clock))
        return views

    async def sales_for_stream(self, stream_id: str) -> list[SaleRecord]:
        """The stream's sales that SQL knows neither as closed nor as ended by the clock."""
        return await self._ledger.sales_for_stream(stream_id, now_ms())

    async def stream_of(self, sale_id: int) -> str | None:
        """The stream a sale sells in (None: none); raises SaleNotFound for an unknown sale."""

        async def load() -> str | None:
            return (await self._ledger.get_sale(sale_id)).stream_id

        return await self._stream_of.get(sale_id, load)

    def known_stream_of(self, sale_id: int) -> str | None:
        """The sale's stream if this process has already looked it up, without asking SQL."""
        return self._stream_of.known(sale_id)

    async def remaining_many(self, sale_ids: Sequence[int]) -> list[int | None]:
        """The live remaining stock of each sale, in one round trip (None: no live state)."""
        async with self._redis.pipeline(transaction=False) as p:
            for sale_id in sale_ids:
                p.hget(self.keys(sale_id).meta, "remaining")
            replies = await self._call(p.execute())
        return [None if r is None else int(r) for r in replies]

    async def phase(self, sale_id: int, known: int = 0) -> PhaseReport | None:
        """Record the sale's phase transition if it has one (see flashsale/phases.py)."""
        return await self._call(self._phases.check(sale_id, known))

    async def phases(self, known: Sequence[tuple[int, int]]) -> list[PhaseReport | None]:
        """``phase`` for each (sale id, known), in one round trip."""
        return await self._call(self._phases.check_many(known))

    async def open_sale(self, sale_id: int, countdown_s: int = 0) -> SaleView:
        """Open a sale now, or after ``countdown_s`` seconds, for its configured duration."""
        if not 0 <= countdown_s <= 3600:
            raise errors.BadSaleInput("countdown_s must be 0..3600")
        await self._ensure_redis(await self._ledger.get_sale(sale_id))
        await self._control(sale_id, "opened", "open", countdown_s * 1000)
        return await self.get_sale(sale_id)

    async def close_sale(self, sale_id: int) -> SaleView:
        """End a sale now. Reservations already made can still be paid within their hold."""
        await self._ledger.get_sale(sale_id)
        await self._control(sale_id, "closed", "close")
        return await self.get_sale(sale_id)

    async def _control(self, sale_id: int, event: str, *args: Any) -> None:
        """Run one control.lua command, keep SQL's window in step, emit ``event`` on a change."""
        reply = await self._call(self._scripts.control(keys=[self.keys(sale_id).meta], args=args))
        code = _s(reply[0])
        if code == "ended":
            raise errors.Ended(f"sale {sale_id} has ended")
        if code == "sale_not_found":
            raise errors.SaleNotFound(f"sale {sale_id} has no live state")
        state, start, end, remaining = _s(reply[1]), int(reply[2]), int(reply[3]), int(reply[4])
        await self._ledger.set_sale_window(sale_id, state, start, end)
        if code == "ok":
            self._emit(event, sale_id, remaining)

    async def close_stream_sales(self, stream_id: str) -> list[int]:
        """Close the stream's open and counting-down sales (its show ended); returns their ids.

        Scheduled sales that were never started stay as they are: nobody can buy them, and the
        host may start them in a later show.
        """
        closed = []
        for view in await self.live_views(await self.sales_for_stream(stream_id)):
            if view.to_json()["state"] in ("open", "countdown"):
                await self.close_sale(view.id)
                closed.append(view.id)
        return closed

    # -- buying ----------------------------------------------------------------------------

    async def _run_batch(self, sale_id: int, batch: Sequence[BuyRequest]) -> list[Any]:
        args: list[Any] = [len(batch)]
        for user, key, qty, member in batch:
            args += [user, key, qty, member]
        started = time.perf_counter()
        reply = await self._scripts.buy(keys=self.keys(sale_id).for_buy(), args=args)
        self._meter.lua_call(time.perf_counter() - started, len(batch))
        return list(reply)

    async def buy(
        self,
        sale_id: int,
        user_id: str,
        idempotency_key: str,
        qty: int = 1,
        public_name: str | None = None,
    ) -> BuyResult:
        """Reserve ``qty`` units for ``user_id``; a retry with the same key gets the same order."""
        try:
            result = await self._buy(sale_id, user_id, idempotency_key, qty, public_name)
        except DomainError as exc:
            self._meter.buy_outcome(exc.code)
            raise
        self._meter.buy_outcome("duplicate" if result.duplicate else "reserved")
        return result

    async def _buy(
        self, sale_id: int, user_id: str, idempotency_key: str, qty: int, public_name: str | None
    ) -> BuyResult:
        if not IDEMPOTENCY_KEY_RE.match(idempotency_key):
            raise errors.BadSaleInput("Idempotency-Key must be 1..80 of [A-Za-z0-9_.:-]")
        if not 1 <= qty <= 1000:
            raise errors.BadSaleInput("qty must be 1..1000")
        member = self._member_prices is not None and await self._call(
            self._member_prices.applies(sale_id, user_id)
        )
        request = (user_id, idempotency_key, qty, 1 if member else 0)
        if self._coalescer is not None:
            reply = await self._call(self._coalescer.submit(sale_id, request))
        else:
            reply = (await self._call(self._run_batch(sale_id, [request])))[0]
        code = _s(reply[0])
        if code in _BUY_ERRORS:
            raise _BUY_ERRORS[code](f"{code.replace('_', ' ')} (sale {sale_id})")
        order = OrderView.parse(_s(reply[1]), reply[2])
        remaining = int(reply[3])
        duplicate = code == "duplicate"
        if not duplicate:
            self._emit(
                "reserved", sale_id, remaining, order_id=order.id, user_id=user_id, qty=qty,
                public_name=public_name,
            )  # fmt: skip
            if remaining == 0:
                self._emit("sold_out", sale_id, 0)
        return BuyResult(order, remaining, duplicate)

    # -- orders (flashsale/settlement.py) --------------------------------------------------

    async def get_order(self, order_id: str) -> OrderView:
        """The order's live state from Redis (falling back to SQL once the sale is purged)."""
        return await self._settlement.get_order(order_id)

    async def pay(self, order_id: str, caller: str = "") -> OrderView:
        """Confirm payment of a reserved order (idempotent). ``caller`` '' means any user."""
        return await self._settlement.settle(order_id, "pay", caller)

    async def cancel(self, order_id: str, caller: str = "") -> OrderView:
        """Cancel a reserved order and return its stock (idempotent)."""
        return await self._settlement.settle(order_id, "cancel", caller)

    async def expire_due(self, sale_id: int, limit: int = 500) -> int:
        """Expire this sale's due holds; returns how many orders expired."""
        return await self._settlement.expire_due(sale_id, limit)

    async def retire_if_done(self, sale_id: int, group: str = "persister") -> bool:
        """Stop watching a sale that is done (see flashsale/retirement.py); True if retired."""
        return await self._retirement.retire_if_done(sale_id, group)

    async def active_sale_ids(self) -> list[int]:
        """Ids of sales the background workers watch."""
        members = await self._call(self._redis.smembers(active_sales_key(self._prefix)))
        return sorted(int(m) for m in members)

    async def close(self) -> None:
        """Stop in-flight batches."""
        if self._coalescer is not None:
            await self._coalescer.close()
        if self._member_prices is not None:
            await self._member_prices.close()
