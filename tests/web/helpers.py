"""HTTP steps the process tests share with a `livesell serve` they started."""

from __future__ import annotations

import aiohttp


async def open_sale(
    s: aiohttp.ClientSession, url: str, admin: dict[str, str], quantity: int
) -> int:
    """Create a product and a sale of ``quantity`` units through the API, open it; its id."""
    r = await s.post(f"{url}/api/products", json={"name": "Hat", "price_cents": 1}, headers=admin)
    product = await r.json()
    r = await s.post(
        f"{url}/api/sales", json={"product_id": product["id"], "quantity": quantity}, headers=admin
    )
    sale_id = int((await r.json())["id"])
    r = await s.post(f"{url}/api/sales/{sale_id}/open", headers=admin)
    assert r.status == 200, await r.text()
    return sale_id
