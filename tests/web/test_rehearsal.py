"""Rehearsals: the flag, who sees the stream, switching it, and its orders out of real figures."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from inventory.ledger import Ledger
from inventory.rehearsal import is_rehearsal, is_rehearsal_sale
from inventory.reports import Reports
from tests.flashsale.helpers import Auth, buy, make_sale
from web.keys import ATTRIBUTION, CATALOG, DATABASE, MEMBERS, SHOW_TALLY
from web.rehearsal import MAX_REPORT_BYTES

HOST = ("host", "hana")


async def _stream(client: TestClient, auth: Auth, rehearsal: bool) -> str:
    sid = f"s{uuid.uuid4().hex[:8]}"
    body = {"id": sid, "title": "Practice" if rehearsal else "Show", "rehearsal": rehearsal}
    r = await client.post("/api/streams", json=body, headers=auth(*HOST))
    assert r.status == 201, await r.text()
    assert (await r.json())["rehearsal"] is rehearsal
    return sid


async def _sale(client: TestClient, auth: Auth, sid: str, open_now: bool = True) -> dict[str, Any]:
    return await make_sale(client, auth, quantity=10, open_now=open_now, stream_id=sid)


async def _listed(client: TestClient, headers: dict[str, str]) -> set[str]:
    r = await client.get("/api/streams", headers=headers)
    return {s["id"] for s in (await r.json())["streams"]}


async def test_a_rehearsal_is_unlisted_but_for_its_host_and_admins(
    client: TestClient, auth: Auth
) -> None:
    """The landing page's list hides a rehearsal; its host and admins still see it."""
    practice, real = await _stream(client, auth, True), await _stream(client, auth, False)
    r = await client.get(f"/api/streams/{practice}")
    assert (await r.json())["rehearsal"] is True  # the load tool reads this before a run
    for who, sees in (
        ({}, False),
        (auth("viewer", "vic"), False),
        (auth("host", "other"), False),
        (auth(*HOST), True),
        (auth("admin", "ops"), True),
    ):
        listed = await _listed(client, who)
        assert real in listed
        assert (practice in listed) is sees, who


async def test_switching_a_stream_is_for_its_host_and_not_while_live(
    client: TestClient, auth: Auth
) -> None:
    """PATCH rehearsal: the host or an admin, refused while live or while a sale runs."""
    sid = await _stream(client, auth, False)
    url = f"/api/streams/{sid}"
    for who, status in ((auth("viewer", "vic"), 403), (auth("host", "other"), 403), ({}, 401)):
        r = await client.patch(url, json={"rehearsal": True}, headers=who)
        assert r.status == status
    r = await client.patch(url, json={"rehearsal": "yes"}, headers=auth(*HOST))
    assert r.status == 400
    r = await client.patch(url, json={"rehearsal": True}, headers=auth(*HOST))
    assert r.status == 200 and (await r.json())["rehearsal"] is True
    assert await is_rehearsal(client.app[DATABASE], sid)
    sale = await _sale(client, auth, sid)
    assert sale["rehearsal"] is True  # a sale copies its stream's flag
    r = await client.patch(url, json={"rehearsal": False}, headers=auth("admin", "ops"))
    assert r.status == 409 and (await r.json())["error"] == "sale_running"
    r = await client.post(f"/api/sales/{sale['id']}/close", headers=auth(*HOST))
    assert r.status == 200
    await client.app[CATALOG].set_stream_status(sid, "live")
    r = await client.patch(url, json={"rehearsal": False}, headers=auth(*HOST))
    assert r.status == 409 and (await r.json())["error"] == "stream_live"
    await client.app[CATALOG].set_stream_status(sid, "ended")
    r = await client.patch(url, json={"rehearsal": False}, headers=auth(*HOST))
    assert r.status == 200 and (await r.json())["rehearsal"] is False


