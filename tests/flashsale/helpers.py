"""Small API helpers shared by the flash-sale tests."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient

Auth = Callable[..., dict[str, str]]


async def make_sale(
    client: TestClient, auth: Auth, quantity: int = 10, limit: int = 1, open_now: bool = True,
    host: str | None = None, **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    """Create a product and a sale through the API, optionally opening it.

    As an admin, or as ``host``, who then owns the product (and may pin it, price it, offer it).
    """
    admin = auth("admin", "ops") if host is None else auth("host", host)
    r = await client.post(
        "/api/products", json={"name": "Red scarf", "price_cents": 1999}, headers=admin
    )
    assert r.status == 201, await r.text()
    product = await r.json()
    body = {"product_id": product["id"], "quantity": quantity, "per_user_limit": limit, **extra}
    r = await client.post("/api/sales", json=body, headers=admin)
    assert r.status == 201, await r.text()
    sale = await r.json()
    if open_now:
        r = await client.post(f"/api/sales/{sale['id']}/open", headers=admin)
        assert r.status == 200, await r.text()
        sale = await r.json()
    return sale


async def buy(
    client: TestClient, auth: Auth, sale_id: int, user: str, key: str, qty: int = 1
) -> tuple[int, dict[str, Any]]:
    """POST a buy; returns (status, json body)."""
    r = await client.post(
        f"/api/sales/{sale_id}/buy",
        json={"qty": qty},
        headers={**auth("viewer", user), "Idempotency-Key": key},
    )
    return r.status, await r.json()
