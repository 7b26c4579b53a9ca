"""Typed application-state keys (``web.AppKey``), one per resource or service the app owns."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from web.auth import TokenSigner
from web.settings import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from chat.analytics import AnalyticsRollup, ShowTally
    from chat.hub import Hub
    from flashsale.auction import Auctions
    from flashsale.coupons import Coupons
    from flashsale.draw import Draws
    from flashsale.groupbuy import GroupBuys
    from flashsale.memberprice import MemberPrices
    from flashsale.payment import PaymentConfirmations
    from flashsale.points import PointsCheckout
    from flashsale.service import SaleService
    from inventory.analytics import ShowAnalytics
    from inventory.attribution import Attribution
    from inventory.catalog import Catalog
    from inventory.database import Database
    from inventory.ledger import Ledger
    from inventory.members import Members
    from inventory.reviews import Reviews
    from inventory.roomevents import RoomEventLog
    from stream.archive import RecordingArchive
    from stream.registry import StreamRegistry
    from stream.relay import Relay
    from web.metrics import Metrics
    from web.ratelimit import ClientAddresses, RateLimiter

SETTINGS = web.AppKey("settings", Settings)
SIGNER = web.AppKey("signer", TokenSigner)
REDIS: web.AppKey[Redis] = web.AppKey("redis")
#: The URL actually in use (the private server's when LIVESELL_REDIS_URL is empty).
REDIS_URL = web.AppKey("redis_url", str)
DATABASE: web.AppKey[Database] = web.AppKey("database")
CATALOG: web.AppKey[Catalog] = web.AppKey("catalog")
LEDGER: web.AppKey[Ledger] = web.AppKey("ledger")
SALES: web.AppKey[SaleService] = web.AppKey("sales")
#: This process's live room (built by web/services.py).
ROOM_HUB: web.AppKey[Hub] = web.AppKey("room_hub")
#: The stream relay (built by web/services.py).
RELAY: web.AppKey[Relay] = web.AppKey("relay")
#: Which worker holds each live stream (docs/stream.md, "Several workers").
STREAM_REGISTRY: web.AppKey[StreamRegistry] = web.AppKey("stream_registry")
#: This process's Prometheus series (web/metrics.py).
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
#: Group buys and coupon drops on the sales (built by web/services.py; routes in web/social.py).
GROUP_BUYS: web.AppKey[GroupBuys] = web.AppKey("group_buys")
COUPONS: web.AppKey[Coupons] = web.AppKey("coupons")
#: Store members and their points ledger (SQL), and checkout with points.
MEMBERS: web.AppKey[Members] = web.AppKey("members")
MEMBER_PRICES: web.AppKey[MemberPrices] = web.AppKey("member_prices")
POINTS: web.AppKey[PointsCheckout] = web.AppKey("points")
#: Share-link touches, order attribution and commissions (SQL).
ATTRIBUTION: web.AppKey[Attribution] = web.AppKey("attribution")
#: Where broadcasts are recorded (replays, HLS), built by web/services.py.
RECORDINGS: web.AppKey[RecordingArchive] = web.AppKey("recordings")
#: The room-event log in SQL (replay timelines), built by web/services.py.
ROOM_EVENTS: web.AppKey[RoomEventLog] = web.AppKey("room_events")
#: Auction lots and fair draws on the sales (built by web/services.py; routes in web/auctions.py).
AUCTIONS: web.AppKey[Auctions] = web.AppKey("auctions")
DRAWS: web.AppKey[Draws] = web.AppKey("draws")
#: Show analytics: the hot paths' tally, its roll-up into SQL, and the SQL report.
SHOW_TALLY: web.AppKey[ShowTally] = web.AppKey("show_tally")
SHOW_ROLLUP: web.AppKey[AnalyticsRollup] = web.AppKey("show_rollup")
SHOW_ANALYTICS: web.AppKey[ShowAnalytics] = web.AppKey("show_analytics")
#: Verified reviews (SQL), routes in web/reviews.py.
REVIEWS: web.AppKey[Reviews] = web.AppKey("reviews")
#: Per-client-address rate limits in Redis (web/ratelimit.py), and how the address is read.
RATE_LIMITER: web.AppKey[RateLimiter] = web.AppKey("rate_limiter")
CLIENTS: web.AppKey[ClientAddresses] = web.AppKey("clients")
#: Payments confirmed by the provider's signed webhook (routes in web/payments.py).
PAYMENTS: web.AppKey[PaymentConfirmations] = web.AppKey("payments")
