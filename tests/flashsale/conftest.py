"""Domain-level fixtures: the sale service on real Redis and a real database, without HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from redis.asyncio import Redis

from flashsale.service import SaleService, SaleView
from inventory.catalog import Actor, Catalog
from inventory.database import Database
from inventory.ledger import Ledger
from web.resources import make_redis
from web.settings import Settings

#: Products made straight through the catalog have no owner: only an admin may sell them.
OPS = Actor("ops", admin=True)


@dataclass
class Core:
    """The flash-sale service and its collaborators, with no background workers running."""

    redis: Redis
    db: Database
    catalog: Catalog
    ledger: Ledger
    sales: SaleService
    prefix: str

    async def sale(self, quantity: int, limit: int = 1, hold_s: int = 300) -> SaleView:
        """A product and an open sale of it."""
        product = await self.catalog.create_product("Lamp", 4500)
        sale = await self.sales.create_sale(product.id, quantity, limit, OPS, hold_s=hold_s)
        return await self.sales.open_sale(sale.id)


@pytest.fixture
async def core(settings: Settings) -> AsyncIterator[Core]:
    """A Core over the test's Redis prefix and database."""
    redis = make_redis(settings.redis_url, 64)
    db = Database(settings.resolved_database_url())
    await db.open()
    catalog = Catalog(db)
    ledger = Ledger(db)
    sales = SaleService(redis, ledger, catalog, settings.redis_prefix)
    yield Core(redis, db, catalog, ledger, sales, settings.redis_prefix)
    await sales.close()
    await redis.aclose()
    await db.close()
