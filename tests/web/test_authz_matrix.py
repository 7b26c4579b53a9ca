"""The authorization matrix: every HTTP route and room action against seven callers.

Callers, in column order: anonymous, a viewer (alice, who buys), another viewer (bob), a
moderator of the show's room (mo), another host (hank, with a show of his own), the show's host
(hana) and an admin. Each cell is the status (HTTP) or the outcome (socket) that caller must
get. The route list is read from the app's router, so a new route without a row fails here.
Where a cell changes state (pay, close, delete...) it gets fresh objects of its own.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from chat.hub import SALE_COMMANDS
from chat.protocol import CLIENT_EVENTS, decode, encode
from tests.conftest import _pg_reachable
from web.auth import Role, TokenSigner
from web.keys import CATALOG, RECORDINGS


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A PostgreSQL database of this test's own when one is reachable, else SQLite.

    The matrix writes SQL beside the persister on every cell; on a loaded machine SQLite's one
    writer lock timed out (a 500 that says nothing about who may do what).
    """
    if _pg_reachable() is None:
        return str(request.getfixturevalue("empty_pg_database"))
    return f"sqlite+aiosqlite:///{tmp_path / 'livesell.db'}"


CALLERS = ("anon", "alice", "bob", "mo", "hank", "hana", "admin")
TOKENS = {
    "alice": ("alice", Role.VIEWER),
    "bob": ("bob", Role.VIEWER),
    "mo": ("mo", Role.VIEWER),
    "hank": ("hank", Role.HOST),
    "hana": ("hana", Role.HOST),
    "admin": ("ops", Role.ADMIN),
}
_keys = itertools.count(1)


def key() -> str:
    return f"k{next(_keys)}"


@dataclass
class World:
    """The objects every row's path is filled from, and how to make fresh ones."""

    client: TestClient
    signer: TokenSigner
    ids: dict[str, Any] = field(default_factory=dict)

    def auth(self, caller: str) -> dict[str, str]:
        if caller == "anon":
            return {}
        user, role = TOKENS[caller] if caller in TOKENS else (caller, Role.VIEWER)
        return {"Authorization": f"Bearer {self.signer.mint(user, role)}"}

    async def call(
        self, caller: str, method: str, path: str, body: Any = None, **headers: str
    ) -> dict[str, Any]:
        r = await self.client.request(
            method, path, json=body, headers={**self.auth(caller), **headers}
        )
        assert r.status < 300, (method, path, r.status, await r.text())
        return dict(await r.json())

    async def sale(self, open_: bool = True, **extra: Any) -> int:
        body = {"product_id": self.ids["product_id"], "quantity": 10_000, "per_user_limit": 1000}
        sale = await self.call("hana", "POST", "/api/sales", {**body, "stream_id": "show", **extra})
        if open_:
            await self.call("hana", "POST", f"/api/sales/{sale['id']}/open")
        return int(sale["id"])

    async def order(self, paid: bool = False) -> str:
        sale = self.ids["sale_id"]
        bought = await self.call("alice", "POST", f"/api/sales/{sale}/buy", {}, **idem())
        order_id = str(bought["order"]["id"])
        if paid:
            await self.call("alice", "POST", f"/api/orders/{order_id}/pay")
        return order_id

    async def lot(self, open_: bool = False) -> int:
        body = {"product_id": self.ids["product_id"], "start_cents": 100}
        lot = await self.call("hana", "POST", "/api/lots", {**body, "increment_cents": 10,
                                                            "stream_id": "show"})  # fmt: skip
        if open_:
            await self.call("hana", "POST", f"/api/lots/{lot['id']}/open")
        return int(lot["id"])


def idem() -> dict[str, str]:
    return {"Idempotency-Key": key()}


Fill = Callable[[World], Awaitable[dict[str, Any]]]


@dataclass
class Row:
    method: str
    route: str
    expect: str  # seven statuses, in CALLERS order
    fill: Fill | None = None  # fresh path parameters for every cell
    body: Any = None
    headers: Callable[[], dict[str, str]] = dict
    query: dict[str, str] = field(default_factory=dict)  # filled from the ids like the path


async def fresh_sale(w: World) -> dict[str, Any]:
    return {"sale_id": await w.sale(open_=False)}


async def fresh_open_sale(w: World) -> dict[str, Any]:
    return {"sale_id": await w.sale()}


