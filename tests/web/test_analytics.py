"""Show analytics end to end: a scripted show gives exactly the expected figures."""

from __future__ import annotations

import asyncio
import csv
import io
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from inventory.rehearsal import is_rehearsal_sale
from tests.chat.test_room_ws import Auth, connect, make_stream, token
from tests.flashsale.helpers import make_sale
from web.auth import TokenSigner
from web.keys import ATTRIBUTION, DATABASE, MEMBERS, SHOW_TALLY


async def _report(client: TestClient, sid: str, auth: Auth, until: Any) -> dict[str, Any]:
    """The host's report, polled until the persister has written what ``until`` expects."""
    for _ in range(100):
        r = await client.get(f"/api/streams/{sid}/analytics", headers=auth("host", "hostess"))
        assert r.status == 200, await r.text()
        report = await r.json()
        if until(report):
            return report
        await asyncio.sleep(0.05)
    raise AssertionError(f"report never matched: {report['totals']}")


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_a_scripted_show_gives_exact_figures(
    client: TestClient, auth: Auth, signer: TokenSigner
) -> None:
    sid = await make_stream(client, auth)
    sale = await make_sale(client, auth, quantity=10, limit=1, stream_id=sid)
    sale_id, price = sale["id"], 1999
    # Four viewers join (three signed in, one anonymous).
    socks = {u: await connect(client, f"/ws/rooms/{sid}?token={token(signer, u)}")
             for u in ("alice", "bob", "cy")}  # fmt: skip
    socks["anon"] = await connect(client, f"/ws/rooms/{sid}")
    await socks["anon"].until(lambda e: e["type"] == "viewers" and e["count"] == 4, wait_s=10)
    # One viewer sample of a 5 s interval: peak 4, 4 on average, 20 s of watch time.
    assert await client.app[SHOW_TALLY].sample_viewers([sid], 5.0) == 1
    assert await client.app[SHOW_TALLY].sample_viewers([sid], 5.0) == 0  # one per interval
    # Chat (3 messages) and reactions (5 + 3 taps).
    for user, text in (("alice", "hi"), ("alice", "love it"), ("bob", "price?")):
        await socks[user].send("chat", text=text, ref=text)
        await socks[user].until(lambda e, t=text: e["type"] == "ack" and e["ref"] == t)
    await socks["alice"].send("react", kind="like", count=5)
    await socks["bob"].send("react", kind="heart", count=3)
    # Product card views (3) and clicks (2) from the page; another show's sale does not count.
    other = await make_sale(client, auth, quantity=1)
    for body in (
        {"card_view": [sale_id, other["id"]]},
        {"card_view": [sale_id]},
        {"card_view": [sale_id], "card_click": [sale_id]},
        {"card_click": [sale_id]},
    ):
        r = await client.post(f"/api/streams/{sid}/beacon", json=body)
        assert r.status == 202, await r.text()  # fmt: skip
    r = await client.post(f"/api/streams/{sid}/beacon", json={"card_view": [999_999]})
    assert r.status == 202  # an unknown sale counts nowhere
    r = await client.post("/api/sales/999999/buy", headers={**auth(), "Idempotency-Key": "x"})
    assert r.status == 404  # nor does a buy of one
    r = await client.post(f"/api/streams/{sid}/beacon", json={"card_view": ["x"]})
    assert r.status == 400 and (await r.json())["error"] == "bad_request"
    # bob came through pat's share link.
    r = await client.post(
        f"/api/streams/{sid}/touch", json={"ref": "pat"}, headers=auth("viewer", "bob")
    )
    assert r.status == 200  # fmt: skip
    # Buy attempts: alice over the socket, bob over HTTP, bob again over the limit (refused).
    await socks["alice"].send("buy", sale_id=sale_id, key="a1")
    alice_order = (await socks["alice"].until(lambda e: e["type"] == "buy_result"))["order"]
    for key, status in (("b1", 201), ("b2", 409)):
        bob = {**auth("viewer", "bob"), "Idempotency-Key": key}
        r = await client.post(f"/api/sales/{sale_id}/buy", headers=bob)
        assert r.status == status, await r.text()
    r = await client.post(f"/api/orders/{alice_order['id']}/pay", headers=auth("viewer", "alice"))
    assert r.status == 200, await r.text()

    def settled(report: dict[str, Any]) -> bool:
        t = report["totals"]
        return t["orders"] == 2 and t["paid_orders"] == 1 and t["reactions"] == 8

    await _report(client, sid, auth, settled)
    await client.app[ATTRIBUTION].attribute_orders()
    report = await _report(client, sid, auth, settled)
    t = report["totals"]
    assert {k: t[k] for k in ("viewers_peak", "viewers_avg", "watch_s", "chat_messages",
            "reactions", "card_views", "card_clicks", "buy_attempts", "orders", "paid_orders",
            "gmv_cents", "paid_cents", "buyers", "units", "conversion")} == {
        "viewers_peak": 4, "viewers_avg": 4, "watch_s": 20, "chat_messages": 3, "reactions": 8,
        "card_views": 3, "card_clicks": 2, "buy_attempts": 3, "orders": 2, "paid_orders": 1,
        "gmv_cents": 2 * price, "paid_cents": price, "buyers": 2, "units": 2, "conversion": 0.5,
    }  # fmt: skip
    minutes = report["by_minute"]
    for f in ("chat_messages", "reactions", "card_views", "buy_attempts", "orders", "gmv_cents"):
        assert sum(m[f] for m in minutes) == t[f], f
    [product] = report["products"]
    assert product["card_views"] == 3 and product["card_clicks"] == 2
    assert product["buy_attempts"] == 3 and product["orders"] == 2 and product["paid_orders"] == 1
    assert report["promoters"] == [
        {"promoter_id": "pat", "orders": 1, "paid_orders": 0, "gmv_cents": price}
    ]
    # No user id or name in the analytics: aggregates only.
    assert not {"alice", "bob", "cy"} & set(str(report).replace("'", " ").split())
    # CSV: the same minutes.
    r = await client.get(
        f"/api/streams/{sid}/analytics?format=csv", headers=auth("host", "hostess")
    )
    assert r.status == 200 and r.content_type == "text/csv"  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert sum(int(row["chat_messages"]) for row in rows) == 3
    assert sum(int(row["paid_orders"]) for row in rows) == 1


