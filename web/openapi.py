"""The OpenAPI 3.1 document of the HTTP API, built from one table and served at /openapi.json.

Each route is one ``Op`` row; what every operation shares (the bearer scheme, the error shape,
path parameters, 401/403/404 answers) is derived here once instead of written per handler.
tests/fuzz/test_openapi.py checks the table against the app's router both ways.
"""

from __future__ import annotations

import json
import re

from aiohttp import web

from web.apischema import (
    ANY_OBJECT,
    BOOL,
    INT,
    JSON,
    SCHEMAS,
    SDP,
    STR,
    TEXT,
    USER_ID,
    Access,
    Op,
    Schema,
    obj,
    ref,
)

IDEMPOTENCY = {"Idempotency-Key": {"type": "string", "minLength": 1, "maxLength": 80}}
_ID_ONLY = obj(("ok",), ok=BOOL)
_SALE_BODY = obj(
    ("product_id", "quantity"),
    product_id=INT,
    quantity=INT,
    per_user_limit=INT,
    price_cents={"type": ["integer", "null"]},
    duration_s=INT,
    hold_s=INT,
    starts_at_ms={"type": ["integer", "null"]},
    stream_id={"type": ["string", "null"]},
)
_LOT_BODY = obj(
    ("product_id", "start_cents", "increment_cents"),
    product_id=INT,
    start_cents=INT,
    increment_cents=INT,
    duration_s=INT,
    reserve_cents=INT,
    stream_id={"type": ["string", "null"]},
    hold_s=INT,
    window_s=INT,
    extend_s=INT,
)
_SHOW_NAME = obj(show_name=BOOL)
_STAFF, _SIGNED, _OPT, _ADMIN = Access.STAFF, Access.SIGNED_IN, Access.OPTIONAL, Access.ADMIN

