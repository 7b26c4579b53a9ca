"""The payment provider's signed webhook, and the simulated Pay turned off (production)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from flashsale import signature
from tests.flashsale.helpers import buy, make_sale
from web.app import create_app
from web.settings import Settings

PROVIDER_SECRET = "provider-secret-0123456789abcdef"
Auth = Callable[..., dict[str, str]]


def signed(
    event: dict[str, Any], at: float | None = None, secret: str = PROVIDER_SECRET
) -> tuple[bytes, dict[str, str]]:
    """The body and headers a provider would send for ``event``."""
    body = json.dumps(event).encode()
    stamp = int(time.time() if at is None else at)
    header = signature.sign(secret.encode(), body, stamp)
    return body, {signature.HEADER: header, "Content-Type": "application/json"}


@pytest.fixture
async def shop(aiohttp_client, settings: Settings) -> TestClient:  # type: ignore[no-untyped-def]
    """The app as in production: simulated pay off, the provider's secret set."""
    prod = dataclasses.replace(
        settings, simulated_pay=False, payment_webhook_secret=PROVIDER_SECRET
    )
    return await aiohttp_client(create_app(prod))


async def post(client: TestClient, body: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    """POST to the webhook; (status, json)."""
    r = await client.post("/api/payments/webhook", data=body, headers=headers)
    return r.status, await r.json()


async def order_state(client: TestClient, auth: Auth, order_id: str) -> str:
    """The order's state as its buyer sees it."""
    r = await client.get(f"/api/orders/{order_id}", headers=auth("viewer", "amy"))
    return str((await r.json())["state"])


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_signed_payment_pays_once_and_shows_in_the_audit(
    shop: TestClient, auth: Auth
) -> None:
    """Bad or stale signatures change nothing; a good one pays; its replay is idempotent."""
    sale = await make_sale(shop, auth, quantity=3)
    status, res = await buy(shop, auth, sale["id"], "amy", "k1")
    assert status == 201, res
    order = res["order"]
    event = {"id": f"evt_{order['id']}_a", "type": "payment.succeeded", "order_id": order["id"],
             "amount_cents": order["total_cents"]}  # fmt: skip

    body, headers = signed(event, secret="not-the-provider-secret-000000")
    assert (await post(shop, body, headers))[1]["error"] == "bad_signature"
    status, res = await post(shop, body, {})
    assert (status, res["error"]) == (401, "bad_signature")
    body, headers = signed(event)
    tampered = body.replace(b"evt_", b"evX_")
    assert (await post(shop, tampered, headers))[0] == 401
    body, headers = signed(event, at=time.time() - 3600)
    status, res = await post(shop, body, headers)
    assert (status, res["error"]) == (401, "stale_signature")
    assert await order_state(shop, auth, order["id"]) == "reserved"

    body, headers = signed(event)
    status, res = await post(shop, body, headers)
    assert status == 200, res
    assert (res["duplicate"], res["order"]["state"]) == (False, "paid")
    # The same request again, and the same event re-signed later: recognised, nothing changes.
    assert await post(shop, body, headers) == (200, {**res, "duplicate": True})
    status, res = await post(shop, *signed(event))
    assert (status, res["duplicate"], res["order"]["state"]) == (200, True, "paid")
    assert await order_state(shop, auth, order["id"]) == "paid"

    r = await shop.get(f"/api/sales/{sale['id']}/audit", headers=auth("admin", "ops"))
    report = await r.json()
    assert r.status == 200 and report["ok"], report
    assert (report["figures"]["paid"], report["figures"]["reserved"]) == (1, 0)


async def test_unknown_orders_wrong_amounts_and_other_events(shop: TestClient, auth: Auth) -> None:
    """404 for an unknown order, 409 for a wrong amount, 200 ignored for other event types."""
    sale = await make_sale(shop, auth, quantity=3)
    _, res = await buy(shop, auth, sale["id"], "amy", "k1")
    order = res["order"]
    for unknown in ("999-1", f"{sale['id']}-999", "not-an-order"):
        ev = {"id": f"evt_{unknown}", "type": "payment.succeeded", "order_id": unknown}
        status, res = await post(shop, *signed(ev))
        assert (status, res["error"]) == (404, "order_not_found"), unknown
    short = {"id": "evt_short", "type": "payment.succeeded", "order_id": order["id"]}
    status, res = await post(shop, *signed({**short, "amount_cents": 1}))
    assert (status, res["error"]) == (409, "amount_mismatch")
    ev = {"id": "evt_refund", "type": "charge.refunded", "order_id": order["id"]}
    assert await post(shop, *signed(ev)) == (
        200,
        {"received": True, "duplicate": False, "ignored": True},
    )
    pays = {"type": "payment.succeeded", "order_id": order["id"]}
    for bad in ({"id": "evt x", **pays}, pays, ["not", "an", "object"]):
        status, res = await post(shop, *signed(bad))  # type: ignore[arg-type]
        assert (status, res["error"]) == (400, "bad_request"), bad
    assert await order_state(shop, auth, order["id"]) == "reserved"


async def test_simulated_pay_off_refuses_the_buyer_and_tells_the_room(
    shop: TestClient, auth: Auth
) -> None:
    """With simulated pay off the buyer cannot pay by hand (an admin still can)."""
    r = await shop.get("/api/payments/config")
    assert await r.json() == {"simulated_pay": False}
    sale = await make_sale(shop, auth, quantity=3, limit=2)
    _, res = await buy(shop, auth, sale["id"], "amy", "k1")
    oid = res["order"]["id"]
    for path, body in (("pay", None), ("pay-with-points", {"points": 1}),
                       ("pay-with-coupon", {"coupon_id": "1-c1"})):  # fmt: skip
        r = await shop.post(f"/api/orders/{oid}/{path}", json=body, headers=auth("viewer", "amy"))
        assert (r.status, (await r.json())["error"]) == (403, "simulated_pay_off"), path
    r = await shop.post(f"/api/orders/{oid}/pay", headers=auth("admin", "ops"))
    assert (r.status, (await r.json())["state"]) == (200, "paid")


async def test_the_webhook_is_off_without_a_provider_secret(client: TestClient, auth: Auth) -> None:
    """The embedded defaults: simulated pay on, and no provider event can be trusted."""
    r = await client.get("/api/payments/config")
    assert await r.json() == {"simulated_pay": True}
    ev = {"id": "evt_1", "type": "payment.succeeded", "order_id": "1-1"}
    status, res = await post(client, *signed(ev))
    assert (status, res["error"]) == (404, "payments_webhook_off")


async def test_the_server_sends_the_shop_each_change_of_an_order_paid_by_the_provider(
    aiohttp_client, aiohttp_server, settings: Settings, auth: Auth
) -> None:  # type: ignore[no-untyped-def]
    """End to end in one server: buy, provider pays, the shop hears reserved then paid."""
    heard: list[dict[str, Any]] = []
    both = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        body = await request.read()
        signature.verify(
            b"shop-secret-0123456789", body, request.headers[signature.HEADER], time.time()
        )
        heard.append(json.loads(body))
        if len(heard) >= 2:
            both.set()
        return web.Response(status=204)

    shop_app = web.Application()
    shop_app.router.add_post("/hooks", hook)
    receiver = await aiohttp_server(shop_app)
    prod = dataclasses.replace(
        settings,
        simulated_pay=False,
        payment_webhook_secret=PROVIDER_SECRET,
        webhook_urls=str(receiver.make_url("/hooks")),
        webhook_secret="shop-secret-0123456789",
    )
    client = await aiohttp_client(create_app(prod))
    sale = await make_sale(client, auth, quantity=3)
    _, res = await buy(client, auth, sale["id"], "amy", "k1")
    oid = res["order"]["id"]
    ev = {"id": "evt_e2e", "type": "payment.succeeded", "order_id": oid}
    assert (await post(client, *signed(ev)))[0] == 200
    await asyncio.wait_for(both.wait(), 20)
    assert [(e["id"], e["type"]) for e in heard] == [
        (f"{oid}.reserved", "order.reserved"),
        (f"{oid}.paid", "order.paid"),
    ]
    assert heard[1]["data"]["order"]["total_cents"] == res["order"]["total_cents"]