async def test_analytics_are_for_the_host_or_an_admin(client: TestClient, auth: Auth) -> None:
    sid = await make_stream(client, auth)
    r = await client.get(f"/api/streams/{sid}/analytics", headers=auth("host", "other"))
    assert r.status == 403
    r = await client.get(f"/api/streams/{sid}/analytics", headers=auth("viewer", "alice"))
    assert r.status == 403
    r = await client.get(f"/api/streams/{sid}/analytics", headers=auth("admin", "ops"))
    assert r.status == 200 and (await r.json())["totals"]["orders"] == 0
    r = await client.get("/api/streams/nope/analytics", headers=auth("admin", "ops"))
    assert r.status == 404


async def test_the_beacon_is_rate_limited(client: TestClient, auth: Auth) -> None:
    sid = await make_stream(client, auth)
    codes = [(await client.post(f"/api/streams/{sid}/beacon", json={})).status for _ in range(15)]
    assert codes[:10] == [202] * 10 and 429 in codes[10:]


async def _won_and_paid_lot(
    client: TestClient, auth: Auth, sid: str, buyer: str
) -> tuple[int, str]:
    """A lot of ``sid`` that ``buyer`` won at 1500 and paid; its id and its order's."""
    r = await client.post("/api/products", json={"name": "Vase", "price_cents": 900},
                          headers=auth("host", "hostess"))  # fmt: skip
    assert r.status == 201, await r.text()
    r = await client.post("/api/lots", headers=auth("host", "hostess"), json={
        "product_id": (await r.json())["id"], "start_cents": 1000, "increment_cents": 500,
        "duration_s": 1, "window_s": 0, "stream_id": sid,
    })  # fmt: skip
    assert r.status == 201, await r.text()
    lot_id = (await r.json())["id"]
    r = await client.post(f"/api/lots/{lot_id}/open", headers=auth("host", "hostess"))
    assert r.status == 200, await r.text()
    for key, cents in (("b1", 1000), ("b2", 1500)):
        headers = {**auth("viewer", buyer), "Idempotency-Key": key}
        r = await client.post(f"/api/lots/{lot_id}/bids", json={"amount_cents": cents},
                              headers=headers)  # fmt: skip
        assert r.status == 201, await r.text()
    for _ in range(150):  # the sweeper closes it by Redis's clock
        lot = await (await client.get(f"/api/lots/{lot_id}", headers=auth("viewer", buyer))).json()
        if lot["state"] == "won":
            break
        await asyncio.sleep(0.05)
    assert lot["state"] == "won" and lot["order_id"], lot
    r = await client.post(f"/api/orders/{lot['order_id']}/pay", headers=auth("viewer", buyer))
    assert r.status == 200, await r.text()
    return int(lot_id), lot["order_id"]


