"""HTTP API of verified reviews: write one for a paid order, read a product's, moderate a show's."""

from __future__ import annotations

from aiohttp import web

from inventory.errors import NotFound
from inventory.reviews import NotABuyer, ReviewView
from web.auth import Role
from web.errors import ForbiddenError
from web.http import field, int_param, json_body, require
from web.keys import CATALOG, REVIEWS, SALES
from web.ops import hosted_stream

routes = web.RouteTableDef()


@routes.post("/api/orders/{order_id}/review")
async def write_review(request: web.Request) -> web.Response:
    """Rate and review the product of one's own paid order (once per order)."""
    who = require(request)
    sales = request.app[SALES]
    order = await sales.get_order(request.match_info["order_id"])
    if order.user_id != who.user_id:
        # As GET /api/orders/{id}: another's order reads as absent (ids are sequential).
        raise NotFound(f"order {order.id} not found")
    if order.state != "paid":
        raise NotABuyer("only the buyer of a paid order may review it")
    sale = await sales.get_sale(order.sale_id)
    body = await json_body(request)
    review = await request.app[REVIEWS].write(
        order.id, sale.product_id, sale.stream_id, who.user_id,
        who.name if field(body, "show_name", bool, False) else None,
        field(body, "rating", int), field(body, "text", str, ""),
    )  # fmt: skip
    return web.json_response(review.to_json(), status=201)


@routes.get("/api/products/{product_id}/reviews")
async def product_reviews(request: web.Request) -> web.Response:
    """A product card's reviews: count, average rating and the latest few (visible ones)."""
    summary = await request.app[REVIEWS].summary(int_param(request, "product_id"))
    return web.json_response(summary)


@routes.get("/api/streams/{stream_id}/reviews")
async def stream_reviews(request: web.Request) -> web.Response:
    """Every review of a show's products, hidden ones too (its host or an admin)."""
    stream = await hosted_stream(request, "reviews")
    reviews = await request.app[REVIEWS].for_stream(stream.id)
    return web.json_response({"reviews": [r.to_json() for r in reviews]})


async def _moderated(request: web.Request) -> ReviewView:
    """The path's review, when the caller hosts its show or is an admin."""
    who = require(request, Role.ADMIN, Role.HOST)
    review = await request.app[REVIEWS].get(int_param(request, "review_id"))
    if who.role != Role.ADMIN:
        stream = review.stream_id and await request.app[CATALOG].get_stream(review.stream_id)
        if not stream or stream.host_id != who.user_id:
            raise ForbiddenError("only the show's host or an admin may moderate its reviews")
    return review


@routes.post("/api/reviews/{review_id}/hide")
async def hide_review(request: web.Request) -> web.Response:
    """Hide a review from the room, or show it again with ``{"hidden": false}``."""
    review = await _moderated(request)
    body = await json_body(request, required=False)
    hidden = field(body, "hidden", bool, True)
    return web.json_response((await request.app[REVIEWS].set_hidden(review.id, hidden)).to_json())


@routes.delete("/api/reviews/{review_id}")
async def delete_review(request: web.Request) -> web.Response:
    """Delete a review for good."""
    review = await _moderated(request)
    await request.app[REVIEWS].delete(review.id)
    return web.json_response({"deleted": review.id})
