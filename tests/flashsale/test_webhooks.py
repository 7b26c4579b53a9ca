"""Outgoing webhooks: the outbox written with the orders, delivered to a receiver that was down.

Real Redis, real SQLite and PostgreSQL, a real aiohttp receiver on a loopback port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select, update

from flashsale import signature
from flashsale.groupbuy import GroupBuys
from flashsale.persister import Persister
from flashsale.webhooks import Deliverer
from inventory.models import Sale, WebhookEvent
from inventory.outbox import WebhookOutbox
from inventory.userdata import UserData
from tests.flashsale.conftest import OPS, Core
from web.webhooks import AiohttpSender

SECRET = b"shop-webhook-secret-0123456789"
# Each test counts the whole outbox, so PostgreSQL runs get a database of their own.
pytestmark = pytest.mark.parametrize("database_url", ["sqlite", "postgresql_empty"], indirect=True)


def free_port() -> int:
    """A loopback port nothing listens on (yet)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    """The shop's endpoint: keeps every request; the first copy of one event gets a 500."""

    port: int
    flaky_event: str = ""
    received: list[dict[str, Any]] = field(default_factory=list)
    accepted: list[str] = field(default_factory=list)
    runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.received.append(
            {
                "body": body,
                "signature": request.headers.get(signature.HEADER),
                "event_id": request.headers.get("Livesell-Event-Id"),
            }
        )
        event = json.loads(body)
        copies = sum(1 for r in self.received if r["event_id"] == event["id"])
        if event["id"] == self.flaky_event and copies == 1:
            return web.Response(status=500)  # stored, but the answer is lost: a redelivery
        self.accepted.append(event["id"])
        return web.Response(status=204)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks", self.handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    """A receiver on a free port, not started: the shop is down until the test starts it."""
    r = Receiver(free_port())
    yield r
    await r.stop()


async def outbox_rows(core: Core) -> list[WebhookEvent]:
    """Every outbox row, oldest first."""
    async with core.db.session() as s:
        return list(await s.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


async def eventually(check: Any, what: str, timeout_s: float = 30.0) -> None:
    """Wait for ``check()`` (async) to be true; fail naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_every_event_arrives_signed_in_order_after_the_shop_was_down(
    core: Core, receiver: Receiver
) -> None:
    """Events made while the receiver is down all arrive once it is up, each order in order."""
    sale = await core.sale(quantity=10, limit=3)
    short = await core.sale(quantity=2, hold_s=1)
    persister = Persister(core.redis, core.ledger, core.prefix, consumer="t")
    a = (await core.sales.buy(sale.id, "amy", "k1")).order
    b = (await core.sales.buy(sale.id, "bob", "k2")).order
    c = (await core.sales.buy(sale.id, "cat", "k3")).order
    await persister.drain(sale.id)  # three reservations stored (and their events with them)
    await core.sales.pay(a.id)
    await core.sales.cancel(b.id)
    d = (await core.sales.buy(sale.id, "dan", "k4")).order
    await core.sales.pay(d.id)  # reserved and paid in one persister batch: both go out
    e = (await core.sales.buy(short.id, "eve", "k5")).order
    await persister.drain(sale.id)
    await asyncio.sleep(1.1)  # the short sale's one-second hold runs out
    assert await core.sales.expire_due(short.id) == 1
    await persister.drain(short.id)
    await persister.drain(sale.id)  # a replayed drain adds no event

    expected = [
        f"{a.id}.reserved", f"{b.id}.reserved", f"{c.id}.reserved", f"{a.id}.paid",
        f"{b.id}.cancelled", f"{d.id}.reserved", f"{d.id}.paid", f"{e.id}.reserved",
        f"{e.id}.expired",
    ]  # fmt: skip
    rows = await outbox_rows(core)
    assert sorted(r.event_id for r in rows) == sorted(expected)

    # The first event of an order fails once more: its order's next event must wait for it.
    receiver.flaky_event = f"{a.id}.reserved"
    url = f"http://127.0.0.1:{receiver.port}/hooks"
    sender = AiohttpSender(timeout_s=2)
    outbox = WebhookOutbox(core.db)
    deliverer = Deliverer(
        outbox, sender, [url], SECRET, consumer="d1", interval_s=0.02, retry_base_s=0.05,
        retry_max_s=0.2,
    )  # fmt: skip
    deliverer.start()
    try:

        async def failed_a_few_times() -> bool:
            return all(r.attempts >= 2 and r.pending for r in (await outbox_rows(core))[:1])

        await eventually(failed_a_few_times, "attempts against the receiver while it is down")
        assert receiver.received == []
        await receiver.start()
        await eventually(lambda: _no_backlog(outbox), "the outbox to empty")
    finally:
        await deliverer.close()
        await sender.close()

    ids = [r["event_id"] for r in receiver.received]
    assert set(ids) == set(expected)  # every event arrived
    assert ids.count(f"{a.id}.reserved") == 2  # the redelivery carries the same id
    for r in receiver.received:
        signature.verify(SECRET, r["body"], r["signature"], time.time())
        event = json.loads(r["body"])
        assert event["id"] == r["event_id"]
        assert event["type"] == "order." + event["id"].rsplit(".", 1)[1]
        assert event["data"]["order"]["currency"] == "USD"
    with pytest.raises(signature.BadSignature):
        signature.verify(b"another-secret", receiver.received[0]["body"],
                         receiver.received[0]["signature"], time.time())  # fmt: skip
    # Per order, the shop took the events in the order's own sequence (and each once).
    for order in (a, b, d, e):
        mine = [i for i in receiver.accepted if i.startswith(order.id + ".")]
        assert mine == [i for i in expected if i.startswith(order.id + ".")], mine
    # A redelivered event is byte-identical: a shop that dedupes by id loses nothing.
    copies = [r["body"] for r in receiver.received if r["event_id"] == f"{a.id}.reserved"]
    assert copies[0] == copies[1]


