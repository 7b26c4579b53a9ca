"""HTTP steps the process tests share with a `livesell serve` they started."""

from __future__ import annotations

import asyncio
import itertools
from collections import Counter

import aiohttp

from web.auth import Role, TokenSigner


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


class Rush:
    """Buyers each taking one unit as fast as they can, until the server stops answering."""

    def __init__(self, url: str, sale_id: int, signer: TokenSigner, enough_at: int) -> None:
        self._url = f"{url}/api/sales/{sale_id}/buy"
        self._signer = signer
        self._enough_at = enough_at
        self._users = itertools.count()
        self._tasks: list[asyncio.Task[None]] = []
        #: Every order a client was told about with a 201.
        self.confirmed: list[str] = []
        #: Statuses other than 201.
        self.refused: Counter[int] = Counter()
        #: Set once ``enough_at`` orders are confirmed.
        self.enough = asyncio.Event()

    def start(self, buyers: int = 16) -> None:
        """Start the buyers."""
        self._tasks = [asyncio.create_task(self._buyer()) for _ in range(buyers)]

    async def ended(self) -> None:
        """Wait until every buyer found the server gone."""
        await asyncio.wait_for(asyncio.gather(*self._tasks), 30)

    async def _buyer(self) -> None:
        async with aiohttp.ClientSession() as s:
            while True:
                user = f"u{next(self._users)}"
                h = {
                    "Authorization": f"Bearer {self._signer.mint(user, Role.VIEWER)}",
                    "Idempotency-Key": "k",
                }
                try:
                    async with s.post(self._url, headers=h) as r:
                        if r.status != 201:
                            self.refused[r.status] += 1
                            continue
                        self.confirmed.append((await r.json())["order"]["id"])
                        if len(self.confirmed) >= self._enough_at:
                            self.enough.set()
                except aiohttp.ClientError:
                    return  # the server is gone
