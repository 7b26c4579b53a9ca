"""One group buy's keys, terms and views: what the group code, its audit and the room share."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from flashsale.keys import SaleKeys
from flashsale.order import OrderView
from flashsale.redisguard import text
from inventory.errors import NotFound


class GroupNotFound(NotFound):
    """No such group."""

    code = "group_not_found"


@dataclass(frozen=True, slots=True)
class GroupKeys:
    """The group-buy keys of one sale (same hash tag as its ``SaleKeys``)."""

    sale: SaleKeys
    offer: str
    groups: str
    members: str
    due: str
    idem: str

    @classmethod
    def of(cls, prefix: str, sale_id: int) -> GroupKeys:
        """Group keys of sale ``sale_id`` under ``prefix``."""
        base = f"{prefix}:{{s{sale_id}}}"
        return cls(
            SaleKeys.of(prefix, sale_id),
            offer=f"{base}:goffer",
            groups=f"{base}:groups",
            members=f"{base}:gmembers",
            due=f"{base}:gdue",
            idem=f"{base}:gidem",
        )

    def for_expire(self) -> list[str]:
        """KEYS of group_expire.lua."""
        s = self.sale
        return [s.meta, s.users, s.orders, s.holds, s.events,
                self.offer, self.groups, self.members, self.due]  # fmt: skip

    def for_join(self) -> list[str]:
        """KEYS of group_join.lua."""
        return [*self.for_expire(), self.idem]


def active_groupbuys_key(prefix: str) -> str:
    """The set of sale ids with a group offer, which the group reaper sweeps."""
    return f"{prefix}:groupbuy:active"


def sale_id_of_group(group_id: str) -> int:
    """Group ids are ``<sale_id>-g<seq>``, so any process finds a group's keys from its id."""
    head, sep, tail = group_id.partition("-g")
    if not sep or not head.isdigit() or not tail.isdigit() or len(group_id) > 40:
        raise GroupNotFound(f"group {group_id!r} not found")
    return int(head)


@dataclass(frozen=True, slots=True)
class GroupOffer:
    """A sale's group-buy terms."""

    sale_id: int
    state: str
    price_cents: int
    size: int
    ttl_s: int

    def to_json(self) -> dict[str, object]:
        """The API shape."""
        return {
            "sale_id": self.sale_id,
            "state": self.state,
            "price_cents": self.price_cents,
            "size": self.size,
            "ttl_s": self.ttl_s,
        }


@dataclass(frozen=True, slots=True)
class GroupView:
    """One group: its state, progress and deadline. ``members`` are (user, order id) pairs."""

    id: str
    sale_id: int
    state: str
    size: int
    deadline_ms: int
    price_cents: int
    members: tuple[tuple[str, str], ...]

    @classmethod
    def parse(cls, group_id: str, record: Any, members: Any) -> GroupView:
        """Decode the records group_join.lua writes."""
        state, size, deadline, _opener, _created, price = text(record).split("|")
        pairs = tuple(
            (u, o) for u, _, o in (e.partition("=") for e in text(members or "").split(",") if e)
        )
        return cls(group_id, sale_id_of_group(group_id), state, int(size), int(deadline),
                   int(price), pairs)  # fmt: skip

    def has(self, user_id: str) -> bool:
        """Whether ``user_id`` is (or was) a member."""
        return any(u == user_id for u, _ in self.members)

    def to_json(self, stream_id: str | None = None) -> dict[str, object]:
        """The public shape: progress without members' identities."""
        return {
            "id": self.id,
            "sale_id": self.sale_id,
            "state": self.state,
            "size": self.size,
            "members": len(self.members),
            "deadline_ms": self.deadline_ms,
            "price_cents": self.price_cents,
            "share_path": f"/live/{stream_id}?group={self.id}" if stream_id else None,
            "server_time_ms": int(time.time() * 1000),
        }


@dataclass(frozen=True, slots=True)
class GroupResult:
    """The reply to an open or a join: the group, the caller's order, the stock left."""

    group: GroupView
    order: OrderView
    remaining: int
    duplicate: bool
