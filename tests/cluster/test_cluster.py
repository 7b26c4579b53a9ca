"""livesell on a real Redis Cluster (3 primaries + 3 replicas on loopback), through a failover.

Two app instances share one room over sharded pub/sub and sell several flash sales whose keys
live on different primaries; then the primary holding the room and one sale fails over to its
replica mid-sale. Buys resume, viewers on both servers keep chatting, and every audit passes.
Skipped only when no redis-server binary can be found.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from chat.keys import RoomKeys
from chat.shardsubs import ShardSubscriptions
from flashsale.keys import SaleKeys
from inventory.redisclient import close as close_redis
from inventory.redisclient import connect as connect_redis
from tests.chat.test_room_ws import Socket, connect, make_stream, token
from tests.chat.test_subscriptions import Recorder
from tests.cluster.localcluster import LocalCluster
from tests.conftest import TEST_SECRET
from tests.flashsale.helpers import buy, make_sale
from web.app import create_app
from web.auth import TokenSigner
from web.keys import ROOM_HUB
from web.redisproc import find_redis_server
from web.settings import Settings

Auth = Callable[..., dict[str, str]]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """A 3-primary, 3-replica cluster of our own for this module."""
    try:
        find_redis_server()
    except FileNotFoundError as exc:
        pytest.skip(f"no redis-server binary to build a cluster with: {exc}")
    c = LocalCluster(tmp_path_factory.mktemp("cluster"))
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture
def cluster_settings(tmp_path: Path, cluster: LocalCluster) -> Settings:
    """Settings of an app on the cluster (its own key prefix and SQLite file)."""
    return Settings(
        redis_url=cluster.url,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'livesell.db'}",
        secret=TEST_SECRET,
        data_dir=tmp_path,
        redis_prefix=f"t{uuid.uuid4().hex[:8]}",
        reaper_interval_s=0.1,
        persister="inprocess",
        persister_interval_s=0.02,
        persister_claim_idle_ms=1000,
    )


@pytest.fixture
async def two_apps(cluster_settings: Settings) -> AsyncIterator[tuple[TestClient, TestClient]]:
    """Two app instances (two servers with their own Redis clients) on one cluster."""
    apps = [TestClient(TestServer(create_app(cluster_settings))) for _ in range(2)]
    for app in apps:
        await app.start_server()
    try:
        yield apps[0], apps[1]
    finally:
        for app in apps:
            await app.close()


@dataclasses.dataclass
class Room:
    """A stream's room with a viewer on each server, and the primary that owns its channel."""

    sid: str
    prefix: str
    owner: int
    viewers: tuple[Socket, Socket]


@pytest.fixture
async def room(
    cluster: LocalCluster,
    cluster_settings: Settings,
    two_apps: tuple[TestClient, TestClient],
    auth: Auth,
    signer: TokenSigner,
) -> Room:
    """A room watched on both servers, each viewer on a real websocket."""
    a, b = two_apps
    sid = await make_stream(a, auth)
    on_a = await connect(a, f"/ws/rooms/{sid}?token={token(signer, 'va')}")
    on_b = await connect(b, f"/ws/rooms/{sid}?token={token(signer, 'vb')}")
    owner = cluster.owner(RoomKeys.of(cluster_settings.redis_prefix, sid).channel)
    return Room(sid, cluster_settings.redis_prefix, owner, (on_a, on_b))


def chat_text(text: str) -> Callable[[dict[str, Any]], bool]:
    """Matches the chat event with ``text``."""
    return lambda e: e["type"] == "chat" and e.get("text") == text


async def audit_ok(client: TestClient, auth: Auth, sale_id: int) -> dict[str, Any]:
    """Run the sale's audit through the API; assert it passes."""
    r = await client.get(f"/api/sales/{sale_id}/audit", headers=auth("admin", "ops"))
    report = await r.json()
    assert r.status == 200 and report["ok"], (
        report["problems"],
        report["figures"],
        report["checks"],
    )
    return dict(report["figures"])