async def fresh_offer(w: World) -> dict[str, Any]:
    sale = await w.sale()
    await w.call("hana", "POST", f"/api/sales/{sale}/group-offer", {"price_cents": 50, "size": 3})
    return {"sale_id": sale}


async def fresh_group(w: World) -> dict[str, Any]:
    sale = w.ids["sale_id"]
    opened = await w.call("zed", "POST", f"/api/sales/{sale}/groups", {}, **idem())
    return {"group_id": opened["group"]["id"]}


async def fresh_order(w: World) -> dict[str, Any]:
    return {"order_id": await w.order()}


async def fresh_paid_order(w: World) -> dict[str, Any]:
    return {"order_id": await w.order(paid=True)}


async def fresh_lot(w: World) -> dict[str, Any]:
    return {"sale_id": await w.lot()}


async def fresh_open_lot(w: World) -> dict[str, Any]:
    return {"sale_id": await w.lot(open_=True)}


async def fresh_draw(w: World) -> dict[str, Any]:
    sale = await w.sale(open_=False)
    await w.call("hana", "POST", f"/api/sales/{sale}/draw", {"window_s": 60})
    return {"sale_id": sale}


async def fresh_closed_draw(w: World) -> dict[str, Any]:
    ids = await fresh_draw(w)
    await w.call("hana", "POST", f"/api/sales/{ids['sale_id']}/draw/close", {"now": True})
    return ids


async def fresh_review(w: World) -> dict[str, Any]:
    order = await w.order(paid=True)
    review = await w.call("alice", "POST", f"/api/orders/{order}/review", {"rating": 5})
    return {"review_id": review["id"]}


async def fresh_rehearsal(w: World) -> dict[str, Any]:
    sid = f"r{next(_keys)}"
    await w.call(
        "hana", "POST", "/api/streams", {"id": sid, "title": "Practice", "rehearsal": True}
    )
    return {"stream_id": sid}


async def fresh_stream(w: World) -> dict[str, Any]:
    return {}


PUBLIC = "200 200 200 200 200 200 200"
SIGNED_IN = "401 200 200 200 200 200 200"
CREATED = "401 201 201 201 201 201 201"
HOST_OR_ADMIN = "401 403 403 403 403 200 200"
HOST_CREATES = "401 403 403 403 403 201 201"
ANY_HOST = "401 403 403 403 201 201 201"
ADMIN = "401 403 403 403 403 403 200"
OWNER = "401 200 404 404 404 404 200"

