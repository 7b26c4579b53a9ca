"""The defects the fuzzers found, each pinned by a fast test of its own."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from aiohttp.http_exceptions import BadHttpMessage
from aiohttp.test_utils import TestClient

from web.http import MAX_JSON_INT
from web.logs import MalformedRequestFilter


async def test_a_bid_on_a_missing_lot_is_a_404(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    # auction_bid.lua returned no summary row for a missing lot: the reply was read as one (500).
    for lot in ("0", "999999"):
        r = await client.post(
            f"/api/lots/{lot}/bids",
            json={"amount_cents": 100},
            headers={**auth("viewer"), "Idempotency-Key": "k1"},
        )
        assert r.status == 404, await r.text()
        assert (await r.json())["error"] == "lot_not_found"


async def test_integers_past_2_to_the_53_are_a_400(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    # They reached SQLite as an OverflowError (500); Lua would have rounded them anyway.
    host = auth("host", "hana")
    for huge in (MAX_JSON_INT + 1, 2**63, -(2**64), 10**30):
        r = await client.post("/api/sales", json={"product_id": huge, "quantity": 1}, headers=host)
        assert r.status == 400, await r.text()
        assert (await r.json())["error"] == "bad_request"
        product = {"name": "x", "price_cents": huge}
        r = await client.post("/api/products", json=product, headers=host)
        assert r.status == 400, await r.text()
    r = await client.post("/api/sales", json={"product_id": MAX_JSON_INT, "quantity": 1},
                          headers=host)  # fmt: skip
    assert r.status == 404, await r.text()  # in range: an ordinary unknown product


async def test_beacon_refuses_huge_sale_ids(client: TestClient) -> None:
    r = await client.post("/api/streams/show/beacon", json={"card_view": [2**70]})
    assert r.status == 400, await r.text()
    assert (await r.json())["error"] == "bad_request"


def test_malformed_requests_are_logged_as_one_warning_line() -> None:
    # aiohttp logs a request its parser refused at ERROR with a traceback; it is the client's
    # fault, so it becomes one warning, and a real error keeps its level and traceback.
    def record(exc: BaseException) -> logging.LogRecord:
        try:
            raise exc
        except BaseException:
            info = sys.exc_info()
        message = "Error handling request from %s"
        return logging.LogRecord("aiohttp.server", logging.ERROR, "", 1, message, ("::1",), info)

    bad = record(BadHttpMessage("Invalid header value char"))
    assert MalformedRequestFilter().filter(bad)
    assert bad.levelno == logging.WARNING and bad.exc_info is None
    assert "Invalid header value char" in bad.getMessage()
    assert "::1" in bad.getMessage()
    real = record(RuntimeError("boom"))
    assert MalformedRequestFilter().filter(real)
    assert real.levelno == logging.ERROR and real.exc_info is not None


async def test_a_lot_cannot_be_run_as_a_flash_sale(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    # The host could open a lot's sale as a flash sale: anyone then bought the lot at its start
    # price, past the auction, and the audit failed (one lot, an open auction, an order).
    hana, alice = auth("host", "hana"), auth("viewer", "alice")
    product = {"name": "Vase", "price_cents": 100}
    pid = (await (await client.post("/api/products", json=product, headers=hana)).json())["id"]
    lot = {"product_id": pid, "start_cents": 100, "increment_cents": 10, "duration_s": 600}
    r = await client.post("/api/lots", json=lot, headers=hana)
    lot_id = (await r.json())["id"]
    assert (await client.post(f"/api/lots/{lot_id}/open", headers=hana)).status == 200
    for path, body in [
        ("open", {}),
        ("close", {}),
        ("group-offer", {"price_cents": 50, "size": 2}),
        ("coupons", {"kind": "amount", "value": 1, "count": 5}),
        ("draw", {}),
    ]:
        r = await client.post(f"/api/sales/{lot_id}/{path}", json=body, headers=hana)
        assert r.status == 409, (path, await r.text())
        assert (await r.json())["error"] == "sale_is_a_lot"
    r = await client.post(f"/api/sales/{lot_id}/buy", headers={**alice, "Idempotency-Key": "k"})
    assert r.status == 409 and (await r.json())["error"] == "not_open", await r.text()
    r = await client.post(f"/api/lots/{lot_id}/bids", json={"amount_cents": 100},
                          headers={**alice, "Idempotency-Key": "b1"})  # fmt: skip
    assert r.status == 201, await r.text()
    r = await client.get(f"/api/sales/{lot_id}/audit", headers=auth("admin", "ops"))
    assert r.status == 200, await r.text()