OPS: tuple[Op, ...] = (
    # -- health, metrics, this document
    Op("GET", "/healthz", "The process is up.", result=ANY_OBJECT, tag="ops"),
    Op("GET", "/readyz", "Redis and the database answer (503 names what does not).",
       result=ANY_OBJECT, tag="ops"),
    Op("GET", "/metrics", "Prometheus metrics (text exposition format).", result_type="text/plain",
       tag="ops"),
    Op("GET", "/openapi.json", "This document.", result=ANY_OBJECT, tag="ops"),
    Op("GET", "/api/ops/overview", "Every stream, sale and process figure at a glance.",
       _ADMIN, result=ANY_OBJECT, tag="ops"),
    Op("GET", "/api/rooms/stats", "This process's room counters.", _ADMIN, result=ANY_OBJECT,
       tag="ops"),
    # -- sign-in
    Op("POST", "/api/login", "Exchange a one-time login code for a token.",
       body=obj(("code",), code=STR), result=ref("Token"), tag="sign-in"),
    Op("POST", "/api/guest", "A viewer token for a guest with a display name.",
       body=obj(("name",), name=STR), status=201, result=ref("Token"), tag="sign-in"),
    # -- products and streams
    Op("POST", "/api/products", "Create a product.", _STAFF, status=201, result=ref("Product"),
       body=obj(("name", "price_cents"), name=STR, price_cents=INT, description=STR,
                 currency=STR, image_url=STR, member_price_cents={"type": ["integer", "null"]})),
    Op("PATCH", "/api/products/{product_id}",
       "Edit a product (its owner or an admin); null clears the member price.", _STAFF,
       body=obj(name=STR, price_cents=INT, description=STR, image_url=STR,
                member_price_cents={"type": ["integer", "null"]}), result=ref("Product")),
    Op("GET", "/api/products", "List products; mine=1: only the caller's own (needs a token).",
       _OPT, query={"mine": {"type": "string", "enum": ["1"]}},
       result=obj(("products",), products={"type": "array", "items": ref("Product")})),
    Op("PUT", "/api/products/{product_id}/commission", "Set the promoters' commission (bp).",
       _STAFF, body=obj(("rate_bp",), rate_bp=INT), result=ANY_OBJECT),
    Op("GET", "/api/products/{product_id}/reviews", "A product card's visible reviews.",
       result=ANY_OBJECT, tag="reviews"),
    Op("POST", "/api/streams", "Create a stream (an admin may name its host_id).", _STAFF,
       body=obj(("id",), id=STR, title=STR, host_id=USER_ID), status=201,
       result=ref("Stream")),
    Op("GET", "/api/streams", "List streams, newest first, with viewer counts.",
       result=obj(("streams",), streams={"type": "array", "items": ref("Stream")})),
    Op("GET", "/api/streams/{stream_id}", "One stream.", result=ref("Stream")),
    Op("GET", "/api/streams/{stream_id}/stats", "The show's live figures (its host).", _STAFF,
       result=ANY_OBJECT, tag="ops"),
    Op("GET", "/api/streams/{stream_id}/metrics", "The relay's figures for the stream.",
       result=ANY_OBJECT, tag="stream"),
    Op("GET", "/api/streams/{stream_id}/analytics", "The show's analytics (JSON or CSV).",
       _STAFF, result=ANY_OBJECT, query={"format": {"type": "string", "enum": ["json", "csv"]}},
       tag="analytics"),
    Op("POST", "/api/streams/{stream_id}/beacon", "Product-card views and clicks.",
       body=obj(card_view={"type": "array", "items": INT},
                 card_click={"type": "array", "items": INT}),
       status=202, result=_ID_ONLY, tag="analytics"),
    Op("GET", "/api/streams/{stream_id}/recordings", "The stream's recordings.",
       result=ANY_OBJECT, tag="replay"),
    Op("GET", "/api/streams/{stream_id}/recordings/{name}", "One recording file (Range works).",
       result_type="video/mp4", tag="replay"),
    Op("GET", "/api/streams/{stream_id}/timeline", "The show's archived room events.",
       result=ANY_OBJECT, query={"after_seq": {"type": "string", "pattern": "^[0-9]{1,18}$"}},
       tag="replay"),
    Op("GET", "/api/streams/{stream_id}/sales/open", "The show's sales open now.",
       result=ANY_OBJECT, tag="replay"),
    Op("GET", "/api/replays", "Ended shows with a recording.", result=ANY_OBJECT, tag="replay"),
    Op("GET", "/hls/{stream_id}/{name}", "A live HLS playlist, init section or segment.",
       result_type="application/vnd.apple.mpegurl", tag="replay"),
    Op("GET", "/api/streams/{stream_id}/reviews", "Every review of a show (its host).", _STAFF,
       result=ANY_OBJECT, tag="reviews"),
    Op("GET", "/api/streams/{stream_id}/lots", "The stream's latest lots.", _OPT,
       result=ANY_OBJECT, tag="auctions"),
    Op("GET", "/api/streams/{stream_id}/draws", "The stream's latest draws.", result=ANY_OBJECT,
       tag="auctions"),
    Op("GET", "/api/streams/{stream_id}/share-link", "The caller's share link for a show.",
       _SIGNED, result=ANY_OBJECT, tag="social"),
    Op("POST", "/api/streams/{stream_id}/touch", "Credit a visit through ``ref``'s link.",
       _SIGNED, body=obj(("ref",), ref=USER_ID), result=ANY_OBJECT, tag="social"),
    Op("GET", "/api/streams/{stream_id}/promoters", "The show's promoters (its host).", _STAFF,
       result=ANY_OBJECT, tag="social"),
    Op("POST", "/api/streams/{stream_id}/room/{action}", "A host/moderator room action.",
       _SIGNED, body=ANY_OBJECT, body_required=False, result=ANY_OBJECT, tag="room"),
    Op("GET", "/ws/rooms/{stream_id}", "The live room's websocket (docs/protocol.md).", _OPT,
       status=101, query={"token": STR, "since": STR}, tag="room"),
    # -- sales and orders
    Op("POST", "/api/sales", "Create a flash sale.", _STAFF, body=_SALE_BODY, status=201,
       result=ref("Sale")),
    Op("GET", "/api/sales/{sale_id}", "A sale with its live state and stock.",
       result=ref("Sale")),
    Op("POST", "/api/sales/{sale_id}/open", "Open a sale now or after countdown_s.", _STAFF,
       body=obj(countdown_s=INT), body_required=False, result=ref("Sale")),
    Op("POST", "/api/sales/{sale_id}/close", "Close a sale now.", _STAFF, result=ref("Sale")),
    Op("POST", "/api/sales/{sale_id}/buy", "Reserve units (Idempotency-Key makes retries safe).",
       _SIGNED, body=obj(qty=INT, show_name=BOOL), body_required=False, status=201,
       result=ref("BuyResult"), headers=IDEMPOTENCY),
    Op("GET", "/api/sales/{sale_id}/audit", "Check the sale's invariants (409 when any fails).",
       _ADMIN, result=ANY_OBJECT),
    Op("GET", "/api/orders/{order_id}", "One order (its owner or an admin).", _SIGNED,
       result=ref("Order")),
    Op("POST", "/api/orders/{order_id}/pay", "Confirm payment of a reserved order.", _SIGNED,
       result=ref("Order")),
    Op("POST", "/api/orders/{order_id}/cancel", "Cancel a reserved order.", _SIGNED,
       result=ref("Order")),
    Op("POST", "/api/orders/{order_id}/pay-with-coupon", "Pay with a claimed coupon.", _SIGNED,
       body=obj(("coupon_id",), coupon_id=STR), result=ref("Order"), tag="social"),
    Op("POST", "/api/orders/{order_id}/pay-with-points", "Pay partly with store points.",
       _SIGNED, body=obj(("points",), points=INT), result=ref("Order"), tag="social"),
    Op("POST", "/api/orders/{order_id}/review", "Review the product of one's paid order.",
       _SIGNED, body=obj(("rating",), rating=INT, text=STR, show_name=BOOL), status=201,
       result=ref("Review"), tag="reviews"),
    Op("POST", "/api/reviews/{review_id}/hide", "Hide a review (or show it again).", _STAFF,
       body=obj(hidden=BOOL), body_required=False, result=ANY_OBJECT, tag="reviews"),
    Op("DELETE", "/api/reviews/{review_id}", "Delete a review for good.", _STAFF,
       result=ANY_OBJECT, tag="reviews"),
    # -- group buys, coupons, members, promoters
    Op("POST", "/api/sales/{sale_id}/group-offer", "Offer a group buy on a sale.", _STAFF,
       body=obj(("price_cents", "size"), price_cents=INT, size=INT, ttl_s=INT), status=201,
       result=ANY_OBJECT, tag="social"),
    Op("POST", "/api/sales/{sale_id}/group-offer/close", "Stop new groups and joins.", _STAFF,
       result=ANY_OBJECT, tag="social"),
    Op("GET", "/api/sales/{sale_id}/groups", "The sale's group offer and open groups.",
       result=ANY_OBJECT, tag="social"),
    Op("POST", "/api/sales/{sale_id}/groups", "Open a group, reserving one unit.", _SIGNED,
       body=_SHOW_NAME, body_required=False, status=201, replays=True, result=ref("GroupResult"),
       headers=IDEMPOTENCY, tag="social"),
    Op("GET", "/api/groups/{group_id}", "One group's progress.", result=ref("Group"),
       tag="social"),
    Op("POST", "/api/groups/{group_id}/join", "Join a group, reserving one unit.", _SIGNED,
       body=_SHOW_NAME, body_required=False, status=201, replays=True, result=ref("GroupResult"),
       tag="social"),
    Op("POST", "/api/sales/{sale_id}/coupons", "Drop coupons on a sale.", _STAFF, status=201,
       body=obj(("kind", "value", "count"), kind=STR, value=INT, count=INT, expires_s=INT,
                 min_spend_cents=INT), result=ref("Coupon"), tag="social"),
    Op("GET", "/api/coupons/{coupon_id}", "A drop's terms and coupons left.",
       result=ref("Coupon"), tag="social"),
    Op("POST", "/api/coupons/{coupon_id}/claim", "Claim one coupon of a drop.", _SIGNED,
       status=201, replays=True, result=ANY_OBJECT, tag="social"),
    Op("POST", "/api/stores/{host_id}/join", "Join a host's store as a member.", _SIGNED,
       status=201, result=ANY_OBJECT, tag="social"),
    Op("GET", "/api/stores/{host_id}/me", "The caller's membership and points.", _SIGNED,
       result=ANY_OBJECT, tag="social"),
    Op("GET", "/api/stores/{host_id}/members", "The store's member count (its host).", _STAFF,
       result=ANY_OBJECT, tag="social"),
    Op("GET", "/api/promoters/me", "The caller's figures as a promoter.", _SIGNED,
       result=ANY_OBJECT, tag="social"),
    # -- auctions and draws
    Op("POST", "/api/lots", "Create a lot.", _STAFF, body=_LOT_BODY, status=201,
       result=ref("Lot"), tag="auctions"),
    Op("POST", "/api/lots/{sale_id}/open", "Start the lot's clock.", _STAFF, result=ref("Lot"),
       tag="auctions"),
    Op("GET", "/api/lots/{sale_id}", "The lot: current bid, leader, end.", _OPT,
       result=ref("Lot"), tag="auctions"),
    Op("POST", "/api/lots/{sale_id}/bids", "Bid amount_cents.", _SIGNED,
       body=obj(("amount_cents",), amount_cents=INT, show_name=BOOL), status=201, replays=True,
       result=ANY_OBJECT, headers=IDEMPOTENCY, tag="auctions"),
    Op("GET", "/api/lots/{sale_id}/bids", "The lot's accepted bids (its host).", _STAFF,
       result=ANY_OBJECT, tag="auctions"),
    Op("POST", "/api/lots/{sale_id}/runner-up", "Offer the lot to the runner-up.", _STAFF,
       result=ref("Lot"), tag="auctions"),
    Op("POST", "/api/sales/{sale_id}/draw", "Run a sale not yet opened as a draw.", _STAFF,
       body=obj(window_s=INT), body_required=False, status=201, result=ref("Draw"),
       tag="auctions"),
    Op("GET", "/api/sales/{sale_id}/draw", "The draw and, once closed, its proof.",
       result=ref("Draw"), tag="auctions"),
    Op("POST", "/api/sales/{sale_id}/draw/close", "Close entries and reveal the seed.", _STAFF,
       body=obj(now=BOOL), body_required=False, result=ref("Draw"), tag="auctions"),
    Op("GET", "/api/sales/{sale_id}/draw/entries", "The published entry list, one a line.",
       result_type="text/plain", tag="auctions"),
    # -- one's own data
    Op("GET", "/api/me/orders", "The caller's newest orders in one show (bought, won, drawn).",
       _SIGNED, query={"stream_id": STR}, result=obj(("orders",), orders={"type": "array",
       "items": ref("Order")})),
    Op("GET", "/api/me/data", "Everything kept about the caller.", _SIGNED, result=ANY_OBJECT,
       tag="privacy"),
    # -- payments (docs/webhooks.md)
    Op("GET", "/api/payments/config", "Whether buyers may mark their own orders paid.",
       result=obj(("simulated_pay",), simulated_pay=BOOL), tag="payments"),
    Op("POST", "/api/payments/webhook",
       "The payment provider confirms an order (HMAC-signed, replay-protected).",
       body=obj(("id", "type", "order_id"), id=STR, type=STR, order_id=STR,
                amount_cents={"type": ["integer", "null"]}),
       headers={"Livesell-Signature": STR}, result=ANY_OBJECT, tag="payments"),
    # -- token revocation (docs/security.md)
    Op("POST", "/api/admin/revocations", "Revoke one token (jti or token) or all of a user's.",
       _ADMIN, body=obj(jti=STR, token=STR, user_id=STR), status=201, result=ANY_OBJECT,
       tag="ops"),
    # -- rehearsals (issue 11)
    Op("PATCH", "/api/streams/{stream_id}", "Mark a show a rehearsal or a real show (not live).",
       _STAFF, body=obj(("rehearsal",), rehearsal=BOOL), result=ANY_OBJECT, tag="rehearsal"),
    Op("POST", "/api/streams/{stream_id}/rehearsal-report", "Store a rehearsal's report.",
       _STAFF, body=obj(("report", "html"), report=ANY_OBJECT, html=STR), status=201,
       result=ANY_OBJECT, tag="rehearsal"),
    Op("GET", "/api/streams/{stream_id}/rehearsal-reports", "The show's rehearsal reports.",
       _STAFF, result=ANY_OBJECT, tag="rehearsal"),
    Op("GET", "/api/streams/{stream_id}/rehearsal-reports/{name}",
       "One report, HTML (sandboxed) or JSON; its unguessable id is the capability.",
       result_type="text/html", tag="rehearsal"),
    Op("DELETE", "/api/me/data", "Erase the caller's data.", _SIGNED, result=ANY_OBJECT,
       tag="privacy"),
    # -- pages and static files
    Op("GET", "/", "The landing page.", result_type="text/html", tag="pages"),
    Op("GET", "/live/{stream_id}", "A show's room page.", result_type="text/html", tag="pages"),
    Op("GET", "/studio", "The host's studio.", result_type="text/html", tag="pages"),
    Op("GET", "/studio/{stream_id}", "The studio of one show.", result_type="text/html",
       tag="pages"),
    Op("GET", "/ops", "The operators' page.", result_type="text/html", tag="pages"),
    Op("GET", "/replay/{stream_id}", "A show's replay page.", result_type="text/html",
       tag="pages"),
    Op("GET", "/static/{path}", "A static file (scripts, styles, images).",
       result_type="application/octet-stream", tag="pages"),
)  # fmt: skip


