"""Moves order events from each sale's Redis Stream into SQL.

A consumer group gives at-least-once delivery: events are acked only after the SQL commit,
and the upsert is idempotent by order id and monotonic in state, so a replay is harmless.
Events left pending by a consumer that died are claimed after ``claim_idle_ms``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

from flashsale.keys import SaleKeys, active_sales_key
from flashsale.order import OrderView
from inventory.ledger import Ledger, OrderRecord
from inventory.tasks import cancel_all, supervise

log = logging.getLogger("livesell.persister")

GROUP = "persister"

Entry = tuple[bytes, dict[bytes, bytes]]


#: Retry waits after a failed pass: doubling from the first, capped.
RETRY_FIRST_S = 0.25
RETRY_MAX_S = 4.0


def retry_delay(failures: int) -> float:
    """How long to wait after the ``failures``-th failed pass in a row."""
    return float(min(RETRY_MAX_S, RETRY_FIRST_S * 2 ** min(failures - 1, 16)))


def default_consumer_name() -> str:
    """A name unique to this process, so a restarted process never reuses a dead one's name."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class Persister:
    """One consumer of the ``persister`` group over every active sale's event stream."""

    def __init__(
        self,
        redis: Redis,
        ledger: Ledger,
        prefix: str,
        consumer: str | None = None,
        interval_s: float = 0.05,
        claim_idle_ms: int = 30_000,
        batch: int = 1000,
    ) -> None:
        self._redis = redis
        self._ledger = ledger
        self._prefix = prefix
        self.consumer = consumer or default_consumer_name()
        self._interval_s = interval_s
        self._claim_idle_ms = claim_idle_ms
        self._batch = batch
        self._groups: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        # Per sale: one shared timestamp let only the first sale of each pass ever reclaim.
        self._last_claim: dict[int, float] = {}

    async def _ensure_group(self, stream: str) -> None:
        if stream in self._groups:
            return
        try:
            await self._redis.xgroup_create(stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._groups.add(stream)

    async def read(self, sale_id: int) -> list[Entry]:
        """Take this consumer's next events of one sale: its own pending first, then new ones."""
        stream = SaleKeys.of(self._prefix, sale_id).events
        await self._ensure_group(stream)
        entries: list[Entry] = []
        # Own pending entries (read but never acked, e.g. the commit failed) come back first.
        mine = await self._redis.xreadgroup(GROUP, self.consumer, {stream: "0"}, count=self._batch)
        for _, items in mine or []:
            entries += [(i, f) for i, f in items if f]
        now = time.monotonic()
        if now - self._last_claim.get(sale_id, 0.0) > self._claim_idle_ms / 3000:
            self._last_claim[sale_id] = now
            claimed = await self._redis.xautoclaim(
                stream, GROUP, self.consumer, self._claim_idle_ms, "0-0", count=self._batch
            )
            got = [(i, f) for i, f in claimed[1] if f]
            if got:
                log.info("claimed %d pending events of sale %d", len(got), sale_id)
            entries += got
        if len(entries) < self._batch:
            new = await self._redis.xreadgroup(
                GROUP, self.consumer, {stream: ">"}, count=self._batch - len(entries)
            )
            for _, items in new or []:
                entries += list(items)
        return entries

    async def commit(self, sale_id: int, entries: list[Entry]) -> int:
        """Write the events' orders to SQL, then ack them. Returns the number of orders written."""
        if not entries:
            return 0
        records: list[OrderRecord] = []
        redemptions: list[tuple[str, str, int, int]] = []
        for entry_id, f in entries:
            try:
                records.append(OrderView.parse(f[b"o"].decode(), f[b"r"]))
                if b"c" in f:  # paid with a coupon (coupon_pay.lua)
                    redemptions.append(
                        (records[-1].id, f[b"c"].decode(), int(f[b"d"]), int(f[b"t"]))
                    )
            except (KeyError, ValueError):
                # Only the sale scripts write here; anything else is logged and acked so it
                # cannot block the stream forever.
                log.error("sale %d: malformed event %r skipped", sale_id, entry_id)
        n = await self._ledger.upsert_orders(records)
        await self._ledger.record_redemptions(redemptions)
        stream = SaleKeys.of(self._prefix, sale_id).events
        await self._redis.xack(stream, GROUP, *[i for i, _ in entries])
        return n

    async def step(self) -> int:
        """One pass over every active sale; returns events persisted."""
        total = 0
        for raw in await self._redis.smembers(active_sales_key(self._prefix)):
            sale_id = int(raw)
            try:
                while True:
                    entries = await self.read(sale_id)
                    await self.commit(sale_id, entries)
                    total += len(entries)
                    if len(entries) < self._batch:
                        break
            except ResponseError as exc:
                # One sale's trouble (e.g. its stream and group vanished with a Redis restart
                # that lost data) must not stop the others from being persisted.
                if "NOGROUP" in str(exc):
                    self._groups.discard(SaleKeys.of(self._prefix, sale_id).events)
                log.warning("persisting sale %d failed: %s", sale_id, exc)
        return total

    async def drain(self, sale_id: int) -> None:
        """Persist everything of one sale now, including other consumers' pending events."""
        stream = SaleKeys.of(self._prefix, sale_id).events
        await self._ensure_group(stream)
        while True:
            claimed = await self._redis.xautoclaim(
                stream, GROUP, self.consumer, 0, "0-0", count=self._batch
            )
            got = [(i, f) for i, f in claimed[1] if f]
            new = await self._redis.xreadgroup(
                GROUP, self.consumer, {stream: ">"}, count=self._batch
            )
            for _, items in new or []:
                got += list(items)
            await self.commit(sale_id, got)
            if not got:
                return

    async def _loop(self) -> None:
        failures = 0
        while True:
            try:
                n = await self.step()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # SQL (or Redis) is away: the events stay in the streams, pending or undelivered,
                # and are written when it is back. Back off so that a long outage is not met
                # with a reconnect storm, but stay close enough to catch up soon after.
                failures += 1
                wait = retry_delay(failures)
                log.warning(
                    "persister step failed (%s: %s); retrying in %.2f s (attempt %d)",
                    type(exc).__name__, str(exc)[:200], wait, failures,
                )  # fmt: skip
                await asyncio.sleep(wait)
                continue
            if failures:
                log.info("persister recovered after %d failed attempts", failures)
                failures = 0
            if n < self._batch:
                # Sleep even after a busy pass: in a rush, events pile up meanwhile and the
                # next pass writes them in one larger, cheaper SQL batch.
                await asyncio.sleep(self._interval_s)

    def start(self) -> None:
        """Run in the background until ``close``."""
        self._tasks.append(supervise(self._loop(), f"persister-{self.consumer}"))

    async def close(self) -> None:
        """Stop; events read but not committed stay pending and are claimed later."""
        await cancel_all(self._tasks)
