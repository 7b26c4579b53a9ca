"""Payments at the HTTP edge: the provider's signed webhook, and the simulated Pay's switch.

``POST /api/payments/webhook`` is how an order gets paid in production: the payment provider
(or the shop's backend on its behalf) signs ``<timestamp>.<body>`` with
``LIVESELL_PAYMENT_WEBHOOK_SECRET`` in a ``Livesell-Signature`` header. The simulated Pay
(``POST /api/orders/{id}/pay`` and its coupon and points variants) stays for development
behind ``LIVESELL_SIMULATED_PAY``; an admin may still confirm a payment by hand.
"""

from __future__ import annotations

import time

from aiohttp import web

from flashsale import signature
from inventory.errors import DomainError
from web.auth import Principal, Role
from web.http import field, json_object, read_capped
from web.keys import PAYMENTS, SETTINGS

routes = web.RouteTableDef()

#: A provider's event is small; anything larger is refused before it is hashed.
MAX_WEBHOOK_BODY = 16 * 1024


class SimulatedPayOff(DomainError):
    """Buyers cannot mark their own orders paid here: payment arrives from the provider."""

    code = "simulated_pay_off"
    status = 403


class PaymentsOff(DomainError):
    """No payment provider secret is configured, so no provider event can be trusted."""

    code = "payments_webhook_off"
    status = 404


def require_simulated_pay(request: web.Request, who: Principal) -> None:
    """Refuse a buyer's own Pay when simulated pay is off (admins may still confirm by hand)."""
    if not request.app[SETTINGS].simulated_pay and who.role != Role.ADMIN:
        raise SimulatedPayOff("payment is confirmed by the payment provider, not by the buyer")


@routes.get("/api/payments/config")
async def payments_config(request: web.Request) -> web.Response:
    """How this server takes payment: the room hides Pay when ``simulated_pay`` is false."""
    return web.json_response({"simulated_pay": request.app[SETTINGS].simulated_pay})


@routes.post("/api/payments/webhook")
async def payment_webhook(request: web.Request) -> web.Response:
    """Apply the provider's signed ``payment.succeeded`` event to its order (each id once)."""
    secret = request.app[SETTINGS].payment_webhook_secret
    if not secret:
        raise PaymentsOff("LIVESELL_PAYMENT_WEBHOOK_SECRET is not set")
    raw = await read_capped(request, MAX_WEBHOOK_BODY)
    if raw is None:
        raise web.HTTPRequestEntityTooLarge(
            max_size=MAX_WEBHOOK_BODY, actual_size=MAX_WEBHOOK_BODY + 1
        )
    # The signature is checked on the raw bytes, before they are parsed.
    signature.verify(secret.encode(), raw, request.headers.get(signature.HEADER), time.time())
    body = json_object(raw)
    outcome = await request.app[PAYMENTS].apply(
        field(body, "id", str),
        field(body, "type", str),
        field(body, "order_id", str),
        field(body, "amount_cents", int, None, optional=True),
    )
    return web.json_response(outcome.to_json())
