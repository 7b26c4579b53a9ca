"""The dashboards' JSON: viewer counts on the stream list, a show's stats, the ops overview."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestClient

from chat.figures import chat_per_min
from web.keys import CATALOG, ROOM_HUB


async def _show_with_sale(client: TestClient, host: dict[str, str]) -> tuple[int, int]:
    r = await client.post("/api/streams", json={"id": "s1", "title": "Lamps"}, headers=host)
    assert r.status == 201
    r = await client.post("/api/products", json={"name": "Lamp", "price_cents": 1990}, headers=host)
    product = (await r.json())["id"]
    body = {"product_id": product, "quantity": 5, "per_user_limit": 2, "stream_id": "s1"}
    r = await client.post("/api/sales", json=body, headers=host)
    sale = (await r.json())["id"]
    r = await client.post(f"/api/sales/{sale}/open", json={}, headers=host)
    assert r.status == 200
    return product, sale


async def _buy(client: TestClient, sale: int, who: dict[str, str], key: str, qty: int) -> str:
    r = await client.post(
        f"/api/sales/{sale}/buy", json={"qty": qty}, headers={**who, "Idempotency-Key": key}
    )
    assert r.status == 201, await r.text()
    return str((await r.json())["order"]["id"])


async def _until(check: Callable[[], Awaitable[bool]], within_s: float = 5.0) -> None:
    end = time.monotonic() + within_s
    while not await check():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_stream_stats_count_orders_gmv_and_units_by_state(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    host = auth("host", "hana")
    _, sale = await _show_with_sale(client, host)
    paid = await _buy(client, sale, auth("viewer", "ann"), "k1", 2)
    await _buy(client, sale, auth("viewer", "bob"), "k2", 1)
    r = await client.post(f"/api/orders/{paid}/pay", headers=auth("viewer", "ann"))
    assert r.status == 200

    async def persisted() -> bool:
        r = await client.get("/api/streams/s1/stats", headers=host)
        stats = await r.json()
        return bool(stats["orders"] == 2 and stats["paid_units"] == 2)

    await _until(persisted)
    stats = await (await client.get("/api/streams/s1/stats", headers=host)).json()
    assert stats["gmv_cents"] == 3 * 1990
    assert stats["paid_cents"] == 2 * 1990
    [row] = stats["sales"]
    assert (row["id"], row["remaining"], row["reserved_units"], row["paid_units"]) == (
        sale,
        2,
        1,
        2,
    )
    assert stats["viewers"] == 0 and stats["likes"] == 0 and stats["chat_per_min"] == 0


async def test_stream_stats_are_for_its_host_or_an_admin(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    await _show_with_sale(client, auth("host", "hana"))
    assert (await client.get("/api/streams/s1/stats")).status == 401
    assert (await client.get("/api/streams/s1/stats", headers=auth("host", "other"))).status == 403
    assert (await client.get("/api/streams/s1/stats", headers=auth("viewer", "v"))).status == 403
    assert (await client.get("/api/streams/s1/stats", headers=auth("admin", "root"))).status == 200
    r = await client.get("/api/streams/nope/stats", headers=auth("admin", "root"))
    assert r.status == 404 and (await r.json())["error"] == "stream_not_found"


async def test_stream_list_carries_the_rooms_viewer_count(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    host = auth("host", "hana")
    await _show_with_sale(client, host)
    # What the relay's lifecycle does when the host starts publishing.
    await client.app[CATALOG].set_stream_status("s1", "live")
    await client.app[ROOM_HUB].stream_status("s1", "live")
    ws = await client.ws_connect("/ws/rooms/s1")
    await ws.receive()  # the snapshot: the viewer is in the room

    async def counted() -> bool:
        streams = (await (await client.get("/api/streams")).json())["streams"]
        return bool(streams[0]["viewers"] == 1)

    await _until(counted, 10)
    await ws.close()


async def test_ops_overview_shows_health_sales_and_history(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    _, sale = await _show_with_sale(client, auth("host", "hana"))
    await _buy(client, sale, auth("viewer", "ann"), "k1", 1)
    assert (await client.get("/api/ops/overview", headers=auth("host", "hana"))).status == 403
    r = await client.get("/api/ops/overview", headers=auth("admin", "root"))
    assert r.status == 200
    body = await r.json()
    health = body["health"]
    assert health["redis"]["ok"] and health["database"]["ok"]
    assert health["persister"]["active_sales"] == 1
    assert health["loop_lag_ms"] >= 0
    assert health["sales_by_state"] == {"open": 1}
    [row] = body["sales"]
    assert row["id"] == sale and row["remaining"] == 4
    assert len(body["series"]["t"]) >= 1  # the sampler took its first point at start-up


async def test_ops_overview_names_the_show_of_an_auction_lots_sale(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    """A lot's sale has no stream_id (no sale card offers it); ops still says whose show it is."""
    product, sale = await _show_with_sale(client, auth("host", "hana"))
    body = {"product_id": product, "start_cents": 1000, "increment_cents": 100,
            "duration_s": 60, "stream_id": "s1"}  # fmt: skip
    r = await client.post("/api/lots", json=body, headers=auth("host", "hana"))
    assert r.status == 201, await r.text()
    r = await client.get("/api/ops/overview", headers=auth("admin", "root"))
    rows = {row["id"]: row for row in (await r.json())["sales"]}
    [lot_sale] = [i for i in rows if i != sale]
    assert (rows[lot_sale]["stream_id"], rows[lot_sale]["lot_stream_id"]) == (None, "s1")
    assert (rows[sale]["stream_id"], rows[sale]["lot_stream_id"]) == ("s1", None)


# The counts cover the whole database: the session's shared PostgreSQL database holds other
# tests' sales, so this test gets one of its own.
@pytest.mark.parametrize("database_url", ["sqlite", "postgresql_empty"], indirect=True)
async def test_ops_counts_a_sale_past_its_window_as_closed(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    host, admin = auth("host", "hana"), auth("admin", "root")
    await client.post("/api/streams", json={"id": "s1", "title": "Lamps"}, headers=host)
    r = await client.post("/api/products", json={"name": "Lamp", "price_cents": 990}, headers=host)
    body = {"product_id": (await r.json())["id"], "quantity": 5, "duration_s": 1}
    sale = (await (await client.post("/api/sales", json=body, headers=host)).json())["id"]
    assert (await client.post(f"/api/sales/{sale}/open", json={}, headers=host)).status == 200

    async def counts() -> dict[str, int]:
        r = await client.get("/api/ops/overview", headers=admin)
        return dict((await r.json())["health"]["sales_by_state"])

    assert await counts() == {"open": 1}
    await asyncio.sleep(1.2)  # the window ends; nobody closes the sale, so SQL still says open
    assert await counts() == {"closed": 1}


async def test_room_stats_are_for_admins(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    assert (await client.get("/api/rooms/stats")).status == 401
    assert (await client.get("/api/rooms/stats", headers=auth("viewer", "v"))).status == 403
    assert (await client.get("/api/rooms/stats", headers=auth("host", "hana"))).status == 403
    r = await client.get("/api/rooms/stats", headers=auth("admin", "root"))
    assert r.status == 200 and "clients" in await r.json()


def test_chat_rate_over_the_window_and_over_a_full_history() -> None:
    now = 100_000
    assert chat_per_min([], now) == 0
    assert chat_per_min([now - 1000, now - 2000, now - 40_000], now) == 4.0  # 2 in 30 s
    full = [now - 100 * i for i in range(50)]  # 50 messages within 4.9 s
    assert chat_per_min(full, now) == round(50 * 60_000 / 4900, 1)
