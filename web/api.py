"""JSON API: products, streams, sales, buying and orders. Thin handlers over domain services."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from flashsale.audit import audit_sale
from flashsale.buyerorders import buyer_orders
from flashsale.errors import BadSaleInput
from flashsale.lot import SaleIsALot
from web.auth import USER_ID_RE, Principal, Role
from web.errors import ForbiddenError
from web.http import BadRequest, field, int_param, json_body, principal, require
from web.keys import (
    AUCTIONS,
    CATALOG,
    LEDGER,
    REDIS,
    ROOM_HUB,
    SALES,
    SETTINGS,
    SHOW_TALLY,
)
from web.payments import require_simulated_pay
from web.ratelimit import BUY, throttle

routes = web.RouteTableDef()

IDEMPOTENCY_HEADER = "Idempotency-Key"


# -- products --------------------------------------------------------------------------------


@routes.post("/api/products")
async def create_product(request: web.Request) -> web.Response:
    """Create a product owned by the caller (admin or host)."""
    who = require(request, Role.ADMIN, Role.HOST)
    body = await json_body(request)
    product = await request.app[CATALOG].create_product(
        name=field(body, "name", str),
        price_cents=field(body, "price_cents", int),
        description=field(body, "description", str, ""),
        currency=field(body, "currency", str, "USD"),
        image_url=field(body, "image_url", str, ""),
        member_price_cents=field(body, "member_price_cents", int, None, optional=True),
        owner_id=who.user_id,
    )
    return web.json_response(asdict(product), status=201)


#: What ``PATCH /api/products/{id}`` reads, with each field's type (None clears a member price).
_EDITS = {"name": str, "description": str, "price_cents": int, "image_url": str,
          "member_price_cents": int}  # fmt: skip


@routes.patch("/api/products/{product_id}")
async def edit_product(request: web.Request) -> web.Response:
    """Change a product's fields (its owner or an admin); orders already made keep their price."""
    who = require(request, Role.ADMIN, Role.HOST)
    body = await json_body(request)
    changes = {
        name: None if name == "member_price_cents" and body[name] is None
        else field(body, name, kind)
        for name, kind in _EDITS.items()
        if name in body
    }  # fmt: skip
    if not changes or set(body) - set(_EDITS):
        raise BadRequest(f"send one or more of {', '.join(_EDITS)} and nothing else")
    product = await request.app[CATALOG].update_product(
        int_param(request, "product_id"), who.actor, changes
    )
    return web.json_response(asdict(product))


@routes.get("/api/products")
async def list_products(request: web.Request) -> web.Response:
    """List products; ``?mine=1``: only the caller's own."""
    owner = require(request).user_id if request.query.get("mine") == "1" else None
    products = await request.app[CATALOG].list_products(owner_id=owner)
    return web.json_response({"products": [asdict(p) for p in products]})


# -- streams ---------------------------------------------------------------------------------


@routes.post("/api/streams")
async def create_stream(request: web.Request) -> web.Response:
    """Create a stream owned by the calling host (or, for an admin, by ``host_id``)."""
    who = require(request, Role.ADMIN, Role.HOST)
    body = await json_body(request)
    host_id = who.user_id
    if who.role == Role.ADMIN:
        host_id = field(body, "host_id", str, who.user_id)
        if not USER_ID_RE.match(host_id):
            raise BadRequest("host_id must be 1..64 of [A-Za-z0-9_.@:-]")
    stream = await request.app[CATALOG].create_stream(
        field(body, "id", str),
        host_id,
        field(body, "title", str, ""),
        rehearsal=field(body, "rehearsal", bool, False),
    )
    return web.json_response(asdict(stream), status=201)


@routes.get("/api/streams")
async def list_streams(request: web.Request) -> web.Response:
    """List streams, newest first, each with its room's viewer count.

    Rehearsals are unlisted: only their host and admins see them here (their room opens by link).
    """
    who = principal(request)
    streams = [
        s
        for s in await request.app[CATALOG].list_streams()
        if not s.rehearsal
        or (who is not None and (who.role == Role.ADMIN or who.user_id == s.host_id))
    ]
    figures = await request.app[ROOM_HUB].figures([s.id for s in streams if s.status == "live"])
    return web.json_response(
        {
            "streams": [
                {**asdict(s), "viewers": figures[s.id].viewers if s.id in figures else 0}
                for s in streams
            ]
        }
    )


@routes.get("/api/streams/{stream_id}")
async def get_stream(request: web.Request) -> web.Response:
    """One stream."""
    stream = await request.app[CATALOG].get_stream(request.match_info["stream_id"])
    if stream is None:
        raise web.HTTPNotFound(reason="stream not found")
    return web.json_response(asdict(stream))


# -- sales -----------------------------------------------------------------------------------


@routes.post("/api/sales")
async def create_sale(request: web.Request) -> web.Response:
    """Create a flash sale (admin, or a host for a stream it owns)."""
    who = require(request, Role.ADMIN, Role.HOST)
    body = await json_body(request)
    stream_id = field(body, "stream_id", str, None, optional=True)
    if stream_id is not None and who.role != Role.ADMIN:
        stream = await request.app[CATALOG].get_stream(stream_id)
        if stream is not None and stream.host_id != who.user_id:
            raise ForbiddenError("only the stream's host may sell in it")
    sale = await request.app[SALES].create_sale(
        product_id=field(body, "product_id", int),
        quantity=field(body, "quantity", int),
        per_user_limit=field(body, "per_user_limit", int, 1),
        by=who.actor,
        price_cents=field(body, "price_cents", int, None, optional=True),
        duration_s=field(body, "duration_s", int, 300),
        hold_s=field(body, "hold_s", int, 300),
        starts_at_ms=field(body, "starts_at_ms", int, None, optional=True),
        stream_id=stream_id,
    )
    return web.json_response(sale.to_json(), status=201)


