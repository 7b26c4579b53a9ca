"""Verified reviews: only the buyer of a paid order reviews, once; the host moderates."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.chat.test_room_ws import Auth, make_stream
from tests.flashsale.helpers import buy, make_sale


async def test_only_buyers_with_a_paid_order_review_once(client: TestClient, auth: Auth) -> None:
    sid = await make_stream(client, auth)
    sale = await make_sale(client, auth, quantity=5, limit=1, stream_id=sid)
    _, paid = await buy(client, auth, sale["id"], "alice", "a1")
    _, unpaid = await buy(client, auth, sale["id"], "bob", "b1")
    paid_id, unpaid_id = paid["order"]["id"], unpaid["order"]["id"]
    r = await client.post(f"/api/orders/{paid_id}/pay", headers=auth("viewer", "alice"))
    assert r.status == 200
    review = {"rating": 5, "text": "<b>Warm</b> and soft", "show_name": True}

    async def post(order_id: str, user: str, body: dict[str, object]) -> tuple[int, Any]:
        r = await client.post(
            f"/api/orders/{order_id}/review", json=body, headers=auth("viewer", user, user.title())
        )
        return r.status, await r.json()

    # Not paid, someone else's order, no order, no token: refused.
    assert (await post(unpaid_id, "bob", review))[1]["error"] == "not_a_buyer"
    # Another's order reads as absent, as GET /api/orders/{id} has it.
    assert await post(paid_id, "mallory", review) == (404, {"error": "not_found",
        "message": f"order {paid_id} not found"})  # fmt: skip
    assert (await post("nope", "alice", review))[0] == 404
    r = await client.post(f"/api/orders/{paid_id}/review", json=review)
    assert r.status == 401
    # Bad input: a rating out of range, a text too long.
    assert (await post(paid_id, "alice", {"rating": 6}))[0] == 400
    assert (await post(paid_id, "alice", {"rating": 4, "text": "x" * 1001}))[0] == 400
    status, body = await post(paid_id, "alice", review)
    assert status == 201 and body["verified"] is True and body["name"] == "Alice"
    assert body["text"] == "<b>Warm</b> and soft"  # stored as text; pages render textContent
    assert (await post(paid_id, "alice", review))[1]["error"] == "already_reviewed"
    r = await client.get(f"/api/products/{sale['product_id']}/reviews")
    card = await r.json()
    assert card["count"] == 1 and card["average"] == 5 and card["latest"][0]["id"] == body["id"]
    assert "user_id" not in card["latest"][0]
    # Moderation: another host may not; the show's host hides, then deletes.
    r = await client.post(f"/api/reviews/{body['id']}/hide", headers=auth("host", "other"))
    assert r.status == 403
    r = await client.post(f"/api/reviews/{body['id']}/hide", headers=auth("host", "hostess"))
    assert r.status == 200 and (await r.json())["hidden"] is True
    r = await client.get(f"/api/products/{sale['product_id']}/reviews")
    assert (await r.json())["count"] == 0
    r = await client.get(f"/api/streams/{sid}/reviews", headers=auth("host", "hostess"))
    assert [x["id"] for x in (await r.json())["reviews"]] == [body["id"]]
    r = await client.delete(f"/api/reviews/{body['id']}", headers=auth("host", "hostess"))
    assert r.status == 200
    r = await client.get(f"/api/streams/{sid}/reviews", headers=auth("host", "hostess"))
    assert (await r.json())["reviews"] == []