async def _persisted(client: TestClient, order_ids: list[str]) -> None:
    ledger = Ledger(client.app[DATABASE])
    for _ in range(200):
        states = [await ledger.get_order(o) for o in order_ids]
        if all(s is not None and s.state == "paid" for s in states):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the persister never wrote the paid orders")


@pytest.mark.parametrize("database_url", ["sqlite", "postgresql"], indirect=True)
async def test_rehearsal_orders_stay_out_of_real_figures(client: TestClient, auth: Auth) -> None:
    """Analytics, ops counts, attribution and points count the real show's orders only."""
    db = client.app[DATABASE]
    practice, real = await _stream(client, auth, True), await _stream(client, auth, False)
    sales_before = sum((await Reports(db).sales_by_state()).values())  # PostgreSQL is shared
    p_sale, r_sale = await _sale(client, auth, practice), await _sale(client, auth, real)
    attribution, members = client.app[ATTRIBUTION], client.app[MEMBERS]
    # PostgreSQL is shared by the session's tests: buyers of their own.
    amy, bo = f"amy-{uuid.uuid4().hex[:6]}", f"bo-{uuid.uuid4().hex[:6]}"
    for sid in (practice, real):  # pat's share link brought both buyers to both shows
        for user in (amy, bo):
            assert await attribution.touch(user, sid, "pat")
    for user in (amy, bo):
        await members.join("hana", user)
    paid = []
    for sale, user in ((p_sale, amy), (r_sale, bo), (p_sale, bo)):
        status, body = await buy(client, auth, sale["id"], user, f"k-{user}-{sale['id']}")
        assert status == 201, body
        oid = body["order"]["id"]
        r = await client.post(f"/api/orders/{oid}/pay", headers=auth("viewer", user))
        assert r.status == 200, await r.text()
        paid.append(oid)
    await _persisted(client, paid)
    client.app[SHOW_TALLY].hit(practice, "chat", 7)
    # Analytics: the practice has no orders and no counters; the real show has its one order.
    host = auth(*HOST)
    r = await client.get(f"/api/streams/{practice}/analytics", headers=host)
    report = await r.json()
    assert report["rehearsal"] is True
    assert report["totals"]["orders"] == 0 and report["totals"]["gmv_cents"] == 0
    assert report["totals"]["chat_messages"] == 0 and report["by_minute"] == []
    r = await client.get(f"/api/streams/{real}/analytics", headers=host)
    totals = (await r.json())["totals"]
    assert totals["orders"] == 1 and totals["paid_cents"] == 1999
    # The studio of the practice still shows what happened in it, flagged.
    r = await client.get(f"/api/streams/{practice}/stats", headers=host)
    stats = await r.json()
    assert stats["rehearsal"] is True and stats["orders"] == 2
    # Ops: only the real sale is counted among the sales.
    assert sum((await Reports(db).sales_by_state()).values()) == sales_before + 1
    # Attribution and points: only bo's real order (a background pass may have run already).
    await attribution.attribute_orders()
    assert await attribution.promoter_of(paid[1]) == "pat"
    assert await attribution.promoter_of(paid[0]) is None
    await members.credit_paid_orders()
    assert (await members.membership("hana", amy)).balance == 0  # type: ignore[union-attr]
    assert (await members.membership("hana", bo)).balance == 19  # type: ignore[union-attr]
    assert await is_rehearsal_sale(db, p_sale["id"]) and not await is_rehearsal_sale(
        db, r_sale["id"]
    )


