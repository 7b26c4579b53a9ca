"""Live auctions: timed lots whose bids are decided atomically in Redis, by Redis's clock.

A lot is a sale of one unit that is never opened for buying (buy.lua refuses it as not open);
the lot's keys share the sale's hash tag ``{s<ID>}``. Each bid is accepted or refused by one
Lua call (concurrent bids of a lot ride one call, and all lots' calls one pipelined round
trip); a bid within the extension window of the end moves the end. The auction sweeper
closes due lots once and gives the winner an ordinary reserved order with the sale's payment
hold, so pay, cancel, expiry and the persister handle it as any order. See docs/auctions.md.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from flashsale import errors
from flashsale.lot import (
    BID_ERRORS,
    MAX_CENTS,
    AuctionEvent,
    AuctionEventKind,
    BidResult,
    BidTooLow,
    Lot,
    LotKeys,
    LotNotFound,
    NoRunnerUp,
    active_lots_key,
    stream_lots_key,
)
from flashsale.lotbatcher import LotBatcher
from flashsale.memo import Memo
from flashsale.redisguard import guarded, text
from flashsale.service import IDEMPOTENCY_KEY_RE, SaleService
from flashsale.sweeper import Sweeper
from inventory.catalog import Actor
from inventory.errors import Conflict
from inventory.luascript import load_script
from inventory.tasks import cancel_all, supervise

log = logging.getLogger("livesell.auction")

BidRequest = tuple[str, str, int, str]  # user, idempotency key, amount, public name or ''


class AuctionObserver(Protocol):
    """Hears lot events (the room publishes them as sequenced events)."""

    async def auction_event(self, event: AuctionEvent) -> None:
        """Take one event, after the change is committed."""
        ...


class NullAuctionObserver:
    """Ignores every lot event."""

    async def auction_event(self, event: AuctionEvent) -> None:
        """Ignore ``event``."""


class Auctions:
    """Runs lots over a ``SaleService``'s sales (one Lua call per decision)."""

    def __init__(
        self,
        redis: Redis,
        sales: SaleService,
        prefix: str,
        observer: AuctionObserver | None = None,
        coalesce: bool = True,
        announce_s: float = 0.2,
    ) -> None:
        self._redis = redis
        self._announce_s = announce_s
        self._sales = sales
        self._prefix = prefix
        self._observer: AuctionObserver = observer or NullAuctionObserver()
        self._bid = load_script(redis, "flashsale", "auction_common", "auction_bid")
        self._control = load_script(redis, "flashsale", "auction_common", "auction_close")
        # Concurrent bids of every lot ride one pipelined round trip (flashsale/lotbatcher.py).
        self._batcher = LotBatcher(self._run_batches) if coalesce else None
        #: Lots with accepted bids not yet announced (value: whether the end was extended).
        self._unannounced: dict[int, bool] = {}
        self._announcers: dict[int, asyncio.Task[None]] = {}
        #: Each lot's stream, which never changes: the room checks it on every socket bid.
        self._streams: Memo[int, str | None] = Memo()

    def _keys(self, lot_id: int, *, idem: bool) -> list[str]:
        k, s = LotKeys.of(self._prefix, lot_id), self._sales.keys(lot_id)
        last = k.idem if idem else k.offered
        return [k.lot, k.bids, s.meta, s.users, s.orders, s.holds, s.events, last]

    async def _emit(self, kind: AuctionEventKind, lot: Lot) -> None:
        try:
            await self._observer.auction_event(AuctionEvent(kind, lot.to_json(), lot.stream_id))
        except Exception:  # an observer failure must never fail a bid
            log.exception("auction observer failed")

    async def create_lot(
        self,
        product_id: int,
        by: Actor,
        start_cents: int,
        increment_cents: int,
        duration_s: int,
        reserve_cents: int = 0,
        stream_id: str | None = None,
        hold_s: int = 300,
        window_s: int = 10,
        extend_s: int = 10,
    ) -> Lot:
        """Create a lot (a one-unit sale) waiting to be opened."""
        if not 1 <= start_cents <= MAX_CENTS or not 1 <= increment_cents <= MAX_CENTS:
            raise errors.BadSaleInput("start_cents and increment_cents must be 1..10^12")
        if not 0 <= reserve_cents <= MAX_CENTS:
            raise errors.BadSaleInput("reserve_cents must be 0..10^12")
        if not 0 <= window_s <= 3600 or not 1 <= extend_s <= 3600:
            raise errors.BadSaleInput("window_s must be 0..3600 and extend_s 1..3600")
        if not 1 <= duration_s <= 86400:
            raise errors.BadSaleInput("duration_s must be 1..86400")
        # The sale carries no stream: the room's flash-sale card must not offer it for buying;
        # the lot keeps its stream itself (the caller checked that the stream exists).
        # It copies the stream's rehearsal flag all the same: a practice lot's order is no sale.
        sale = await self._sales.create_sale(
            product_id, 1, 1, by, price_cents=start_cents, duration_s=duration_s,
            hold_s=hold_s, lot_stream_id=stream_id,
        )  # fmt: skip
        k = LotKeys.of(self._prefix, sale.id)
        await guarded(self._redis.hset(k.lot, mapping={
            "state": "scheduled", "product": product_id, "start": start_cents,
            "inc": increment_cents, "reserve": reserve_cents, "duration_ms": duration_s * 1000,
            "window_ms": window_s * 1000, "extend_ms": extend_s * 1000, "end_ms": 0, "bid": 0,
            "nbids": 0, "stream": stream_id or "", "leader_name": "", "seller": by.user_id,
        }))  # fmt: skip
        if stream_id is not None:
            await guarded(
                self._redis.zadd(stream_lots_key(self._prefix, stream_id), {str(sale.id): sale.id})
            )
        return await self.get_lot(sale.id)

    async def is_lot(self, sale_id: int) -> bool:
        """Whether the sale is a lot's (opened, sold and closed only as an auction)."""
        return bool(await guarded(self._redis.exists(LotKeys.of(self._prefix, sale_id).lot)))

    async def lots_for_stream(self, stream_id: str, limit: int = 20) -> list[Lot]:
        """The stream's latest lots, newest first."""
        key = stream_lots_key(self._prefix, stream_id)
        ids = await guarded(self._redis.zrevrange(key, 0, limit - 1))
        return [await self.get_lot(int(i)) for i in ids]

    async def lot_ids_for_stream(self, stream_id: str) -> list[int]:
        """Every lot ever made in the stream (its analytics count their orders)."""
        ids = await guarded(self._redis.zrange(stream_lots_key(self._prefix, stream_id), 0, -1))
        return [int(i) for i in ids]

    async def stream_of(self, lot_id: int) -> str | None:
        """The lot's stream, read once per process; raises LotNotFound for an unknown lot."""

        async def load() -> str | None:
            return (await self.get_lot(lot_id)).stream_id

        return await self._streams.get(lot_id, load)

    async def get_lot(self, lot_id: int) -> Lot:
        """The lot with its live state and Redis's clock."""
        async with self._redis.pipeline(transaction=False) as p:
            p.hgetall(LotKeys.of(self._prefix, lot_id).lot)
            p.time()
            raw, (sec, usec) = await guarded(p.execute())
        if not raw:
            raise LotNotFound(f"lot {lot_id} not found")
        m = {text(k): text(v) for k, v in raw.items()}
        return Lot(
            lot_id, m["stream"] or None, int(m["product"]), m["state"], int(m["start"]),
            int(m["inc"]), int(m["reserve"]), int(m["end_ms"]), int(m["bid"]), int(m["nbids"]),
            m.get("leader_name") or None, m.get("winner"), int(m.get("price", 0)),
            m.get("order"), int(sec) * 1000 + int(usec) // 1000,
        )  # fmt: skip

    async def open_lot(self, lot_id: int) -> Lot:
        """Start the lot's clock (Redis's): bids are accepted until its end."""
        await self._decide(lot_id, "open")
        await guarded(self._redis.sadd(active_lots_key(self._prefix), lot_id))
        lot = await self.get_lot(lot_id)
        await self._emit("lot_opened", lot)
        return lot

    async def _decide(self, lot_id: int, action: str) -> tuple[str, str]:
        """auction_close.lua's code and the lot's state after it."""
        reply = await guarded(self._control(keys=self._keys(lot_id, idem=False), args=[action]))
        code = text(reply[0])
        if code == "lot_not_found":
            raise LotNotFound(f"lot {lot_id} not found")
        return code, text(reply[1])

    @staticmethod
    def _bid_args(batch: Sequence[BidRequest]) -> list[Any]:
        args: list[Any] = [len(batch)]
        for request in batch:
            args += request
        return args

    async def _run_batch(self, lot_id: int, batch: Sequence[BidRequest]) -> list[Any]:
        keys = self._keys(lot_id, idem=True)
        return self._replied(lot_id, await self._bid(keys=keys, args=self._bid_args(batch)))

    async def _run_batches(
        self, batches: Mapping[int, Sequence[BidRequest]]
    ) -> dict[int, list[Any] | BaseException]:
        """Each lot's batch in one pipeline of auction_bid.lua calls (one round trip)."""
        if len(batches) == 1:
            [(lot_id, batch)] = batches.items()
            return {lot_id: await self._run_batch(lot_id, batch)}
        sha = self._bid.sha
        async with self._redis.pipeline(transaction=False) as p:
            for lot_id, batch in batches.items():
                keys = self._keys(lot_id, idem=True)
                p.evalsha(sha, len(keys), *keys, *self._bid_args(batch))
            raw = await p.execute(raise_on_error=False)
        out: dict[int, list[Any] | BaseException] = {}
        for (lot_id, batch), reply in zip(batches.items(), raw, strict=True):
            if isinstance(reply, NoScriptError):  # Redis lost the script: this call loads it
                try:
                    out[lot_id] = await self._run_batch(lot_id, batch)
                except Exception as exc:
                    out[lot_id] = exc
            elif isinstance(reply, BaseException):
                out[lot_id] = reply
            else:
                out[lot_id] = self._replied(lot_id, reply)
        return out

    def _replied(self, lot_id: int, reply: Any) -> list[Any]:
        replies = list(reply)
        summary = replies.pop()
        if int(summary[1]):
            self._announce(lot_id, bool(int(summary[5])))
        return replies

    def _announce(self, lot_id: int, extended: bool) -> None:
        # Bidders never wait for the room: one announcer per lot publishes the lot's latest
        # state at once, then at most every ``announce_s`` (as the sale feed throttles stock).
        # Bids that land meanwhile are folded into its next read, so a rush costs the room a
        # few events a second and the last one is the exact state.
        self._unannounced[lot_id] = self._unannounced.get(lot_id, False) or extended
        if lot_id not in self._announcers:
            self._announcers[lot_id] = supervise(self._announcer(lot_id), f"lot-{lot_id}-events")

    async def _announcer(self, lot_id: int) -> None:
        try:
            while lot_id in self._unannounced:
                extended = self._unannounced.pop(lot_id)
                lot = await self.get_lot(lot_id)
                await self._emit("bid_accepted", lot)
                if extended:
                    await self._emit("lot_extended", lot)
                await asyncio.sleep(self._announce_s)
        finally:
            # No await between the loop's last check and this: a bid announced meanwhile
            # either was seen by the loop or finds no announcer and starts one.
            self._announcers.pop(lot_id, None)

    async def bid(
        self, lot_id: int, user_id: str, idempotency_key: str, amount_cents: int,
        public_name: str | None = None,
    ) -> BidResult:  # fmt: skip
        """Bid on a lot; a retry with the same key gets the first answer."""
        if not IDEMPOTENCY_KEY_RE.match(idempotency_key):
            raise errors.BadSaleInput("Idempotency-Key must be 1..80 of [A-Za-z0-9_.:-]")
        if not 1 <= amount_cents <= MAX_CENTS:
            raise errors.BadSaleInput("amount_cents must be 1..10^12")
        request = (user_id, idempotency_key, amount_cents, (public_name or "")[:40])
        if self._batcher is not None:
            reply = await guarded(self._batcher.submit(lot_id, request))
        else:
            reply = (await guarded(self._run_batch(lot_id, [request])))[0]
        code = text(reply[0])
        if code.startswith("duplicate:"):
            return BidResult(lot_id, int(code[10:]), int(reply[2]), int(reply[3]), True)
        if code == "bid_too_low":
            raise BidTooLow(f"the least bid now is {int(reply[1])} cents")
        if code != "ok":
            raise BID_ERRORS.get(code, Conflict)(f"{code.replace('_', ' ')} (lot {lot_id})")
        return BidResult(lot_id, int(reply[1]), int(reply[2]), int(reply[3]), False)

    async def close_due(self, lot_id: int) -> str:
        """Close the lot if Redis's clock passed its end (once); returns what happened."""
        # The script's reply carries the state: a lot still running costs the sweep one call.
        code, state = await self._decide(lot_id, "close")
        if code == "not_due":
            if state == "open":
                return code
        else:
            lot = await self.get_lot(lot_id)
            log.info("lot %d closed: %s at %d", lot_id, code, lot.price_cents)
            await self._emit("lot_closed", lot)
        await guarded(self._redis.srem(active_lots_key(self._prefix), lot_id))
        return code

    async def offer_runner_up(self, lot_id: int) -> Lot:
        """Give the lot to the next highest bidder when the winner's order lapsed."""
        code, _ = await self._decide(lot_id, "runner_up")
        if code != "ok":
            raise NoRunnerUp(f"{code.replace('_', ' ')} (lot {lot_id})")
        lot = await self.get_lot(lot_id)
        await self._emit("lot_closed", lot)
        return lot

    async def bid_history(self, lot_id: int, limit: int = 100) -> list[dict[str, object]]:
        """The lot's last accepted bids, newest first (for the host: with bidder ids)."""
        raw = await guarded(self._redis.lrange(LotKeys.of(self._prefix, lot_id).bids, -limit, -1))
        out: list[dict[str, object]] = []
        for entry in reversed(raw):
            user, amount, at, _name = text(entry).split("|", 3)
            out.append({"user_id": user, "amount_cents": int(amount), "at_ms": int(at)})
        return out

    async def active_lot_ids(self) -> list[int]:
        """Lots open (or due to close) that the sweeper watches."""
        members = await guarded(self._redis.smembers(active_lots_key(self._prefix)))
        return sorted(int(m) for m in members)

    async def close(self) -> None:
        """Stop in-flight batches and announcers."""
        if self._batcher is not None:
            await self._batcher.close()
        await cancel_all(list(self._announcers.values()))


class LotForgetter:
    """Pseudonymises a user in a sale's lot and draw records (``DELETE /api/me/data``)."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._prefix = prefix
        self._script = load_script(redis, "flashsale", "auction_forget")

    async def forget(self, sale_id: int, user_id: str, pseudonym: str, name: str = "") -> int:
        """Replace the user's id (and shown name) in one sale's auction state; records changed."""
        k = LotKeys.of(self._prefix, sale_id)
        keys = [k.lot, k.bids, k.idem, k.offered, f"{self._prefix}:{{s{sale_id}}}:entrants"]
        return int(await guarded(self._script(keys=keys, args=[user_id, pseudonym, name])))


class AuctionSweeper(Sweeper):
    """Closes every due lot once; safe in every process (auction_close.lua is atomic)."""

    name = "auction-sweeper"

    def __init__(self, auctions: Auctions, interval_s: float = 0.1) -> None:
        super().__init__(interval_s)
        self._auctions = auctions

    async def sweep(self) -> int:
        """Close the lots whose end passed by Redis's clock; returns how many closed."""
        closed = 0
        for lot_id in await self._auctions.active_lot_ids():
            closed += await self._auctions.close_due(lot_id) != "not_due"
        return closed
