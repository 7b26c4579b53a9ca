"""The composition root: every domain service, built through its constructor in dependency order.

Order matters once, here: the room's sale feed (the sale service's observer) needs nothing, so it
comes first; the sale service reports to it from its first call; the room gets the sale service;
the relay's lifecycle gets the room. Nothing is attached afterwards.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from aiohttp import web

from chat.analytics import AnalyticsRollup, ShowTally
from chat.eventlog import RoomArchiver
from chat.factory import build_room
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.salefeed import SaleFeed
from chat.salelots import LotAnnouncer, RoomLots
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
from inventory.ledger import Ledger
from inventory.members import Members
from inventory.payments import PaymentEvents
from inventory.reviews import Reviews
from inventory.roomevents import RoomEventLog
from inventory.tasks import cancel_all, supervise
from stream.archive import RecordingArchive
from stream.registry import StreamRegistry
from stream.relay import Relay
from web.keys import (
    ATTRIBUTION,
    AUCTIONS,
    CATALOG,
    CLIENTS,
    COUPONS,
    DATABASE,
    DRAWS,
    GROUP_BUYS,
    LEDGER,
    MEMBER_PRICES,
    MEMBERS,
    METRICS,
    PAYMENTS,
    POINTS,
    RATE_LIMITER,
    RECORDINGS,
    REDIS,
    RELAY,
    REVIEWS,
    ROOM_EVENTS,
    ROOM_HUB,
    SALES,
    SETTINGS,
    SHOW_ANALYTICS,
    SHOW_ROLLUP,
    SHOW_TALLY,
    SIGNER,
    STREAM_REGISTRY,
)
from web.ratelimit import client_addresses, rate_limiter
from web.room import authenticator, room_limits
from web.whip import RoomStreamLifecycle, release_claim


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    """Build the ledger, sale service, room and relay; start them; stop them in reverse."""
    settings = app[SETTINGS]
    redis, catalog, prefix = app[REDIS], app[CATALOG], settings.redis_prefix
    attribution = app[ATTRIBUTION] = Attribution(app[DATABASE])
    members = app[MEMBERS] = Members(app[DATABASE])
    # An in-process persister attributes each order and settles its points as it writes it.
    ledger = Ledger(app[DATABASE], outbox=settings.webhooks_on, hooks=(attribution, members))
    feed = SaleFeed()
    prices = app[MEMBER_PRICES] = MemberPrices(members, ledger, catalog, redis, prefix)
    sales = SaleService(
        redis, ledger, catalog, prefix, observer=feed, meter=app[METRICS], member_prices=prices
    )
    groups = GroupBuys(redis, sales, prefix, observer=feed)
    coupons = Coupons(redis, sales, prefix, observer=feed)
    lots = LotAnnouncer(RoomLog(redis), partial(RoomKeys.of, prefix))
    auctions = app[AUCTIONS] = Auctions(redis, sales, prefix, observer=lots)
    draws = app[DRAWS] = Draws(redis, sales, prefix, settings.resolved_secret().encode())
    tally = app[SHOW_TALLY] = ShowTally(redis, prefix, sales.stream_of)
    limiter = app[RATE_LIMITER] = rate_limiter(redis, settings)
    app[CLIENTS] = client_addresses(settings)
    room = build_room(
        redis,
        catalog,
        prefix,
        sales,
        feed,
        authenticate=authenticator(app[SIGNER]),
        limits=room_limits(settings),
        groups=groups,
        coupons=coupons,
        lots=RoomLots(auctions, draws, sales.stream_of),
        tally=tally,
        meter=app[METRICS],
        throttle=limiter,
    )
    # Workers are told apart by the URL viewers are redirected to: advertise_url when the
    # settings have one, else this process's own host and port.
    own_url = settings.advertise_url or f"http://{settings.host}:{settings.port}"
    registry = StreamRegistry(redis, prefix, own_url)
    ice = settings.ice_servers
    archive = RecordingArchive(
        settings.resolved_recordings_dir(), settings.recording_retention_days
    )
    relay = Relay(
        RoomStreamLifecycle(catalog, room, partial(release_claim, registry), sales),
        ice_servers=tuple(u.strip() for u in ice.split(",") if u.strip()),
        media_timeout_s=settings.stream_media_timeout_s,
        max_viewers_per_stream=settings.stream_max_viewers,
        max_viewers=settings.relay_max_viewers,
        archive=archive if settings.recording else None,
    )
    app[LEDGER] = ledger
    app[SALES] = sales
    app[GROUP_BUYS] = groups
    app[COUPONS] = coupons
    app[POINTS] = PointsCheckout(sales, catalog, members)
    app[PAYMENTS] = PaymentConfirmations(sales, PaymentEvents(app[DATABASE]))
    app[ROOM_HUB] = room
    app[STREAM_REGISTRY] = registry
    app[RELAY] = relay
    app[RECORDINGS] = archive
    events = app[ROOM_EVENTS] = RoomEventLog(app[DATABASE])
    # Every process archives the rooms of the broadcasts it holds (its relay's streams).
    archiver = RoomArchiver(redis, prefix, events, relay.streams)
    app[SHOW_ANALYTICS] = ShowAnalytics(app[DATABASE])
    app[REVIEWS] = Reviews(app[DATABASE])
    rollup = app[SHOW_ROLLUP] = AnalyticsRollup(tally, app[SHOW_ANALYTICS], relay.streams)
    await room.start()
    registry.start(relay.is_live)
    tasks = [
        supervise(archive.keep_pruning(), "recordings-retention"),
        supervise(archiver.run(), "room-archive"),
        supervise(rollup.run(), "show-analytics"),
    ]
    try:
        yield
    finally:
        # The relay ends every broadcast first (announcing it in the room), then the room goes.
        await relay.close()
        await cancel_all(tasks)
        await archiver.sweep()  # the "ended" events the relay just announced
        await tally.flush()  # this process's last counts (the counters outlive it in Redis)
        await registry.close()
        await room.close()
        await groups.close()
        await coupons.close()
        await auctions.close()
        await sales.close()
