"""Builds the room's parts through their constructors, in dependency order."""

from __future__ import annotations

import uuid
from functools import partial

from redis.asyncio import Redis

from chat.analytics import NULL_TALLY, Tally
from chat.audience import Audience
from chat.commands import Commands, Throttle
from chat.fanout import FanoutMeter
from chat.figures import room_figures
from chat.history import RoomLog
from chat.hub import Authenticate, Hub
from chat.keys import RoomKeys
from chat.member import RoomLimits
from chat.moderation import Moderation
from chat.presence import Presence
from chat.reactions import Reactions
from chat.room import RoomState
from chat.salefeed import RoomSales, SaleAnnouncer, SaleFeed
from chat.salelots import RoomLots
from chat.shardsubs import ShardSubscriptions
from chat.snapshot import Snapshots
from chat.social import NoSocial, RoomCoupons, RoomGroups, RoomSocial, SocialAnnouncer
from chat.subscriptions import RoomChannels, Subscriptions
from chat.ticker import RoomTicker
from inventory.catalog import Catalog
from inventory.redisclient import is_cluster


def build_room(
    redis: Redis,
    catalog: Catalog,
    prefix: str,
    sales: RoomSales,
    feed: SaleFeed,
    authenticate: Authenticate | None = None,
    limits: RoomLimits | None = None,
    process_id: str | None = None,
    groups: RoomGroups | None = None,
    coupons: RoomCoupons | None = None,
    lots: RoomLots | None = None,
    tally: Tally = NULL_TALLY,
    meter: FanoutMeter | None = None,
    throttle: Throttle | None = None,
) -> Hub:
    """The room of this process; ``feed`` is the observer ``sales`` already reports to.

    ``groups`` and ``coupons`` (both or neither) bring group buys and coupon drops to the room;
    ``meter`` hears the fan-out's delivery lag.
    """
    limits = limits or RoomLimits()
    keys_of = partial(RoomKeys.of, prefix)
    state = RoomState(redis)
    room_log = RoomLog(redis)
    social: RoomSocial = NoSocial()
    if groups is not None and coupons is not None:
        social = SocialAnnouncer(groups, coupons, sales, room_log, keys_of)
    moderation = Moderation(state, room_log, catalog)
    reactions = Reactions(redis)
    presence = Presence(redis, process_id or uuid.uuid4().hex[:12], limits.viewers_interval_s)
    snapshots = Snapshots(state, room_log, moderation, sales, social)
    # On a Cluster rooms are published with SPUBLISH, so they are read with SSUBSCRIBE.
    subscriptions: RoomChannels = (
        ShardSubscriptions(redis) if is_cluster(redis) else Subscriptions(redis, f"{prefix}:hub")
    )
    audience = Audience(catalog, state, snapshots, subscriptions, keys_of, limits, meter)
    announcer = SaleAnnouncer(feed, sales, room_log, keys_of, social, limits.sale_sweep_s)
    return Hub(
        keys_of=keys_of,
        catalog=catalog,
        state=state,
        room_log=room_log,
        moderation=moderation,
        commands=Commands(
            room_log, moderation, reactions, sales, limits, tally, lots, social, throttle
        ),
        audience=audience,
        subscriptions=subscriptions,
        ticker=RoomTicker(audience, announcer, reactions, presence, limits),
        feed=feed,
        announcer=announcer,
        authenticate=authenticate,
        figures=partial(room_figures, redis, history_len=room_log.history_len),
    )
