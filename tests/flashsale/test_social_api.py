"""The group-buy and coupon HTTP API over the full app: shapes, permissions, JSON errors."""

from __future__ import annotations

import asyncio

from aiohttp.test_utils import TestClient

from tests.flashsale.helpers import Auth, make_sale


async def test_a_group_opens_fills_and_expires_over_http(client: TestClient, auth: Auth) -> None:
    admin = auth("admin", "ops")
    r = await client.post("/api/streams", json={"id": "show1"}, headers=auth("host", "hana"))
    assert r.status == 201
    sale = await make_sale(client, auth, quantity=6, stream_id="show1", host="hana")
    sid = sale["id"]
    r = await client.post(f"/api/sales/{sid}/group-offer", json={"price_cents": 1500, "size": 2},
                          headers=auth("viewer", "amy"))  # fmt: skip
    assert r.status == 403 and (await r.json())["error"] == "forbidden"
    r = await client.post(f"/api/sales/{sid}/group-offer", json={"price_cents": 1500, "size": 1},
                          headers=admin)  # fmt: skip
    assert r.status == 400 and (await r.json())["error"] == "bad_request"
    body = {"price_cents": 1500, "size": 2, "ttl_s": 1}
    r = await client.post(f"/api/sales/{sid}/group-offer", json=body, headers=auth("host", "hana"))
    assert r.status == 201, await r.text()

    r = await client.post(f"/api/sales/{sid}/groups", headers=auth("viewer", "amy"))
    assert r.status == 400  # no Idempotency-Key
    amy = {**auth("viewer", "amy"), "Idempotency-Key": "g1"}
    r = await client.post(f"/api/sales/{sid}/groups", headers=amy)
    opened = await r.json()
    assert r.status == 201, opened
    gid = opened["group"]["id"]
    assert opened["group"]["share_path"] == f"/live/show1?group={gid}"
    assert opened["order"]["unit_price_cents"] == 1500 and opened["remaining"] == 5
    r = await client.post(f"/api/sales/{sid}/groups", headers=amy)
    assert r.status == 200 and (await r.json())["group"]["id"] == gid
    listed = await (await client.get(f"/api/sales/{sid}/groups")).json()
    assert listed["offer"]["size"] == 2 and [g["id"] for g in listed["groups"]] == [gid]
    assert listed["groups"][0]["members"] == 1 and "amy" not in str(listed)

    r = await client.post(f"/api/groups/{gid}/join", headers=auth("viewer", "bob"))
    joined = await r.json()
    assert r.status == 201 and joined["group"]["state"] == "filled", joined
    r = await client.post(f"/api/groups/{gid}/join", headers=auth("viewer", "cy"))
    assert r.status == 409 and (await r.json())["error"] == "group_full"
    for bad in ("nope", "1-g", "9-g9"):
        r = await client.get(f"/api/groups/{bad}")
        assert r.status == 404 and (await r.json())["error"] == "group_not_found"

    r = await client.post(f"/api/sales/{sid}/groups",
                          headers={**auth("viewer", "dan"), "Idempotency-Key": "g"})  # fmt: skip
    lonely = (await r.json())["group"]["id"]
    await asyncio.sleep(1.6)  # the app's group reaper releases the unfilled group
    r = await client.get(f"/api/groups/{lonely}")
    assert (await r.json())["state"] == "expired"
    r = await client.get(f"/api/sales/{sid}/audit", headers=admin)
    report = await r.json()
    assert r.status == 200, report
    assert report["figures"]["groups_filled"] == 1 and report["figures"]["remaining"] == 4


