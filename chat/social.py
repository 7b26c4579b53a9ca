"""Group buys and coupon drops in the room: their events, the join snapshot's part, commands.

The flash-sale side (flashsale/groupbuy.py, flashsale/coupons.py) reports each group opened,
joined, filled or expired and each coupon drop or claim to the room's ``SaleFeed``.
``SocialAnnouncer`` turns them into sequenced ``group`` and ``coupon`` room events, each
published once per room (chat/lua/social_events.lua keeps the ids it has published), read
fresh from Redis so a page gets the group's price and the drop's terms. Members' identities are
never published: a group shows a count, and a joiner's name only when they opted in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from chat.errors import Unauthorized
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import Member
from chat.protocol import Command
from chat.salefeed import RoomSales
from flashsale.errors import SaleNotFound
from flashsale.events import SaleEvent
from flashsale.groupbuy import NoGroupOffer
from inventory.errors import NotFound

if TYPE_CHECKING:
    from flashsale.coupons import Claim, CouponDrop
    from flashsale.group import GroupOffer, GroupResult, GroupView

log = logging.getLogger("livesell.chat")

#: Sale event kinds that are group or coupon events, with the room event's type and phase.
SOCIAL_KINDS = {
    "group_offered": ("group", "offer"),
    "group_opened": ("group", "opened"),
    "group_joined": ("group", "joined"),
    "group_filled": ("group", "filled"),
    "group_expired": ("group", "expired"),
    "coupon_dropped": ("coupon", "dropped"),
    "coupon_claimed": ("coupon", "claimed_out"),
}


class RoomGroups(Protocol):
    """What the room asks of group buys (``flashsale.groupbuy.GroupBuys``)."""

    async def open_group(
        self, sale_id: int, user_id: str, idempotency_key: str, public_name: str | None = None
    ) -> GroupResult:
        """Open a group, exactly as the HTTP open does."""
        ...

    async def join_group(
        self, group_id: str, user_id: str, public_name: str | None = None
    ) -> GroupResult:
        """Join a group, exactly as the HTTP join does."""
        ...

    async def get_group(self, group_id: str) -> GroupView:
        """One group with its progress."""
        ...

    async def get_offer(self, sale_id: int) -> GroupOffer | None:
        """The sale's group-buy terms, or None."""
        ...

    async def open_groups(self, sale_id: int, limit: int = 50) -> list[GroupView]:
        """The sale's open groups, soonest deadline first."""
        ...


class RoomCoupons(Protocol):
    """What the room asks of coupon drops (``flashsale.coupons.Coupons``)."""

    async def claim(self, drop_id: str, user_id: str) -> Claim:
        """Claim a coupon, exactly as the HTTP claim does."""
        ...

    async def get_drop(self, drop_id: str) -> CouponDrop:
        """One drop with the coupons left."""
        ...

    async def active_drop(self, sale_id: int) -> CouponDrop | None:
        """The sale's latest drop while it has coupons left and has not expired."""
        ...


class RoomSocial(Protocol):
    """The room's group buys and coupons: their events, the snapshot's part, the commands."""

    async def publish(self, events: Sequence[SaleEvent]) -> int:
        """Publish group/coupon sale events in their rooms, each once."""
        ...

    async def snapshot(self, sale_ids: Sequence[int], stream_id: str) -> dict[str, Any]:
        """``groups`` and ``coupon`` for the join snapshot."""
        ...

    async def run(self, member: Member, cmd: Command) -> None:
        """Run ``group_open``, ``group_join`` or ``coupon_claim``."""
        ...


def once_id(event: SaleEvent) -> str:
    """The id a room publishes an event under once: one per group step, per joiner's order."""
    step = event.kind.split("_", 1)[1]
    if event.kind == "group_joined":
        step = f"joined:{event.order_id}"
    elif event.kind == "group_offered":  # each change of the terms is news
        step = f"offered:{event.at_ms}"
    return f"{event.ref_id}:{step}"


def group_json(group: GroupView, stream_id: str) -> dict[str, Any]:
    """A group as a page needs it (no member identities)."""
    out = group.to_json(stream_id)
    out.pop("server_time_ms", None)
    return out


def coupon_json(drop: CouponDrop) -> dict[str, Any]:
    """A drop as a page needs it."""
    out = drop.to_json()
    out.pop("server_time_ms", None)
    return out