async def test_a_lot_won_and_paid_counts_in_its_streams_analytics(
    client: TestClient, auth: Auth
) -> None:
    """A lot's sale names no stream, yet its order is the show's sale; a rehearsal's is not.

    The winner finds it among their orders of the show too (the room's "Your orders").
    """
    sid = await make_stream(client, auth)
    # amy came through pat's share link and is a member of the host's store.
    r = await client.post(
        f"/api/streams/{sid}/touch", json={"ref": "pat"}, headers=auth("viewer", "amy")
    )
    assert r.status == 200, await r.text()
    r = await client.post("/api/stores/hostess/join", headers=auth("viewer", "amy"))
    assert r.status == 201, await r.text()
    _, order_id = await _won_and_paid_lot(client, auth, sid, "amy")
    await _report(client, sid, auth, lambda r: r["totals"]["paid_orders"] == 1)  # in SQL now
    await client.app[ATTRIBUTION].attribute_orders()
    report = await _report(client, sid, auth, lambda r: r["totals"]["paid_orders"] == 1)
    # The lot's order is the show's in SQL too: credited to its promoter, earning points.
    assert [(p["promoter_id"], p["paid_orders"], p["gmv_cents"]) for p in report["promoters"]] == [
        ("pat", 1, 1500)
    ]
    members = client.app[MEMBERS]
    await members.credit_paid_orders()  # (the app's own points pass may have run first)
    membership = await members.membership("hostess", "amy")
    assert membership is not None and membership.balance > 0
    t = report["totals"]
    assert (t["orders"], t["paid_orders"], t["gmv_cents"], t["paid_cents"], t["units"]) == (
        1, 1, 1500, 1500, 1
    )  # fmt: skip
    [product] = report["products"]
    assert (product["name"], product["orders"], product["gmv_cents"]) == ("Vase", 1, 1500)
    assert sum(m["gmv_cents"] for m in report["by_minute"]) == 1500
    host = auth("host", "hostess")
    r = await client.get(f"/api/streams/{sid}/analytics?format=csv", headers=host)
    rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert sum(int(row["paid_orders"]) for row in rows) == 1
    assert sum(int(row["gmv_cents"]) for row in rows) == 1500
    r = await client.get(f"/api/me/orders?stream_id={sid}", headers=auth("viewer", "amy"))
    assert [(o["id"], o["state"]) for o in (await r.json())["orders"]] == [(order_id, "paid")]
    # Another show's analytics do not count it; a rehearsal's lot counts nowhere.
    other = await make_stream(client, auth)
    r = await client.get(f"/api/streams/{other}/analytics", headers=auth("host", "hostess"))
    assert (await r.json())["totals"]["orders"] == 0
    practice = f"p{other}"
    body = {"id": practice, "title": "Practice", "rehearsal": True}
    r = await client.post("/api/streams", headers=host, json=body)
    assert r.status == 201, await r.text()
    practice_lot, _ = await _won_and_paid_lot(client, auth, practice, "bea")
    assert await is_rehearsal_sale(client.app[DATABASE], practice_lot)
    r = await client.get(f"/api/streams/{practice}/analytics", headers=auth("host", "hostess"))
    assert (await r.json())["totals"]["orders"] == 0
