"""HTTP API of social selling: group buys, coupons, members. Thin handlers over the domain.

The services are built by the composition root (web/services.py); this module owns their
routes and the group reaper's lifetime. docs/social.md describes the API.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from flashsale.errors import BadSaleInput
from flashsale.group import GroupResult
from flashsale.groupbuy import GroupBuys
from flashsale.groupreaper import GroupReaper
from flashsale.points import points_accrual
from flashsale.sweeper import Repeat, running
from inventory.attribution import PromoterFigures
from web.api import IDEMPOTENCY_HEADER, _manage_sale
from web.auth import USER_ID_RE, Principal, Role
from web.errors import ForbiddenError
from web.http import BadRequest, field, int_param, json_body, require
from web.keys import (
    ATTRIBUTION,
    CATALOG,
    COUPONS,
    GROUP_BUYS,
    MEMBER_PRICES,
    MEMBERS,
    POINTS,
    SETTINGS,
)
from web.payments import require_simulated_pay

routes = web.RouteTableDef()


def _public_name(who: Principal, body: dict[str, object]) -> str | None:
    # Anonymous in the room unless the buyer opted in to be shown.
    return who.name if field(body, "show_name", bool, False) else None


# -- group buys ------------------------------------------------------------------------------


async def _group_reply(groups: GroupBuys, result: GroupResult) -> web.Response:
    """201 with the group, the caller's order and the stock left; 200 for a replay."""
    stream = await groups.stream_of(result.group.sale_id)
    return web.json_response(
        {
            "group": result.group.to_json(stream),
            "order": result.order.to_json(),
            "remaining": result.remaining,
        },
        status=200 if result.duplicate else 201,
    )


@routes.post("/api/sales/{sale_id}/group-offer")
async def offer_group_buy(request: web.Request) -> web.Response:
    """Offer (or re-price) a group buy on a sale (its host or an admin)."""
    sale_id = await _manage_sale(request)
    body = await json_body(request)
    offer = await request.app[GROUP_BUYS].offer(
        sale_id,
        price_cents=field(body, "price_cents", int),
        size=field(body, "size", int),
        ttl_s=field(body, "ttl_s", int, 600),
        by=require(request).actor,
    )
    return web.json_response(offer.to_json(), status=201)


@routes.post("/api/sales/{sale_id}/group-offer/close")
async def close_group_offer(request: web.Request) -> web.Response:
    """Stop new groups and joins (its host or an admin); open groups still fill or expire."""
    sale_id = await _manage_sale(request)
    offer = await request.app[GROUP_BUYS].close_offer(sale_id)
    return web.json_response(offer.to_json())


@routes.get("/api/sales/{sale_id}/groups")
async def list_groups(request: web.Request) -> web.Response:
    """The sale's group offer and its open groups with their progress and deadline."""
    groups = request.app[GROUP_BUYS]
    sale_id = int_param(request, "sale_id")
    offer = await groups.get_offer(sale_id)
    stream = await groups.stream_of(sale_id)
    open_ = await groups.open_groups(sale_id)
    return web.json_response(
        {
            "offer": None if offer is None else offer.to_json(),
            "groups": [g.to_json(stream) for g in open_],
        }
    )


@routes.post("/api/sales/{sale_id}/groups")
async def open_group(request: web.Request) -> web.Response:
    """Open a group, reserving one unit; the ``Idempotency-Key`` header makes retries safe."""
    who = require(request)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if not key:
        raise BadSaleInput("the Idempotency-Key header is required")
    body = await json_body(request, required=False)
    groups = request.app[GROUP_BUYS]
    sale_id = int_param(request, "sale_id")
    result = await groups.open_group(sale_id, who.user_id, key, _public_name(who, body))
    return await _group_reply(groups, result)


@routes.get("/api/groups/{group_id}")
async def get_group(request: web.Request) -> web.Response:
    """One group's progress (who is in it stays private)."""
    groups = request.app[GROUP_BUYS]
    group = await groups.get_group(request.match_info["group_id"])
    return web.json_response(group.to_json(await groups.stream_of(group.sale_id)))