class SocialAnnouncer:
    """Publishes the group and coupon events the feed collected, each once per room."""

    def __init__(
        self,
        groups: RoomGroups,
        coupons: RoomCoupons,
        sales: RoomSales,
        room_log: RoomLog,
        keys_of: Callable[[str], RoomKeys],
    ) -> None:
        self._groups = groups
        self._coupons = coupons
        self._sales = sales
        self._log = room_log
        self._keys_of = keys_of

    async def run(self, member: Member, cmd: Command) -> None:
        """``group_open``, ``group_join``, ``coupon_claim``: the HTTP services, same errors."""
        who = member.identity
        if who is None:
            raise Unauthorized(f"sign in to {cmd.type.replace('_', ' ')}: send an auth event")
        if cmd.type == "coupon_claim":
            drop = await self._coupons.get_drop(cmd["coupon_id"])
            await self._in_room(member, drop.sale_id, f"coupon {drop.id}")
            claim = await self._coupons.claim(drop.id, who.user_id)
            member.send({
                "type": "coupon_result", "ref": cmd.ref, "coupon": coupon_json(claim.drop),
                "state": claim.state, "duplicate": claim.duplicate,
            })  # fmt: skip
            return
        name = who.name if cmd["show_name"] else None
        if cmd.type == "group_open":
            await self._in_room(member, cmd["sale_id"], f"sale {cmd['sale_id']}")
            result = await self._groups.open_group(cmd["sale_id"], who.user_id, cmd["key"], name)
        else:
            group = await self._groups.get_group(cmd["group_id"])
            await self._in_room(member, group.sale_id, f"group {group.id}")
            result = await self._groups.join_group(group.id, who.user_id, name)
        member.send({
            "type": "group_result", "ref": cmd.ref,
            "group": group_json(result.group, member.stream_id),
            "order": result.order.to_json(), "remaining": result.remaining,
            "duplicate": result.duplicate,
        })  # fmt: skip

    async def _in_room(self, member: Member, sale_id: int, what: str) -> None:
        # A room sells its own stream's sales only, as its buy does.
        if await self._sales.stream_of(sale_id) != member.stream_id:
            raise SaleNotFound(f"{what} is not on sale in this room")

    async def publish(self, events: Sequence[SaleEvent]) -> int:
        """Publish ``events`` (group_*/coupon_* sale events) in their rooms; returns how many."""
        by_room: dict[str, list[tuple[str, dict[str, Any]]]] = {}
        for event in events:
            if event.ref_id is None:
                continue
            if event.kind == "coupon_claimed" and event.count > 0:
                continue  # only the last coupon is news; the drop's count is in its event
            try:
                stream_id = event.stream_id or await self._sales.stream_of(event.sale_id)
                if stream_id is None:
                    continue
                room_event = await self._room_event(event, stream_id)
            except NotFound:
                continue
            except Exception:
                log.warning("social event %s of %s not published", event.kind, event.ref_id,
                            exc_info=True)  # fmt: skip
                continue
            by_room.setdefault(stream_id, []).append((once_id(event), room_event))
        published = 0
        for stream_id, items in by_room.items():
            published += await self._log.publish_each_once(self._keys_of(stream_id), items)
        return published

    async def _room_event(self, event: SaleEvent, stream_id: str) -> dict[str, Any]:
        kind, phase = SOCIAL_KINDS[event.kind]
        out: dict[str, Any] = {"type": kind, "phase": phase, "at_ms": event.at_ms}
        assert event.ref_id is not None
        if phase == "offer":
            offer = await self._groups.get_offer(event.sale_id)
            out["offer"] = None if offer is None else offer.to_json()
        elif kind == "group":
            group = group_json(await self._groups.get_group(event.ref_id), stream_id)
            # The state and count of this step: a later step may already be in Redis.
            group["members"] = event.count
            if phase in ("filled", "expired"):
                group["state"] = phase
            out["group"] = group
            if phase in ("opened", "joined"):
                # Anonymous unless the buyer opted in: never the user id.
                out["buyer"] = event.public_name
        else:
            coupon = coupon_json(await self._coupons.get_drop(event.ref_id))
            coupon["left"] = event.count
            out["coupon"] = coupon
        return out

    async def snapshot(self, sale_ids: Sequence[int], stream_id: str) -> dict[str, Any]:
        """The join snapshot's part: the sales' open groups and the latest active drop."""
        groups: list[dict[str, Any]] = []
        offers: list[dict[str, Any]] = []
        drops: list[CouponDrop] = []
        for sale_id in sale_ids:
            offer = await self._groups.get_offer(sale_id)
            if offer is not None and offer.state == "open":
                offers.append(offer.to_json())
            groups += [group_json(g, stream_id) for g in await self._groups.open_groups(sale_id)]
            drop = await self._coupons.active_drop(sale_id)
            if drop is not None:
                drops.append(drop)
        groups.sort(key=lambda g: (g["deadline_ms"], g["id"]))
        latest = max(drops, key=lambda d: d.expires_at_ms, default=None)
        coupon = None if latest is None else coupon_json(latest)
        return {"group_offers": offers, "groups": groups, "coupon": coupon}


class NoSocial:
    """A room without group buys or coupons (tests of the room alone)."""

    async def run(self, member: Member, cmd: Command) -> None:
        """Refuse: nothing to open, join or claim."""
        raise NoGroupOffer("group buys and coupons are not offered here")

    async def publish(self, events: Sequence[SaleEvent]) -> int:
        """Publish nothing."""
        return 0

    async def snapshot(self, sale_ids: Sequence[int], stream_id: str) -> dict[str, Any]:
        """No groups, no coupon."""
        return {"group_offers": [], "groups": [], "coupon": None}