@routes.get("/api/sales/{sale_id}")
async def get_sale(request: web.Request) -> web.Response:
    """A sale with its live state and remaining stock."""
    sale = await request.app[SALES].get_sale(int_param(request, "sale_id"))
    return web.json_response(sale.to_json())


async def _manage_sale(request: web.Request, lot: bool = False) -> int:
    """The sale id, once the caller is shown to be an admin, its creator or its stream's host.

    A lot's sale is managed only through the lot routes (``lot=True``): opened as a flash sale,
    anyone could buy the lot at its start price past the auction (the fuzzing found it).
    """
    who = require(request, Role.ADMIN, Role.HOST)
    sale = await request.app[SALES].get_sale(int_param(request, "sale_id"))
    if who.role == Role.ADMIN or who.user_id == sale.created_by:
        return await _not_a_lot(request, sale.id, lot)
    if sale.stream_id is not None:
        stream = await request.app[CATALOG].get_stream(sale.stream_id)
        if stream is not None and stream.host_id == who.user_id:
            return await _not_a_lot(request, sale.id, lot)
    raise ForbiddenError("only an admin, the sale's creator or the stream's host may do this")


async def _not_a_lot(request: web.Request, sale_id: int, lot: bool) -> int:
    if not lot and await request.app[AUCTIONS].is_lot(sale_id):
        raise SaleIsALot(f"sale {sale_id} is an auction lot: manage it with /api/lots/{sale_id}")
    return sale_id


@routes.post("/api/sales/{sale_id}/open")
async def open_sale(request: web.Request) -> web.Response:
    """Open a sale now or after ``countdown_s``."""
    sale_id = await _manage_sale(request)
    body = await json_body(request, required=False)
    sale = await request.app[SALES].open_sale(sale_id, field(body, "countdown_s", int, 0))
    return web.json_response(sale.to_json())


@routes.post("/api/sales/{sale_id}/close")
async def close_sale(request: web.Request) -> web.Response:
    """Close a sale now."""
    sale_id = await _manage_sale(request)
    sale = await request.app[SALES].close_sale(sale_id)
    return web.json_response(sale.to_json())


@routes.post("/api/sales/{sale_id}/buy")
async def buy(request: web.Request) -> web.Response:
    """Reserve units; the ``Idempotency-Key`` header makes retries safe."""
    who = require(request)
    await throttle(request, BUY)
    sale_id = int_param(request, "sale_id")
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if not key:
        raise BadSaleInput("the Idempotency-Key header is required")
    body = await json_body(request, required=False)
    qty = field(body, "qty", int, 1)
    show_name = field(body, "show_name", bool, False)
    request.app[SHOW_TALLY].sale_hit(sale_id, "buy_attempt")
    result = await request.app[SALES].buy(
        sale_id, who.user_id, key, qty, public_name=who.name if show_name else None
    )
    headers = {"Idempotent-Replayed": "true"} if result.duplicate else {}
    return web.json_response(
        {"order": result.order.to_json(), "remaining": result.remaining},
        status=201,
        headers=headers,
    )


# -- orders ----------------------------------------------------------------------------------


def _caller(who: Principal) -> str:
    # Admins act on any order; everyone else only on their own (others' ids read as 404).
    return "" if who.role == Role.ADMIN else who.user_id


@routes.get("/api/orders/{order_id}")
async def get_order(request: web.Request) -> web.Response:
    """One order (its owner or an admin)."""
    who = require(request)
    order = await request.app[SALES].get_order(request.match_info["order_id"])
    if who.role != Role.ADMIN and order.user_id != who.user_id:
        raise web.HTTPNotFound(reason="order not found")
    return web.json_response(order.to_json())


@routes.get("/api/me/orders")
async def my_orders(request: web.Request) -> web.Response:
    """The caller's newest orders in one show (``?stream_id=``), bought, won or drawn."""
    who = require(request)
    stream_id = request.query.get("stream_id", "")
    if not stream_id or len(stream_id) > 64:
        raise BadRequest("stream_id (at most 64 characters) is required")
    # A lot's sale names no stream: the stream's lots are asked for by id.
    lots = await request.app[AUCTIONS].lot_ids_for_stream(stream_id)
    orders = await buyer_orders(
        request.app[SALES], request.app[LEDGER], who.user_id, stream_id, lot_ids=lots
    )
    return web.json_response({"orders": [o.to_json() for o in orders]})


@routes.post("/api/orders/{order_id}/pay")
async def pay_order(request: web.Request) -> web.Response:
    """Confirm payment of a reserved order (simulated pay; production pays by the webhook)."""
    who = require(request)
    require_simulated_pay(request, who)
    order = await request.app[SALES].pay(request.match_info["order_id"], _caller(who))
    return web.json_response(order.to_json())


@routes.post("/api/orders/{order_id}/cancel")
async def cancel_order(request: web.Request) -> web.Response:
    """Cancel a reserved order and return its stock."""
    who = require(request)
    order = await request.app[SALES].cancel(request.match_info["order_id"], _caller(who))
    return web.json_response(order.to_json())


@routes.get("/api/sales/{sale_id}/audit")
async def audit(request: web.Request) -> web.Response:
    """Check the sale's invariants (admin); 200 when they hold, 409 when any fails."""
    require(request, Role.ADMIN)
    report = await audit_sale(
        request.app[REDIS],
        request.app[LEDGER],
        request.app[SETTINGS].redis_prefix,
        int_param(request, "sale_id"),
    )
    return web.json_response(report.to_json(), status=200 if report.ok else 409)