async def test_a_coupon_is_dropped_claimed_and_paid_with_over_http(
    client: TestClient, auth: Auth
) -> None:
    sale = await make_sale(client, auth, quantity=5, limit=2)  # 19.99 each
    sid = sale["id"]
    body = {"kind": "percent", "value": 10, "count": 1, "expires_s": 60}
    r = await client.post(f"/api/sales/{sid}/coupons", json=body, headers=auth("viewer", "amy"))
    assert r.status == 403
    r = await client.post(f"/api/sales/{sid}/coupons", json={**body, "kind": "free"},
                          headers=auth("admin", "ops"))  # fmt: skip
    assert r.status == 400 and (await r.json())["error"] == "bad_request"
    r = await client.post(f"/api/sales/{sid}/coupons", json=body, headers=auth("admin", "ops"))
    drop = await r.json()
    assert r.status == 201 and drop["left"] == 1, drop
    r = await client.post(f"/api/coupons/{drop['id']}/claim", headers=auth("viewer", "amy"))
    assert r.status == 201 and (await r.json())["state"] == "claimed"
    r = await client.post(f"/api/coupons/{drop['id']}/claim", headers=auth("viewer", "amy"))
    assert r.status == 200
    r = await client.post(f"/api/coupons/{drop['id']}/claim", headers=auth("viewer", "bob"))
    assert r.status == 409 and (await r.json())["error"] == "coupons_gone"
    r = await client.post(f"/api/sales/{sid}/buy", json={"qty": 2},
                          headers={**auth("viewer", "amy"), "Idempotency-Key": "b"})  # fmt: skip
    order = (await r.json())["order"]
    pay = f"/api/orders/{order['id']}/pay-with-coupon"
    r = await client.post(pay, json={"coupon_id": drop["id"]}, headers=auth("viewer", "bob"))
    assert r.status == 404
    r = await client.post(pay, json={}, headers=auth("viewer", "amy"))
    assert r.status == 400
    r = await client.post(pay, json={"coupon_id": drop["id"]}, headers=auth("viewer", "amy"))
    paid = await r.json()
    assert r.status == 200, paid
    assert paid["state"] == "paid" and paid["discount_cents"] == 399
    assert paid["charged_cents"] == 3998 - 399
    r = await client.post(pay, json={"coupon_id": drop["id"]}, headers=auth("viewer", "amy"))
    assert r.status == 200 and await r.json() == paid  # a retry gets the first answer
    r = await client.post(f"/api/orders/{order['id']}/pay", headers=auth("viewer", "amy"))
    assert r.status == 200 and (await r.json())["state"] == "paid"


async def test_members_join_a_store_and_points_are_checked_over_http(
    client: TestClient, auth: Auth
) -> None:
    r = await client.post("/api/streams", json={"id": "show2"}, headers=auth("host", "hana"))
    assert r.status == 201
    sale = await make_sale(client, auth, quantity=5, stream_id="show2")
    amy = auth("viewer", "amy")
    # Not being a member is an answer (200), not an error the room's console would show.
    r = await client.get("/api/stores/hana/me", headers=amy)
    assert r.status == 200 and await r.json() == {
        "host_id": "hana", "user_id": "amy", "member": False, "points": 0,
    }  # fmt: skip
    r = await client.post("/api/stores/hana/join", headers=amy)
    assert r.status == 201 and (await r.json())["points"] == 0
    r = await client.get("/api/stores/hana/me", headers=amy)
    assert r.status == 200 and (await r.json())["member"] is True
    assert (await client.post("/api/stores/hana/join", headers=amy)).status == 201
    r = await client.get("/api/stores/hana/members", headers=auth("host", "hana"))
    assert r.status == 200 and await r.json() == {"host_id": "hana", "members": 1}
    r = await client.get("/api/stores/hana/members", headers=auth("host", "other"))
    assert r.status == 403 and (await r.json())["error"] == "forbidden"
    r = await client.get("/api/stores/hana/members", headers=amy)
    assert r.status == 403
    r = await client.post("/api/stores/bad%20host/join", headers=amy)
    assert r.status == 400
    r = await client.post(f"/api/sales/{sale['id']}/buy", headers={**amy, "Idempotency-Key": "k"})
    order = (await r.json())["order"]
    pay = f"/api/orders/{order['id']}/pay-with-points"
    r = await client.post(pay, json={"points": 10}, headers=amy)
    assert r.status == 409 and (await r.json())["error"] == "insufficient_points"
    r = await client.post(pay, json={"points": 10}, headers=auth("viewer", "bob"))
    assert r.status == 404
    r = await client.get(f"/api/orders/{order['id']}", headers=amy)
    assert (await r.json())["state"] == "reserved"  # a refused spend leaves the order alone
