"""HTTP API of live auctions and fair draws. Thin handlers over flashsale/auction.py and draw.py.

A lot's id is its sale's id; its creator, its stream's host or an admin manages it.
docs/auctions.md describes the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from flashsale.auction import AuctionSweeper
from flashsale.errors import BadSaleInput
from flashsale.sweeper import Repeat, running
from inventory.errors import NotFound
from web.api import IDEMPOTENCY_HEADER, _manage_sale
from web.auth import Role
from web.errors import ForbiddenError
from web.http import field, int_param, json_body, principal, require
from web.keys import AUCTIONS, CATALOG, DRAWS, SETTINGS

routes = web.RouteTableDef()


async def _manage_lot(request: web.Request) -> int:
    """The lot id, once the caller is an admin, the lot's creator or its stream's host."""
    try:
        return await _manage_sale(request, lot=True)
    except ForbiddenError:
        who = require(request, Role.HOST)
        lot = await request.app[AUCTIONS].get_lot(int_param(request, "sale_id"))
        stream = lot.stream_id and await request.app[CATALOG].get_stream(lot.stream_id)
        if stream and stream.host_id == who.user_id:
            return lot.id
        raise


# -- auctions --------------------------------------------------------------------------------


@routes.post("/api/lots")
async def create_lot(request: web.Request) -> web.Response:
    """Create a lot (a host in their own stream, or an admin); it opens with ``/open``."""
    who = require(request, Role.ADMIN, Role.HOST)
    body = await json_body(request)
    stream_id = field(body, "stream_id", str, None, optional=True)
    if stream_id is not None:
        stream = await request.app[CATALOG].get_stream(stream_id)
        if stream is None:
            raise NotFound(f"stream {stream_id} not found", code="stream_not_found")
        if who.role != Role.ADMIN and stream.host_id != who.user_id:
            raise ForbiddenError("only the stream's host may auction in it")
    lot = await request.app[AUCTIONS].create_lot(
        field(body, "product_id", int),
        who.actor,
        start_cents=field(body, "start_cents", int),
        increment_cents=field(body, "increment_cents", int),
        duration_s=field(body, "duration_s", int, 60),
        reserve_cents=field(body, "reserve_cents", int, 0),
        stream_id=stream_id,
        hold_s=field(body, "hold_s", int, 300),
        window_s=field(body, "window_s", int, 10),
        extend_s=field(body, "extend_s", int, 10),
    )
    return web.json_response(lot.to_json("*"), status=201)


@routes.post("/api/lots/{sale_id}/open")
async def open_lot(request: web.Request) -> web.Response:
    """Start the lot's clock (its host or an admin)."""
    lot = await request.app[AUCTIONS].open_lot(await _manage_lot(request))
    return web.json_response(lot.to_json("*"))


@routes.get("/api/lots/{sale_id}")
async def get_lot(request: web.Request) -> web.Response:
    """The lot: current bid, leader (if opted in), end; the winner sees their order id."""
    who = principal(request)
    lot = await request.app[AUCTIONS].get_lot(int_param(request, "sale_id"))
    return web.json_response(lot.to_json(who.user_id if who else None))


@routes.get("/api/streams/{stream_id}/lots")
async def stream_lots(request: web.Request) -> web.Response:
    """The stream's latest lots, newest first (the room's lot card and the studio)."""
    who = principal(request)
    lots = await request.app[AUCTIONS].lots_for_stream(request.match_info["stream_id"][:64])
    return web.json_response({"lots": [lot.to_json(who.user_id if who else None) for lot in lots]})


@routes.post("/api/lots/{sale_id}/bids")
async def bid(request: web.Request) -> web.Response:
    """Bid ``amount_cents``; the ``Idempotency-Key`` header makes retries safe."""
    who = require(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if not key:
        raise BadSaleInput("the Idempotency-Key header is required")
    body = await json_body(request)
    name = who.name if field(body, "show_name", bool, False) else None
    result = await request.app[AUCTIONS].bid(
        int_param(request, "sale_id"), who.user_id, key, field(body, "amount_cents", int), name
    )
    return web.json_response(result.to_json(), status=200 if result.duplicate else 201)


@routes.get("/api/lots/{sale_id}/bids")
async def bid_history(request: web.Request) -> web.Response:
    """The lot's accepted bids, newest first, with bidder ids (its host or an admin)."""
    lot_id = await _manage_lot(request)
    return web.json_response({"bids": await request.app[AUCTIONS].bid_history(lot_id)})


@routes.post("/api/lots/{sale_id}/runner-up")
async def runner_up(request: web.Request) -> web.Response:
    """Offer the lot to the next highest bidder once the winner's hold lapsed (its host)."""
    lot = await request.app[AUCTIONS].offer_runner_up(await _manage_lot(request))
    return web.json_response(lot.to_json("*"))


# -- fair draws ------------------------------------------------------------------------------


@routes.post("/api/sales/{sale_id}/draw")
async def create_draw(request: web.Request) -> web.Response:
    """Run a sale not yet opened as a draw: publish the commitment, open the entry window."""
    sale_id = await _manage_sale(request)
    body = await json_body(request, required=False)
    window_s = field(body, "window_s", int, 60)
    draw = await request.app[DRAWS].create(sale_id, window_s, require(request).actor)
    return web.json_response(draw.to_json(), status=201)


@routes.get("/api/sales/{sale_id}/draw")
async def get_draw(request: web.Request) -> web.Response:
    """The draw: commitment, window, entries; after the close the seed, hash and winners."""
    draw = await request.app[DRAWS].get(int_param(request, "sale_id"))
    return web.json_response(draw.to_json())


@routes.get("/api/streams/{stream_id}/draws")
async def stream_draws(request: web.Request) -> web.Response:
    """The stream's latest draws, newest first (the room's draw card)."""
    draws = await request.app[DRAWS].draws_for_stream(request.match_info["stream_id"][:64])
    return web.json_response({"draws": [d.to_json() for d in draws]})


@routes.post("/api/sales/{sale_id}/draw/close")
async def close_draw(request: web.Request) -> web.Response:
    """Close entries (after the window, or ``now``), reveal the seed, reserve the winners."""
    sale_id = await _manage_sale(request)
    body = await json_body(request, required=False)
    draw = await request.app[DRAWS].close(sale_id, now=field(body, "now", bool, False))
    return web.json_response(draw.to_json())


@routes.get("/api/sales/{sale_id}/draw/entries")
async def draw_entries(request: web.Request) -> web.Response:
    """The published entry list (one user id a line), the input of ``livesell verify-draw``."""
    entries = await request.app[DRAWS].entries(int_param(request, "sale_id"))
    return web.Response(text="".join(f"{u}\n" for u in entries), content_type="text/plain")


async def auction_workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Close due lots and draws (safe in every process: each script decides once)."""
    interval = app[SETTINGS].reaper_interval_s
    workers = [
        AuctionSweeper(app[AUCTIONS], min(0.1, interval)),
        Repeat("draw-closer", app[DRAWS].close_due, interval),
    ]
    async with running(workers):
        yield


def setup_auctions(app: web.Application) -> None:
    """Register the auction and draw routes and the lot sweeper (after the composition root)."""
    app.cleanup_ctx.append(auction_workers_ctx)
    app.add_routes(routes)