# fmt: off
ROWS = [
    Row("GET", "/healthz", PUBLIC),
    Row("GET", "/readyz", PUBLIC),
    Row("GET", "/ws/rooms/{stream_id}", "socket"),  # the socket matrix below
    Row("POST", "/api/streams/{stream_id}/room/{action}", "401 403 403 200 403 200 200",
        body={"product_id": "$product_id"}),
    Row("GET", "/api/rooms/stats", ADMIN),
    Row("POST", "/api/sales/{sale_id}/group-offer", "401 403 403 403 403 201 201",
        fresh_open_sale, {"price_cents": 50, "size": 3}),
    Row("POST", "/api/sales/{sale_id}/group-offer/close", HOST_OR_ADMIN, fresh_offer),
    Row("GET", "/api/sales/{sale_id}/groups", PUBLIC),
    Row("POST", "/api/sales/{sale_id}/groups", CREATED, body={}, headers=idem),
    Row("GET", "/api/groups/{group_id}", PUBLIC),
    Row("POST", "/api/groups/{group_id}/join", CREATED, fresh_group, {}),
    Row("POST", "/api/sales/{sale_id}/coupons", HOST_CREATES, body={"kind": "amount",
        "value": 10, "count": 100}),
    Row("GET", "/api/coupons/{coupon_id}", PUBLIC),
    Row("POST", "/api/coupons/{coupon_id}/claim", CREATED),
    # alice claimed the coupon in the row above; an admin does not pay for a buyer.
    Row("POST", "/api/orders/{order_id}/pay-with-coupon", "401 200 404 404 404 404 404",
        fresh_order, {"coupon_id": "$coupon_id"}),
    Row("POST", "/api/stores/{host_id}/join", CREATED),
    Row("GET", "/api/stores/{host_id}/me", SIGNED_IN),
    Row("GET", "/api/stores/{host_id}/members", HOST_OR_ADMIN),
    # Past the owner check, alice has no points to spend (400): others never learn that much.
    Row("POST", "/api/orders/{order_id}/pay-with-points", "401 400 404 404 404 404 404",
        fresh_order, {"points": 0}),
    Row("GET", "/api/streams/{stream_id}/share-link", SIGNED_IN),
    Row("POST", "/api/streams/{stream_id}/touch", SIGNED_IN, body={"ref": "zed"}),
    Row("PUT", "/api/products/{product_id}/commission", "401 403 403 403 403 200 200",
        body={"rate_bp": 500}),
    Row("GET", "/api/streams/{stream_id}/promoters", HOST_OR_ADMIN),
    Row("GET", "/api/promoters/me", SIGNED_IN),
    Row("POST", "/api/lots", HOST_CREATES, body={"product_id": "$product_id",
        "start_cents": 100, "increment_cents": 10, "stream_id": "show"}),
    Row("POST", "/api/lots/{sale_id}/open", HOST_OR_ADMIN, fresh_lot),
    Row("GET", "/api/lots/{sale_id}", PUBLIC, fresh_lot),
    Row("GET", "/api/streams/{stream_id}/lots", PUBLIC),
    # hana made the lot: its seller may not bid its price up (own_lot).
    Row("POST", "/api/lots/{sale_id}/bids", "401 201 201 201 201 409 201", fresh_open_lot,
        {"amount_cents": 100}, headers=idem),
    Row("GET", "/api/lots/{sale_id}/bids", HOST_OR_ADMIN, fresh_open_lot),
    Row("POST", "/api/lots/{sale_id}/runner-up", "401 403 403 403 403 409 409", fresh_open_lot),
    Row("POST", "/api/sales/{sale_id}/draw", HOST_CREATES, fresh_sale, {"window_s": 60}),
    Row("GET", "/api/sales/{sale_id}/draw", PUBLIC, fresh_draw),
    Row("GET", "/api/streams/{stream_id}/draws", PUBLIC),
    Row("POST", "/api/sales/{sale_id}/draw/close", HOST_OR_ADMIN, fresh_draw, {"now": True}),
    Row("GET", "/api/sales/{sale_id}/draw/entries", PUBLIC, fresh_closed_draw),
    Row("POST", "/whip/{stream_id}", "401 403 403 403 403 415 415"),
    Row("OPTIONS", "/whip/{stream_id}", "204 204 204 204 204 204 204"),
    Row("DELETE", "/whip/{stream_id}/{session_id}", "404 404 404 404 404 404 404"),
    Row("PATCH", "/whip/{stream_id}/{session_id}", "415 415 415 415 415 415 415"),
    Row("OPTIONS", "/whip/{stream_id}/{session_id}", "204 204 204 204 204 204 204"),
    Row("POST", "/whep/{stream_id}", "415 415 415 415 415 415 415"),
    Row("OPTIONS", "/whep/{stream_id}", "204 204 204 204 204 204 204"),
    Row("DELETE", "/whep/{stream_id}/{session_id}", "404 404 404 404 404 404 404"),
    Row("PATCH", "/whep/{stream_id}/{session_id}", "415 415 415 415 415 415 415"),
    Row("OPTIONS", "/whep/{stream_id}/{session_id}", "204 204 204 204 204 204 204"),
    Row("GET", "/api/streams/{stream_id}/metrics", HOST_OR_ADMIN),
    Row("POST", "/api/products", ANY_HOST, body={"name": "Cap", "price_cents": 100}),
    Row("GET", "/api/products", PUBLIC),
    Row("GET", "/api/products", SIGNED_IN, query={"mine": "1"}),
    # hana owns the product; hank, another host, may not touch it.
    Row("PATCH", "/api/products/{product_id}", HOST_OR_ADMIN, body={"name": "Hat"}),
    Row("POST", "/api/streams", ANY_HOST, body={"id": "$new_stream"}),
    Row("GET", "/api/streams", PUBLIC),
    Row("GET", "/api/streams/{stream_id}", PUBLIC),
    Row("POST", "/api/sales", HOST_CREATES, body={"product_id": "$product_id", "quantity": 5,
        "stream_id": "show"}),
    Row("GET", "/api/sales/{sale_id}", PUBLIC),
    Row("POST", "/api/sales/{sale_id}/open", HOST_OR_ADMIN, fresh_sale),
    Row("POST", "/api/sales/{sale_id}/close", HOST_OR_ADMIN, fresh_open_sale),
    Row("POST", "/api/sales/{sale_id}/buy", CREATED, body={}, headers=idem),
    Row("GET", "/api/orders/{order_id}", OWNER),
    Row("POST", "/api/orders/{order_id}/pay", OWNER, fresh_order),
    Row("GET", "/api/payments/config", PUBLIC),
    # Only the provider's signature counts, never a token; without its secret: off for all.
    Row("POST", "/api/payments/webhook", "404 404 404 404 404 404 404", body={}),
    Row("POST", "/api/orders/{order_id}/cancel", OWNER, fresh_order),
    Row("GET", "/api/sales/{sale_id}/audit", ADMIN),
    Row("GET", "/hls/{stream_id}/{name}", PUBLIC),
    Row("GET", "/api/streams/{stream_id}/recordings", PUBLIC),
    Row("GET", "/api/streams/{stream_id}/recordings/{name}", "404 404 404 404 404 404 404"),
    Row("GET", "/api/streams/{stream_id}/timeline", PUBLIC),
    Row("GET", "/api/replays", PUBLIC),
    Row("GET", "/api/streams/{stream_id}/sales/open", PUBLIC),
    Row("POST", "/api/orders/{order_id}/review", "401 201 404 404 404 404 404",
        fresh_paid_order, {"rating": 4}),
    Row("GET", "/api/products/{product_id}/reviews", PUBLIC),
    Row("GET", "/api/streams/{stream_id}/reviews", HOST_OR_ADMIN),
    Row("POST", "/api/reviews/{review_id}/hide", HOST_OR_ADMIN, fresh_review, {}),
    Row("DELETE", "/api/reviews/{review_id}", HOST_OR_ADMIN, fresh_review),
    Row("GET", "/api/me/data", SIGNED_IN),
    Row("GET", "/api/me/orders", SIGNED_IN, query={"stream_id": "{stream_id}"}),
    Row("PATCH", "/api/streams/{stream_id}", HOST_OR_ADMIN, fresh_rehearsal, {"rehearsal": True}),
    Row("POST", "/api/streams/{stream_id}/rehearsal-report", HOST_CREATES, fresh_rehearsal,
        {"report": {}, "html": "<!doctype html><p>practice</p>"}),
    Row("GET", "/api/streams/{stream_id}/rehearsal-reports", HOST_OR_ADMIN, fresh_rehearsal),
    Row("GET", "/api/streams/{stream_id}/rehearsal-reports/{name}", "404 404 404 404 404 404 404"),
    Row("GET", "/metrics", PUBLIC),
    Row("GET", "/openapi.json", PUBLIC),
    Row("GET", "/api/streams/{stream_id}/stats", HOST_OR_ADMIN),
    Row("GET", "/api/ops/overview", ADMIN),
    Row("GET", "/api/streams/{stream_id}/analytics", HOST_OR_ADMIN),
    Row("POST", "/api/streams/{stream_id}/beacon", "202 202 202 202 202 202 202", body={}),
    Row("GET", "/", PUBLIC),
    Row("GET", "/live/{stream_id}", PUBLIC),
    Row("GET", "/studio", PUBLIC),
    Row("GET", "/studio/{stream_id}", PUBLIC),
    Row("GET", "/ops", PUBLIC),
    Row("GET", "/replay/{stream_id}", PUBLIC),
    Row("GET", "/static/{path}", PUBLIC),
    Row("POST", "/api/login", "401 401 401 401 401 401 401", body={"code": "not-a-code-123"}),
    Row("POST", "/api/guest", "201 201 201 201 201 201 201", body={"name": "Guest"}),
    Row("POST", "/api/admin/revocations", "401 403 403 403 403 403 201", body={"user_id": "zed"}),
    Row("DELETE", "/api/me/data", SIGNED_IN),  # last: it erases each caller's data
]
# fmt: on