async def test_a_sale_keeps_the_flag_its_orders_were_made_under(
    client: TestClient, auth: Auth
) -> None:
    """Switching a practice to a real show moves only its sales without orders."""
    db = client.app[DATABASE]
    sid = await _stream(client, auth, True)
    sold = await _sale(client, auth, sid)
    waiting = await _sale(client, auth, sid, open_now=False)
    status, body = await buy(client, auth, sold["id"], "amy", "k1")
    assert status == 201
    for _ in range(200):
        if await Ledger(db).get_order(body["order"]["id"]) is not None:
            break
        await asyncio.sleep(0.05)
    # A member's real points never pay for a practice order.
    await client.app[MEMBERS].join("hana", "amy")
    await client.app[MEMBERS].credit("hana", "amy", 500, "gift", "g1")
    r = await client.post(f"/api/orders/{body['order']['id']}/pay-with-points",
                          json={"points": 100}, headers=auth("viewer", "amy"))  # fmt: skip
    assert r.status == 409 and (await r.json())["error"] == "rehearsal"
    assert (await client.app[MEMBERS].membership("hana", "amy")).balance == 500  # type: ignore[union-attr]
    r = await client.post(f"/api/sales/{sold['id']}/close", headers=auth(*HOST))
    assert r.status == 200
    r = await client.patch(f"/api/streams/{sid}", json={"rehearsal": False}, headers=auth(*HOST))
    assert r.status == 200, await r.text()
    assert await is_rehearsal_sale(db, sold["id"])
    assert not await is_rehearsal_sale(db, waiting["id"])


async def test_rehearsal_reports_upload_list_and_serve_sandboxed(
    client: TestClient, auth: Auth
) -> None:
    """The load tool's report: host-only upload to a rehearsal, size-capped, served sandboxed."""
    practice, real = await _stream(client, auth, True), await _stream(client, auth, False)
    html = "<!doctype html><html><body><script>alert(1)</script><h1>Show</h1></body></html>"
    body = {"report": {"valid": True, "exit": {"code": 0, "reason": "ok"}, "counts": {"orders": 3}},
            "html": html}  # fmt: skip
    url = f"/api/streams/{practice}/rehearsal-report"
    r = await client.post(f"/api/streams/{real}/rehearsal-report", json=body, headers=auth(*HOST))
    assert r.status == 409 and (await r.json())["error"] == "not_rehearsal"
    for who, status in ((auth("viewer", "vic"), 403), (auth("host", "other"), 403), ({}, 401)):
        assert (await client.post(url, json=body, headers=who)).status == status
    big = {"report": {}, "html": "<!doctype html>" + "x" * MAX_REPORT_BYTES}
    r = await client.post(url, data=json.dumps(big), headers=auth(*HOST))
    assert r.status == 413
    r = await client.post(url, json={**body, "html": "<svg onload=x>"}, headers=auth(*HOST))
    assert r.status == 400
    # A large run's report (over the app's 1 MiB default body) still fits.
    roomy = {**body, "html": "<!doctype html>" + "y" * (3 * 1024 * 1024)}
    r = await client.post(url, data=json.dumps(roomy), headers=auth(*HOST))
    assert r.status == 201, await r.text()
    r = await client.post(url, json=body, headers=auth(*HOST))
    assert r.status == 201, await r.text()
    made = await r.json()
    assert made["orders"] == 3 and made["valid"] is True and made["reason"] == "ok"
    r = await client.get(f"/api/streams/{practice}/rehearsal-reports", headers=auth(*HOST))
    listed = (await r.json())["reports"]
    assert len(listed) == 2 and listed[0]["id"] == made["id"]  # newest first
    r = await client.get(f"/api/streams/{practice}/rehearsal-reports", headers=auth("viewer"))
    assert r.status == 403
    r = await client.get(made["html_url"])
    assert r.status == 200 and await r.text() == html
    assert r.headers["Content-Type"].startswith("text/html")
    csp = r.headers["Content-Security-Policy"]
    assert csp.startswith("sandbox;") and "script-src" not in csp and "default-src 'none'" in csp
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    r = await client.get(made["json_url"])
    assert r.status == 200 and (await r.json())["counts"] == {"orders": 3}
    for bad in (made["html_url"].replace(made["id"], "1" * 13 + "-" + "a" * 22),
                made["html_url"] + ".meta.json", made["html_url"][:-5] + ".meta.json",
                f"/api/streams/{real}/rehearsal-reports/{made['id']}.html"):  # fmt: skip
        assert (await client.get(bad)).status == 404, bad