@routes.post("/api/groups/{group_id}/join")
async def join_group(request: web.Request) -> web.Response:
    """Join a group, reserving one unit; joining again replays the first join (200)."""
    who = require(request)
    body = await json_body(request, required=False)
    groups = request.app[GROUP_BUYS]
    result = await groups.join_group(
        request.match_info["group_id"], who.user_id, _public_name(who, body)
    )
    return await _group_reply(groups, result)


# -- coupons ---------------------------------------------------------------------------------


@routes.post("/api/sales/{sale_id}/coupons")
async def drop_coupons(request: web.Request) -> web.Response:
    """Drop N coupons on a sale (its host or an admin)."""
    sale_id = await _manage_sale(request)
    body = await json_body(request)
    drop = await request.app[COUPONS].drop(
        sale_id,
        kind=field(body, "kind", str),
        value=field(body, "value", int),
        count=field(body, "count", int),
        expires_s=field(body, "expires_s", int, 300),
        min_spend_cents=field(body, "min_spend_cents", int, 0),
        by=require(request).actor,
    )
    return web.json_response(drop.to_json(), status=201)


@routes.get("/api/coupons/{coupon_id}")
async def get_coupon(request: web.Request) -> web.Response:
    """A drop's terms and how many coupons are left."""
    drop = await request.app[COUPONS].get_drop(request.match_info["coupon_id"])
    return web.json_response(drop.to_json())


@routes.post("/api/coupons/{coupon_id}/claim")
async def claim_coupon(request: web.Request) -> web.Response:
    """Claim one coupon of a drop (201), or see the one already claimed (200)."""
    who = require(request)
    claim = await request.app[COUPONS].claim(request.match_info["coupon_id"], who.user_id)
    return web.json_response(
        {"coupon": claim.drop.to_json(), "state": claim.state},
        status=200 if claim.duplicate else 201,
    )


@routes.post("/api/orders/{order_id}/pay-with-coupon")
async def pay_with_coupon(request: web.Request) -> web.Response:
    """Pay the caller's reserved order with a coupon they claimed, in one atomic step."""
    who = require(request)
    require_simulated_pay(request, who)
    body = await json_body(request)
    payment = await request.app[COUPONS].pay(
        request.match_info["order_id"], who.user_id, field(body, "coupon_id", str)
    )
    return web.json_response(payment.to_json())


# -- members and points ----------------------------------------------------------------------


def _host_param(request: web.Request) -> str:
    host_id = request.match_info["host_id"]
    if not USER_ID_RE.match(host_id):
        raise BadRequest("host_id must be 1..64 of [A-Za-z0-9_.@:-]")
    return host_id


@routes.post("/api/stores/{host_id}/join")
async def join_store(request: web.Request) -> web.Response:
    """Join a host's store as a member (one tap; joining again is harmless)."""
    who = require(request)
    membership = await request.app[MEMBERS].join(_host_param(request), who.user_id)
    request.app[MEMBER_PRICES].joined(membership.host_id, who.user_id)
    return web.json_response(membership.to_json(), status=201)


@routes.get("/api/stores/{host_id}/me")
async def my_membership(request: web.Request) -> web.Response:
    """The caller's membership of a host's store and their points balance.

    Not being a member is an answer, not an error: every signed-in room asks on load, and a 409
    there put a red "Failed to load resource" in every viewer's console.
    """
    who = require(request)
    host_id = _host_param(request)
    membership = await request.app[MEMBERS].membership(host_id, who.user_id)
    if membership is None:
        return web.json_response(
            {"host_id": host_id, "user_id": who.user_id, "member": False, "points": 0}
        )
    return web.json_response({**membership.to_json(), "member": True})


@routes.get("/api/stores/{host_id}/members")
async def store_members(request: web.Request) -> web.Response:
    """How many members the store has (the host itself or an admin)."""
    who = require(request, Role.ADMIN, Role.HOST)
    host_id = _host_param(request)
    if who.role != Role.ADMIN and host_id != who.user_id:
        raise ForbiddenError("only the store's host may see its member count")
    count = await request.app[MEMBERS].count(host_id)
    return web.json_response({"host_id": host_id, "members": count})