def route_keys(client: TestClient) -> set[tuple[str, str]]:
    """Every (method, pattern) the app serves; HEAD is GET's twin."""
    keys = set()
    for route in client.app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        pattern = info.get("path") or info.get("formatter")
        if route.method != "HEAD":
            keys.add((route.method, str(pattern)))
    return keys


async def build_world(client: TestClient, signer: TokenSigner) -> World:
    w = World(client, signer)
    catalog = client.app[CATALOG]
    await catalog.create_stream("show", "hana", "Hana's show")
    await catalog.create_stream("hanks", "hank", "Hank's show")
    product = await w.call("hana", "POST", "/api/products", {"name": "Hat", "price_cents": 1000})
    w.ids["product_id"] = product["id"]
    w.ids["sale_id"] = await w.sale()
    sale = w.ids["sale_id"]
    await w.call("hana", "POST", f"/api/sales/{sale}/group-offer", {"price_cents": 500, "size": 20})
    opened = await w.call("zed", "POST", f"/api/sales/{sale}/groups", {}, **idem())
    w.ids["group_id"] = opened["group"]["id"]
    drop = await w.call("hana", "POST", f"/api/sales/{sale}/coupons",
                        {"kind": "amount", "value": 10, "count": 100})  # fmt: skip
    w.ids["coupon_id"] = drop["id"]
    w.ids["order_id"] = await w.order()
    review = await fresh_review(w)
    w.ids["review_id"] = review["review_id"]
    await w.call("hana", "POST", "/api/streams/show/room/promote", {"user_id": "mo"})
    hls = client.app[RECORDINGS].hls_dir("show")
    hls.mkdir(parents=True)
    (hls / "index.m3u8").write_text("#EXTM3U\n")
    w.ids.update(stream_id="show", host_id="hana", session_id="nope", action="pin",
                 name="index.m3u8", path="js/api.js")  # fmt: skip
    return w