def _stream_ops() -> tuple[Op, ...]:
    """WHIP ingest and WHEP playback share one shape (RFC 9725 and its WHEP draft)."""
    ops: list[Op] = []
    for kind, who, what in (("whip", _STAFF, "publish"), ("whep", _OPT, "watch")):
        base, session = f"/{kind}/{{stream_id}}", f"/{kind}/{{stream_id}}/{{session_id}}"
        ops += [
            Op("POST", base, f"{kind.upper()}: {what} with an SDP offer.", who, body=SDP,
               body_type="application/sdp", status=201, result_type="application/sdp",
               tag="stream"),
            Op("OPTIONS", base, "CORS preflight.", status=204, tag="stream"),
            Op("DELETE", session, f"{kind.upper()}: end the session.", who, tag="stream"),
            Op("PATCH", session, f"{kind.upper()}: trickle ICE candidates.", who, body=SDP,
               body_type="application/trickle-ice-sdpfrag", status=204, tag="stream",
               headers={"If-Match": STR}),
            Op("OPTIONS", session, "CORS preflight.", status=204, tag="stream"),
        ]  # fmt: skip
    return tuple(ops)


ALL_OPS = OPS + _stream_ops()
_PARAM_RE = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _error(description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": ref("Error")}}}


def _parameters(op: Op) -> list[Schema]:
    params: list[Schema] = [
        {"name": name, "in": "path", "required": True, "schema": STR}
        for name in _PARAM_RE.findall(op.path)
    ]
    params += [{"name": n, "in": "query", "schema": s} for n, s in op.query.items()]
    params += [
        {"name": n, "in": "header", "required": n == "Idempotency-Key", "schema": s}
        for n, s in op.headers.items()
    ]
    return params


def _operation(op: Op) -> Schema:
    ok: Schema = {"description": "success"}
    if op.result is not None:
        ok["content"] = {JSON: {"schema": op.result}}
    elif op.status not in (101, 204) and op.method not in ("DELETE", "OPTIONS"):
        ok["content"] = {op.result_type: {"schema": TEXT}}
    responses: dict[str, Schema] = {str(op.status): ok}
    if op.replays:
        responses["200"] = {**ok, "description": "a retry: the first answer again"}
    if op.access is not Access.PUBLIC:
        responses["401"] = _error("the bearer token is missing, malformed or expired")
    if op.access in (Access.STAFF, Access.ADMIN):
        responses["403"] = _error(f"the caller is not {op.access.value}")
    if "{" in op.path:
        responses["404"] = _error("no such resource")
    responses["default"] = _error("any other error (400, 409, 413, 415, 429, 503...)")
    doc: Schema = {
        "summary": op.summary,
        "operationId": op.method.lower() + _PARAM_RE.sub(r"\1", op.path),
        "tags": [op.tag],
        "responses": responses,
    }
    params = _parameters(op)
    if params:
        doc["parameters"] = params
    if op.body is not None:
        doc["requestBody"] = {
            "required": op.body_required,
            "content": {op.body_type: {"schema": op.body}},
        }
    if op.access is Access.PUBLIC:
        doc["security"] = []
    elif op.access is Access.OPTIONAL:
        doc["security"] = [{}, {"bearer": []}]
    else:
        doc["security"] = [{"bearer": []}]
        if op.access is not Access.SIGNED_IN:
            doc["description"] = f"Needs a {op.access.value} token."
    return doc


BEARER: Schema = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}


def build_document() -> Schema:
    """The whole OpenAPI 3.1 document."""
    paths: dict[str, Schema] = {}
    for op in ALL_OPS:
        paths.setdefault(_PARAM_RE.sub(r"{\1}", op.path), {})[op.method.lower()] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "livesell",
            "version": "1",
            "description": "Live-streaming selling: rooms, flash sales, auctions, the relay. "
            'Every error is JSON {"error": code, "message": text}, plus "field" when one '
            "input is at fault.",
        },
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"bearer": BEARER},
        },
    }


OPENAPI = web.AppKey("openapi", bytes)


async def openapi_json(request: web.Request) -> web.Response:
    """This API's OpenAPI 3.1 document."""
    return web.Response(body=request.app[OPENAPI], content_type=JSON)


def setup_openapi(app: web.Application) -> None:
    """Serve the document (built once) at ``/openapi.json``."""
    app[OPENAPI] = json.dumps(build_document()).encode()
    app.router.add_get("/openapi.json", openapi_json)