@routes.post("/api/orders/{order_id}/pay-with-points")
async def pay_with_points(request: web.Request) -> web.Response:
    """Pay the caller's reserved order, taking ``points`` cents off with their store points."""
    who = require(request)
    require_simulated_pay(request, who)
    body = await json_body(request)
    payment = await request.app[POINTS].pay(
        request.match_info["order_id"], who.user_id, field(body, "points", int)
    )
    return web.json_response(payment.to_json())


# -- sharing and attribution -----------------------------------------------------------------


@routes.get("/api/streams/{stream_id}/share-link")
async def share_link(request: web.Request) -> web.Response:
    """The caller's personal share link for a show (visits through it are credited to them)."""
    who = require(request)
    stream = await request.app[CATALOG].get_stream(request.match_info["stream_id"])
    if stream is None:
        raise web.HTTPNotFound(reason="stream not found")
    return web.json_response({"path": f"/live/{stream.id}?ref={who.user_id}"})


@routes.post("/api/streams/{stream_id}/touch")
async def touch(request: web.Request) -> web.Response:
    """Record that the caller came to a show through ``ref``'s link (the room page sends it)."""
    who = require(request)
    body = await json_body(request)
    ref = field(body, "ref", str)
    if not USER_ID_RE.match(ref):
        raise BadRequest("ref must be a user id")
    stream = await request.app[CATALOG].get_stream(request.match_info["stream_id"])
    if stream is None:
        raise web.HTTPNotFound(reason="stream not found")
    counted = await request.app[ATTRIBUTION].touch(who.user_id, stream.id, ref)
    return web.json_response({"counted": counted})


@routes.put("/api/products/{product_id}/commission")
async def set_commission(request: web.Request) -> web.Response:
    """Set the promoters' commission on a product, in basis points (its owner or an admin)."""
    who = require(request, Role.ADMIN, Role.HOST)
    product_id = int_param(request, "product_id")
    rate = field(await json_body(request), "rate_bp", int)
    await request.app[ATTRIBUTION].set_commission(product_id, rate, who.actor)
    return web.json_response({"product_id": product_id, "rate_bp": rate})


@routes.get("/api/streams/{stream_id}/promoters")
async def promoters(request: web.Request) -> web.Response:
    """The show's promoters by paid money brought (its host or an admin)."""
    who = require(request, Role.ADMIN, Role.HOST)
    stream = await request.app[CATALOG].get_stream(request.match_info["stream_id"])
    if stream is None:
        raise web.HTTPNotFound(reason="stream not found")
    if who.role != Role.ADMIN and stream.host_id != who.user_id:
        raise ForbiddenError("only the stream's host may see its promoters")
    board = await request.app[ATTRIBUTION].leaderboard(stream_id=stream.id)
    return web.json_response({"promoters": [p.to_json() for p in board]})


@routes.get("/api/promoters/me")
async def my_figures(request: web.Request) -> web.Response:
    """The caller's own figures as a promoter, across every show."""
    who = require(request)
    board = await request.app[ATTRIBUTION].leaderboard(promoter_id=who.user_id)
    mine = board[0] if board else PromoterFigures(who.user_id, 0, 0, 0, 0)
    return web.json_response(mine.to_json())


async def social_workers_ctx(app: web.Application) -> AsyncIterator[None]:
    """Sweep expired groups, credit points, catch up attributions (each is safe anywhere)."""
    workers = [
        GroupReaper(app[GROUP_BUYS], app[SETTINGS].reaper_interval_s),
        points_accrual(app[MEMBERS]),
        # Orders are attributed as the persister writes them; this only catches up what an older
        # persister wrote without doing so, and it reads every order, so it runs rarely.
        Repeat("attribution-catch-up", app[ATTRIBUTION].attribute_orders, 3600.0),
    ]
    async with running(workers):
        yield


def setup_social(app: web.Application) -> None:
    """Register the social-selling routes and workers (after the composition root)."""
    app.cleanup_ctx.append(social_workers_ctx)
    app.add_routes(routes)
