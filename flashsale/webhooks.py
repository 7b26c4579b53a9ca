"""Delivers the outbox's order events to the shop's URLs: signed, retried, in order per order.

At least once: an event is marked delivered only after every URL answered 2xx, so a crash
between sending and marking sends it again (the shop deduplicates by event id). Per order in
order: the outbox hands out an event only once its order's older events are delivered. A
failing URL backs off exponentially (``retry_base_s`` doubling up to ``retry_max_s``, with
jitter) and is retried for as long as it fails; it holds back only the orders it failed on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Mapping, Sequence
from typing import Protocol

from flashsale import signature
from flashsale.sweeper import Repeat
from inventory.outbox import Attempt, OutboxEvent, WebhookOutbox

log = logging.getLogger("livesell.webhooks")

#: Delivered events are kept this long (for support questions), then pruned.
RETAIN_DELIVERED_MS = 7 * 86_400_000


class WebhookSender(Protocol):
    """Posts one request; returns its HTTP status, raises ``OSError``/``TimeoutError``."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        """POST ``body`` to ``url`` with ``headers``."""
        ...


def url_key(url: str) -> str:
    """A short stable name for a URL in ``done_urls`` (the URL itself may carry a token)."""
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def backoff_s(attempts: int, base_s: float, max_s: float) -> float:
    """The pause after the ``attempts``-th failure: base doubling per failure, capped, ±20%."""
    pause = min(max_s, base_s * 2 ** min(attempts - 1, 40))
    return float(pause * random.uniform(0.8, 1.2))


class Deliverer:
    """Owns the background task that empties the outbox into the configured URLs."""

    def __init__(
        self,
        outbox: WebhookOutbox,
        sender: WebhookSender,
        urls: Sequence[str],
        secret: bytes,
        consumer: str,
        interval_s: float = 0.25,
        batch: int = 32,
        concurrency: int = 16,
        retry_base_s: float = 1.0,
        retry_max_s: float = 3600.0,
        lease_s: float = 120.0,
    ) -> None:
        # The lease must outlast a pass: ``batch`` / ``concurrency`` rounds of a 10 s timeout
        # per URL (20 s each with these defaults), or another deliverer could take an event
        # still in flight and send an order's next event before it.
        self._outbox = outbox
        self._sender = sender
        self._urls = list(urls)
        self._secret = secret
        self.consumer = consumer
        self._batch = batch
        self._slots = asyncio.Semaphore(concurrency)
        self._retry = (retry_base_s, retry_max_s)
        self._lease_ms = int(lease_s * 1000)
        self._last_prune = 0.0
        # A failed pass (the database away) is logged and retried; the events wait in SQL.
        self._repeat = Repeat(f"webhooks-{consumer}", self.step, interval_s)

    async def step(self) -> int:
        """One pass: lease the due events, deliver them (orders in parallel); returns how many."""
        now = int(time.time() * 1000)
        events = await self._outbox.claim_due(self.consumer, now, self._lease_ms, self._batch)
        if events:
            attempts = await asyncio.gather(*(self._deliver(e) for e in events))
            await self._outbox.record(attempts, int(time.time() * 1000))
        if time.monotonic() - self._last_prune > 3600:
            self._last_prune = time.monotonic()
            await self._outbox.prune(now - RETAIN_DELIVERED_MS)
        return len(events)

    async def _deliver(self, event: OutboxEvent) -> Attempt:
        done = set(event.done_urls)
        errors: list[str] = []
        body = event.body.encode()
        async with self._slots:
            for url in self._urls:
                key = url_key(url)
                if key in done:
                    continue
                error = await self._post(url, event, body)
                if error is None:
                    done.add(key)
                else:
                    errors.append(error)
        if not errors:
            return Attempt(event, None, frozenset(done))
        pause = backoff_s(event.attempts + 1, *self._retry)
        log.info(
            "webhook %s failed (attempt %d: %s); retrying in %.1f s",
            event.event_id, event.attempts + 1, errors[0], pause,
        )  # fmt: skip
        next_ms = int((time.time() + pause) * 1000)
        return Attempt(event, next_ms, frozenset(done), "; ".join(errors))

    async def _post(self, url: str, event: OutboxEvent, body: bytes) -> str | None:
        """Send to one URL; None when it took the event, else why not."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "livesell-webhooks/1",
            "Livesell-Event-Id": event.event_id,
            "Livesell-Event-Type": event.type,
            # Signed at each attempt: a retry hours later still passes the shop's tolerance.
            signature.HEADER: signature.sign(self._secret, body, int(time.time())),
        }
        try:
            status = await self._sender.post(url, body, headers)
        except (OSError, TimeoutError) as exc:
            return f"{type(exc).__name__}: {exc}"[:120]
        return None if 200 <= status < 300 else f"HTTP {status}"

    def start(self) -> None:
        """Run in the background until ``close``."""
        self._repeat.start()

    async def close(self) -> None:
        """Stop; events leased but not marked are sent again once their lease ends."""
        await self._repeat.close()