def _resolve(value: Any, ids: dict[str, Any]) -> Any:
    if isinstance(value, str) and value.startswith("$"):
        return ids[value[1:]]
    if isinstance(value, dict):
        return {k: _resolve(v, ids) for k, v in value.items()}
    return value


async def test_every_route_against_every_caller(client: TestClient, signer: TokenSigner) -> None:
    rows = {(r.method, r.route, *sorted(r.query.items())): r for r in ROWS}
    assert len(rows) == len(ROWS), "a route has two rows"
    served, matrix = route_keys(client), {(r.method, r.route) for r in ROWS}
    assert served - matrix == set(), "routes without a row in the matrix"
    assert matrix - served == set(), "rows for routes the app does not serve"
    w = await build_world(client, signer)
    wrong = []
    for row in ROWS:  # in order: a row may rely on the one before (claim, then pay with it)
        if row.expect != "socket":
            # The seven cells of a row are independent (each has its own fresh objects): at once.
            got = await asyncio.gather(*(cell(w, row, caller) for caller in CALLERS))
            wrong += [
                f"{row.method} {row.route} as {caller}: {status}, want {want}"
                for caller, status, want in zip(CALLERS, got, row.expect.split(), strict=True)
                if str(status) != want
            ]
    assert wrong == [], "\n".join(wrong)


async def cell(w: World, row: Row, caller: str) -> int:
    """The status ``caller`` gets for ``row``'s request, on fresh objects where it needs them."""
    ids = {**w.ids, "new_stream": f"s{next(_keys)}"}
    if row.fill is not None:
        ids.update(await row.fill(w))
    r = await w.client.request(
        row.method, row.route.format(**ids), json=_resolve(row.body, ids),
        headers={**w.auth(caller), **row.headers()},
        params={k: v.format(**ids) for k, v in row.query.items()},
    )  # fmt: skip
    return r.status


# -- the room's actions ----------------------------------------------------------------------

OK, UNAUTH, FORBID = "ok", "unauthorized", "forbidden"
ANYONE = (OK,) * 7
A_USER = (UNAUTH, OK, OK, OK, OK, OK, OK)
A_MODERATOR = (UNAUTH, FORBID, FORBID, OK, FORBID, OK, OK)
THE_HOST = (UNAUTH, FORBID, FORBID, FORBID, FORBID, OK, OK)