async def _no_backlog(outbox: WebhookOutbox) -> bool:
    return await outbox.backlog() == 0


async def test_a_stale_state_adds_no_event_and_a_replay_adds_none(core: Core) -> None:
    """The outbox follows SQL's monotonic order states: no event goes backwards or twice."""
    sale = await core.sale(quantity=5)
    order = (await core.sales.buy(sale.id, "amy", "k1")).order
    paid = await core.sales.pay(order.id)
    await core.ledger.upsert_orders([paid])  # a claimed batch that only had the payment
    await core.ledger.upsert_orders([order])  # the older reservation, claimed later: stale
    await core.ledger.upsert_orders([order, paid])  # the whole history replayed
    rows = await outbox_rows(core)
    assert [r.event_id for r in rows] == [f"{order.id}.paid"]
    async with core.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(WebhookEvent)) == 1


async def test_without_urls_events_are_settled_and_never_sent_later(core: Core) -> None:
    """With no URL configured the deliverer marks events done: a URL added later gets new ones."""
    sale = await core.sale(quantity=5)
    await core.sales.buy(sale.id, "amy", "k1")
    await Persister(core.redis, core.ledger, core.prefix, consumer="t").drain(sale.id)
    outbox = WebhookOutbox(core.db)
    sender = AiohttpSender()
    deliverer = Deliverer(outbox, sender, [], SECRET, consumer="d")
    assert await deliverer.step() == 1
    await sender.close()
    assert await outbox.backlog() == 0
    assert [r.delivered_at_ms is not None for r in await outbox_rows(core)] == [True]


async def test_erasing_a_buyer_pseudonymises_their_webhook_events(core: Core) -> None:
    """The outbox keeps no buyer id past an erase: pending and sent events get the pseudonym."""
    sale = await core.sale(quantity=5)
    await core.sales.buy(sale.id, "a_my", "k1")
    await core.sales.buy(sale.id, "axmy", "k2")  # "_" must not match as a LIKE wildcard
    await Persister(core.redis, core.ledger, core.prefix, consumer="t").drain(sale.id)
    await UserData(core.db).erase("a_my", "", "erased-123")
    users = sorted(json.loads(r.body)["data"]["order"]["user_id"] for r in await outbox_rows(core))
    assert users == ["axmy", "erased-123"]


async def test_a_rehearsals_orders_never_reach_the_outbox(core: Core) -> None:
    """Practice orders stay out of the shop's systems; the real sale's go out."""
    practice, real = await core.sale(quantity=5), await core.sale(quantity=5)
    async with core.db.transaction() as s:
        await s.execute(update(Sale).where(Sale.id == practice.id).values(rehearsal=True))
    await core.sales.buy(practice.id, "amy", "k1")
    await core.sales.buy(real.id, "amy", "k2")
    persister = Persister(core.redis, core.ledger, core.prefix, consumer="t")
    for sale in (practice, real):
        await persister.drain(sale.id)
    assert [r.order_id.split("-")[0] for r in await outbox_rows(core)] == [str(real.id)]


async def test_a_paid_order_of_a_failed_group_goes_out_as_refund_due(core: Core) -> None:
    """The shop hears which paid orders to refund when their group expires unfilled."""
    groups = GroupBuys(core.redis, core.sales, core.prefix)
    sale = await core.sale(quantity=5)
    await groups.offer(sale.id, 3000, size=3, ttl_s=1, by=OPS)
    opened = await groups.open_group(sale.id, "amy", "k1")
    await core.sales.pay(opened.order.id, "amy")
    joined = (await groups.join_group(opened.group.id, "bob")).order  # joined, never paid: released
    persister = Persister(core.redis, core.ledger, core.prefix, consumer="t")
    await persister.drain(sale.id)
    await asyncio.sleep(1.1)
    assert await groups.expire_due(sale.id) == 1
    await persister.drain(sale.id)
    await persister.drain(sale.id)  # replayed: no second event
    await groups.close()
    ids = sorted(r.event_id for r in await outbox_rows(core))
    paid, unpaid = opened.order.id, joined.id
    # The id names the order's state (refund); the event's type says what the shop must do.
    assert ids == sorted([f"{paid}.reserved", f"{paid}.paid", f"{paid}.refund",
                          f"{unpaid}.reserved", f"{unpaid}.expired"]), ids  # fmt: skip
    refund = next(r for r in await outbox_rows(core) if r.event_id == f"{paid}.refund")
    body = json.loads(refund.body)
    assert body["type"] == "order.refund_due" and body["data"]["order"]["id"] == paid
