"""Typed application-state keys (``web.AppKey``), one per resource the app owns."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from web.auth import TokenSigner
from web.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from flashsale.service import SaleService
    from inventory.catalog import Catalog
    from inventory.database import Database

SETTINGS = web.AppKey("settings", Settings)
SIGNER = web.AppKey("signer", TokenSigner)
REDIS: web.AppKey[Redis] = web.AppKey("redis")
#: The URL actually in use (the private server's when LIVESELL_REDIS_URL is empty).
REDIS_URL = web.AppKey("redis_url", str)
DATABASE: web.AppKey[Database] = web.AppKey("database")
CATALOG: web.AppKey[Catalog] = web.AppKey("catalog")
SALES: web.AppKey[SaleService] = web.AppKey("sales")
#: The live-room hub (chat.hub.Hub); set by web/room.py.
ROOM_HUB: web.AppKey[Any] = web.AppKey("room_hub")
#: The stream relay (stream.relay.Relay); set by web/whip.py.
RELAY: web.AppKey[Any] = web.AppKey("relay")
