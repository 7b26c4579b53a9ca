"""Every multi-key script and transaction stays in one Cluster slot; cluster URLs parse."""

from __future__ import annotations

import dataclasses

import pytest
from redis.crc import key_slot

from chat.keys import RoomKeys
from flashsale.coupons import CouponKeys
from flashsale.group import GroupKeys
from flashsale.keys import SaleKeys
from flashsale.lot import LotKeys
from inventory.redisclient import cluster_seeds, is_cluster_url


def _strings(obj: object) -> list[str]:
    out: list[str] = []
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        value = getattr(obj, f.name)
        out += _strings(value) if dataclasses.is_dataclass(value) else [value]
    return out


@pytest.mark.parametrize("ident", [1, 7, 12345, 99999999])
def test_each_sale_and_room_lives_in_one_slot(ident: int) -> None:
    sale_keys = [
        *_strings(SaleKeys.of("ls", ident)),
        *_strings(GroupKeys.of("ls", ident)),
        *_strings(CouponKeys.of("ls", ident)),
        *_strings(LotKeys.of("ls", ident)),
        f"ls:{{s{ident}}}:draw",  # flashsale/draw.py
        f"ls:{{s{ident}}}:entries",
        f"ls:{{s{ident}}}:entrants",
    ]
    assert len({key_slot(k.encode()) for k in sale_keys}) == 1
    room = RoomKeys.of("ls", f"st{ident}")
    # The channel too: SPUBLISH inside a room script must stay in the script's slot.
    room_keys = [*_strings(room), room.bucket("alice")]
    assert len({key_slot(k.encode()) for k in room_keys}) == 1


def test_different_sales_spread_over_slots() -> None:
    slots = {key_slot(SaleKeys.of("ls", i).meta.encode()) for i in range(1, 50)}
    assert len(slots) == 49


def test_cluster_urls() -> None:
    url = "redis+cluster://10.0.0.1:7000, 10.0.0.2:7001,[::1]:7002"
    assert is_cluster_url(url) and is_cluster_url("rediss+cluster://h:1")
    assert not is_cluster_url("redis://127.0.0.1:6379/0")
    assert cluster_seeds(url) == [("10.0.0.1", 7000), ("10.0.0.2", 7001), ("::1", 7002)]
    assert cluster_seeds("redis+cluster://u:pw@h:1,g:2") == [("h", 1), ("g", 2)]
    with pytest.raises(ValueError):
        cluster_seeds("redis+cluster://h")