async def rush(
    apps: tuple[TestClient, TestClient], auth: Auth, sale_id: int, buyers: list[str]
) -> Counter[int]:
    """Every buyer buys once, alternating servers; retried while Redis answers 503."""

    async def one(i: int, user: str) -> int:
        for _ in range(100):
            status, _ = await buy(apps[i % 2], auth, sale_id, user, f"k-{user}")
            if status != 503:  # 503: the slot's primary is changing; the same key retries
                return status
            await asyncio.sleep(0.1)
        return 503

    return Counter(await asyncio.gather(*[one(i, u) for i, u in enumerate(buyers)]))


async def test_sales_and_a_room_on_a_cluster_survive_a_failover(
    cluster: LocalCluster,
    two_apps: tuple[TestClient, TestClient],
    room: Room,
    auth: Auth,
    signer: TokenSigner,
) -> None:
    a, b = two_apps
    sid, prefix, room_owner, viewers = room.sid, room.prefix, room.owner, room.viewers
    on_a, on_b = viewers
    host = await connect(a, f"/ws/rooms/{sid}?token={token(signer, 'hostess', 'host')}")

    # Sales until every primary holds one's keys (sale ids are sequential, slots are not).
    sales: dict[int, dict[str, Any]] = {}
    while len(set(sales)) < 3:
        sale = await make_sale(a, auth, quantity=6, limit=1, open_now=False, stream_id=sid)
        owner = cluster.owner(SaleKeys.of(prefix, sale["id"]).meta)
        keys = SaleKeys.of(prefix, sale["id"]).for_buy()
        assert len({cluster.owner(k) for k in keys}) == 1, "a sale's keys share one slot"
        sales.setdefault(owner, sale)
        assert len(sales) < 3 or len(sales) == len(set(sales))
        assert sale["id"] < 40, "sales should have spread over the primaries by now"
    assert set(sales) == set(cluster.ports[:3]), "one sale's keys on each primary"
    doomed_sale = sales[room_owner]  # on the primary that also carries the room

    # Every sale opens (announced in the room on both servers) and sells out exactly.
    for sale in sales.values():
        r = await b.post(f"/api/sales/{sale['id']}/open", headers=auth("admin", "ops"))
        assert r.status == 200
        for v in viewers:
            await v.until(
                lambda e, s=sale: e["type"] == "sale" and e["sale"]["id"] == s["id"], wait_s=10
            )
    for sale in sales.values():
        if sale is doomed_sale:
            continue
        got = await rush(two_apps, auth, sale["id"], [f"u{sale['id']}-{i}" for i in range(9)])
        assert got == Counter({201: 6, 409: 3})
        figures = await audit_ok(a, auth, sale["id"])
        assert figures["reserved"] == 6 and figures["remaining"] == 0

    # Chat crosses servers through the room's shard.
    await on_a.send("chat", text="from a")
    await on_b.send("chat", text="from b")
    for v in viewers:
        await v.until(chat_text("from a"), wait_s=10)
        await v.until(chat_text("from b"), wait_s=10)

    # Half the doomed sale sells, then its primary (and the room's) fails over mid-sale.
    got = await rush(two_apps, auth, doomed_sale["id"], [f"d{i}" for i in range(3)])
    assert got == Counter({201: 3})
    promoted = cluster.failover(room_owner)
    assert cluster.owner(SaleKeys.of(prefix, doomed_sale["id"]).meta) == promoted
    assert cluster.owner(RoomKeys.of(prefix, sid).channel) == promoted

    # Buys resume on the new primary: exactly the 3 units left, no more.
    got = await rush(two_apps, auth, doomed_sale["id"], [f"d{i}" for i in range(3, 9)])
    assert got == Counter({201: 3, 409: 3})
    figures = await audit_ok(b, auth, doomed_sale["id"])
    assert figures["reserved"] == 6 and figures["remaining"] == 0 and figures["orders"] == 6

    # Both servers re-subscribed the room on its new owner and resynced their viewers (as
    # after a Redis restart); then chat crosses servers again, live.
    for v in viewers:
        await v.until(lambda e: e["type"] in ("snapshot", "resumed"), wait_s=15)
    await host.send("chat", text="after the failover")
    await on_b.send("chat", text="b after")
    for v in viewers:
        await v.until(chat_text("after the failover"), wait_s=10)
        await v.until(chat_text("b after"), wait_s=10)
    for app in two_apps:
        subs = app.app[ROOM_HUB]._subs
        assert isinstance(subs, ShardSubscriptions)
        assert subs.links().get(f"127.0.0.1:{promoted}") == 1, subs.links()
    for sale in sales.values():
        await audit_ok(a, auth, sale["id"])