#: Each action, its fields ("$x": from the world) and the outcome per caller; in this order,
#: so that what one row does (ban, promote) is undone before a row that depends on it.
ACTIONS: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("chat", {"text": "hello"}, A_USER),
    ("react", {"kind": "like"}, ANYONE),
    ("ping", {"t": 1}, ANYONE),
    ("buy", {"sale_id": "$sale_id", "key": "$key"}, A_USER),
    ("group_open", {"sale_id": "$sale_id", "key": "$key"}, A_USER),
    ("group_join", {"group_id": "$group_id"}, A_USER),
    ("coupon_claim", {"coupon_id": "$coupon_id"}, A_USER),
    ("bid", {"lot_id": "$lot_id", "key": "$key", "amount_cents": 100}, A_USER),
    ("enter_draw", {"sale_id": "$draw_id"}, A_USER),
    ("pin", {"product_id": "$product_id"}, A_MODERATOR),
    ("unpin", {}, A_MODERATOR),
    ("announce", {"text": "welcome"}, A_MODERATOR),
    ("slow_mode", {"seconds": 0}, A_MODERATOR),
    ("banned_words", {"words": ["scam"]}, THE_HOST),
    ("delete", {"seq": "$zed_chat"}, A_MODERATOR),
    ("mute", {"user_id": "zed", "seconds": 60}, A_MODERATOR),
    ("unmute", {"user_id": "zed"}, A_MODERATOR),
    ("ban", {"user_id": "zed"}, A_MODERATOR),
    ("unban", {"user_id": "zed"}, A_MODERATOR),
    ("promote", {"user_id": "zed"}, THE_HOST),
    ("demote", {"user_id": "zed"}, THE_HOST),
]


async def _reply(ws: Any, ref: str, also: str | None = None) -> list[dict[str, Any]]:
    """Every event up to the pong for ``ref`` (a ping sent right after the action), and up to
    the reply for ``also`` too (a sale command runs beside the ping: its reply may come later).
    """
    seen: list[dict[str, Any]] = []
    while True:
        msg = decode((await ws.receive(timeout=5)).data)
        seen += msg["events"] if msg["type"] == "batch" else [msg]
        ponged = any(e["type"] == "pong" and e.get("ref") == ref for e in seen)
        if ponged and (also is None or any(e.get("ref") == also for e in seen)):
            return seen


async def outcome(w: World, caller: str, action: str, fields: dict[str, Any]) -> str:
    """What ``caller`` gets for ``action`` on a fresh socket: ok, or the error's code."""
    ws = await w.client.ws_connect("/ws/rooms/show", headers=w.auth(caller))
    try:
        await ws.receive(timeout=5)  # the snapshot
        await ws.send_bytes(encode({"type": action, **fields, "ref": "a"}))
        await ws.send_bytes(encode({"type": "ping", "ref": "p"}))
        also = "a" if action in SALE_COMMANDS else None
        replies = [e for e in await _reply(ws, "p", also) if e.get("ref") == "a"]
    finally:
        await ws.close()
    errors = [e["code"] for e in replies if e["type"] == "error"]
    # A state error (no group offer, lot not open...) is past the role check: allowed.
    return errors[0] if errors and errors[0] in (UNAUTH, FORBID) else OK


async def zed_says(w: World) -> int:
    """A fresh chat message by zed, a plain viewer: its seq (what ``delete`` targets)."""
    ws = await w.client.ws_connect("/ws/rooms/show", headers=w.auth("zed"))
    try:
        await ws.receive(timeout=5)
        await ws.send_bytes(encode({"type": "chat", "text": f"hi {key()}", "ref": "c"}))
        await ws.send_bytes(encode({"type": "ping", "ref": "p"}))
        acks = [e for e in await _reply(ws, "p") if e["type"] == "ack" and e.get("ref") == "c"]
    finally:
        await ws.close()
    return int(acks[0]["seq"])


async def test_every_room_action_against_every_caller(
    client: TestClient, signer: TokenSigner
) -> None:
    assert {a for a, _, _ in ACTIONS} | {"auth"} == set(CLIENT_EVENTS), "an action without a row"
    w = await build_world(client, signer)
    w.ids["lot_id"] = await w.lot(open_=True)
    w.ids["draw_id"] = (await fresh_draw(w))["sale_id"]
    wrong = []
    for action, fields, expect in ACTIONS:
        for caller, want in zip(CALLERS, expect, strict=True):
            ids = {**w.ids, "key": key()}
            if action == "delete":
                ids["zed_chat"] = await zed_says(w)
            got = await outcome(w, caller, action, _resolve(fields, ids))
            if got != want:
                wrong.append(f"{action} as {caller}: {got}, want {want}")
    assert wrong == [], "\n".join(wrong)