async def test_a_killed_primary_is_followed_by_its_replica(
    cluster: LocalCluster, two_apps: tuple[TestClient, TestClient], room: Room, auth: Auth
) -> None:
    a, b = two_apps
    sid, prefix, owner, (on_a, on_b) = room.sid, room.prefix, room.owner, room.viewers
    sale = await make_sale(a, auth, quantity=4, limit=1, stream_id=sid)
    while cluster.owner(SaleKeys.of(prefix, sale["id"]).meta) != owner:
        sale = await make_sale(a, auth, quantity=4, limit=1, stream_id=sid)
    assert await rush(two_apps, auth, sale["id"], ["k0", "k1"]) == Counter({201: 2})

    # The primary dies (its connections drop); its replica takes over after the node timeout.
    promoted = cluster.kill(owner)
    assert cluster.owner(RoomKeys.of(prefix, sid).channel) == promoted
    got = await rush(two_apps, auth, sale["id"], [f"k{i}" for i in range(2, 6)])
    assert got == Counter({201: 2, 409: 2})
    figures = await audit_ok(b, auth, sale["id"])
    assert figures["reserved"] == 4 and figures["remaining"] == 0
    for v in (on_a, on_b):
        await v.until(lambda e: e["type"] in ("snapshot", "resumed"), wait_s=15)
    await on_a.send("chat", text="still here")
    await on_b.until(chat_text("still here"), wait_s=10)


async def test_a_quiet_shard_link_is_kept_alive_by_pings(
    cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    import chat.shardsubs

    monkeypatch.setattr(chat.shardsubs, "PING_EVERY_S", 1)
    monkeypatch.setattr(chat.shardsubs, "LINK_SILENCE_S", 2)
    redis = connect_redis(cluster.url, 4)
    subs = ShardSubscriptions(redis)
    heard = Recorder()
    try:
        await subs.start()
        channel = f"q:{{r{uuid.uuid4().hex[:6]}}}:ch"
        await subs.subscribe(channel, heard)
        await asyncio.sleep(4)  # silent for longer than LINK_SILENCE_S, but answering PINGs
        assert heard.losses == 0 and sum(subs.links().values()) == 1
        await redis.execute_command("SPUBLISH", channel, b"hello")
        await asyncio.wait_for(heard.arrived.wait(), 5)
        assert heard.messages == [b"hello"]
    finally:
        await subs.close()
        await close_redis(redis)


async def test_a_rush_waits_for_the_cluster_pool_instead_of_failing(cluster: LocalCluster) -> None:
    redis = connect_redis(cluster.url, 4)  # 4 connections per node for 300 concurrent calls
    key = f"rush:{{{uuid.uuid4().hex[:6]}}}"
    try:
        await asyncio.gather(*[redis.incr(key) for _ in range(300)])
        async with redis.pipeline(transaction=False) as p:
            p.get(key)
            p.time()
            count, _ = await p.execute()
        assert int(count) == 300
        await redis.delete(key)
    finally:
        await close_redis(redis)


async def test_a_revocation_reaches_the_other_server_on_a_cluster(
    two_apps: tuple[TestClient, TestClient], auth: Auth
) -> None:
    """Revocations are published on the cluster and heard by every server's follower."""
    from tests.web.test_revocation import status_of, until_refused
    from web.auth import Role

    one, two = two_apps
    signer = TokenSigner(TEST_SECRET)
    doomed = signer.mint("alice", Role.VIEWER)
    assert await status_of(two, doomed) == (200, "")
    r = await one.post(
        "/api/admin/revocations", json={"token": doomed}, headers=auth("admin", "ops")
    )
    assert r.status == 201, await r.text()
    assert await until_refused(two, doomed) == (401, "token_revoked")
