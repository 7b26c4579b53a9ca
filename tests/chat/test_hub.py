"""The Hub with real Redis and in-memory transports: fan-out, order, replay, slow consumers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from chat.hub import Hub
from chat.member import Identity
from chat.protocol import CLOSE_TOO_SLOW, decode
from tests.chat.conftest import FAST
from tests.chat.helpers import FakeConnection, frame

ALICE = Identity("alice", "Alice", "viewer")
HOST = Identity("hostess", "Hostess", "host")


def chats(evs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The chat events."""
    return [e for e in evs if e["type"] == "chat"]


async def test_join_gets_snapshot_first(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    conn = FakeConnection()
    await hub.join("show", conn, None)
    snap = decode(conn.frames[0].payload)
    assert snap["type"] == "snapshot"
    assert snap["seq"] == 0
    assert snap["stream"] == {
        "id": "show", "title": "Show", "host_id": "hostess", "status": "live", "rehearsal": False
    }  # fmt: skip
    assert snap["you"] == {"role": "anonymous"}
    assert snap["messages"] == [] and snap["pinned"] is None and snap["sale"] is None


async def test_unknown_room_is_refused(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    try:
        await hub.join("nope", FakeConnection(), None)
    except Exception as exc:
        assert getattr(exc, "code", "") == "stream_not_found"
    else:
        raise AssertionError("joined a room that does not exist")


async def test_fanout_shares_one_frame_and_batches(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    viewers = [FakeConnection() for _ in range(50)]
    for c in viewers:
        await hub.join("show", c, None)
    sender_conn = FakeConnection()
    sender = await hub.join("show", sender_conn, HOST)  # the host is not rate limited
    for i in range(20):
        await hub.receive(sender, frame("chat", text=f"hello {i}"))
    await viewers[0].wait_for(lambda e: len(chats(e)) == 20)
    await viewers[-1].wait_for(lambda e: len(chats(e)) == 20)
    texts = [e["text"] for e in chats(viewers[0].events())]
    assert texts == [f"hello {i}" for i in range(20)]
    seqs = [e["seq"] for e in chats(viewers[0].events())]
    assert seqs == list(range(1, 21))
    # 20 messages sent back to back travel in far fewer frames than messages...
    live_frames = viewers[0].frames[1:]
    assert len(live_frames) < 20
    # ...and every viewer got the very same frame objects (encoded once, not per client).
    for c in viewers[1:]:
        assert all(a is b for a, b in zip(c.frames[1:], live_frames, strict=True))
    assert chats(viewers[0].events())[0]["role"] == "host"
    assert chats(viewers[0].events())[0]["name"] == "Hostess"


async def test_two_processes_share_rooms_in_order(make_hub: Callable[..., Any]) -> None:
    a: Hub = await make_hub()
    b: Hub = await make_hub()
    on_a, on_b = FakeConnection(), FakeConnection()
    await a.join("show", on_a, None)
    await b.join("show", on_b, None)
    sa = await a.join("show", FakeConnection(), HOST)
    sb = await b.join("show", FakeConnection(), Identity("bob", "Bob", "admin"))
    for i in range(10):
        await a.receive(sa, frame("chat", text=f"a{i}"))
        await b.receive(sb, frame("chat", text=f"b{i}"))
    for c in (on_a, on_b):
        await c.wait_for(lambda e: len(chats(e)) == 20)
    got_a = [(e["seq"], e["text"]) for e in chats(on_a.events())]
    got_b = [(e["seq"], e["text"]) for e in chats(on_b.events())]
    assert got_a == got_b
    assert [s for s, _ in got_a] == list(range(1, 21))


async def test_reconnect_with_since_replays_missed(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    first = FakeConnection()
    m = await hub.join("show", first, None)
    host = await hub.join("show", FakeConnection(), HOST)
    for i in range(5):
        await hub.receive(host, frame("chat", text=f"m{i}"))
    await first.wait_for(lambda e: len(chats(e)) == 5)
    last = chats(first.events())[-1]["seq"]
    hub.leave(m)
    for i in range(5, 12):
        await hub.receive(host, frame("chat", text=f"m{i}"))
    again = FakeConnection()
    await hub.join("show", again, None, since=last)
    evs = again.events()
    assert evs[0]["type"] == "resumed" and evs[0]["since"] == last
    assert [e["text"] for e in chats(evs)] == [f"m{i}" for i in range(5, 12)]
    await hub.receive(host, frame("chat", text="live"))
    evs = await again.wait_for(lambda e: len(chats(e)) == 8)
    seqs = [e["seq"] for e in chats(evs)]
    assert seqs == sorted(set(seqs)), "no duplicates, in order"


async def test_snapshot_and_resumed_carry_redis_time_for_countdowns(
    make_hub: Callable[..., Any], redis: Any
) -> None:
    async def redis_ms() -> int:
        sec, usec = await redis.time()
        return int(sec) * 1000 + int(usec) // 1000

    hub: Hub = await make_hub()
    conn = FakeConnection()
    before = await redis_ms()
    m = await hub.join("show", conn, None)
    snap = conn.events()[0]
    assert before <= snap["server_time_ms"] <= await redis_ms()
    host = await hub.join("show", FakeConnection(), HOST)
    await hub.receive(host, frame("chat", text="one"))
    await conn.wait_for(lambda e: len(chats(e)) == 1)
    hub.leave(m)
    await asyncio.sleep(0.3)  # away: replayed events are this much older than the return
    again = FakeConnection()
    before = await redis_ms()
    await hub.join("show", again, None, since=snap["seq"])
    resumed = again.events()[0]
    assert resumed["type"] == "resumed"
    assert before <= resumed["server_time_ms"] <= await redis_ms()
    assert resumed["server_time_ms"] - chats(again.events())[0]["at_ms"] >= 250


async def test_since_too_old_gets_fresh_snapshot(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    hub.log.max_events = 5  # keep a short stream so the client falls off its end
    host = await hub.join("show", FakeConnection(), HOST)
    for i in range(30):
        await hub.receive(host, frame("chat", text=f"m{i}"))
    conn = FakeConnection()
    await hub.join("show", conn, None, since=1)
    snap = conn.events()[0]
    assert snap["type"] == "snapshot" and snap["resync"] is True
    assert snap["seq"] == 30
    assert [m["text"] for m in snap["messages"]] == [f"m{i}" for i in range(30)][-30:][-50:]
    conn2 = FakeConnection()
    await hub.join("show", conn2, None, since=999)  # ahead of the room: also a snapshot
    assert conn2.events()[0]["type"] == "snapshot"


async def test_history_keeps_last_50(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    host = await hub.join("show", FakeConnection(), HOST)
    for i in range(60):
        await hub.receive(host, frame("chat", text=f"m{i}"))
    conn = FakeConnection()
    await hub.join("show", conn, None)
    msgs = conn.events()[0]["messages"]
    assert [m["text"] for m in msgs] == [f"m{i}" for i in range(10, 60)]


async def test_slow_consumer_does_not_delay_others(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    fast = FakeConnection()
    slow = FakeConnection()
    await hub.join("show", fast, None)
    await hub.join("show", slow, None)
    host = await hub.join("show", FakeConnection(), HOST)
    slow.backlog = 10 << 20  # the client stopped reading: its buffer is over the limit
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    for i in range(5):
        await hub.receive(host, frame("chat", text=f"m{i}"))
    await fast.wait_for(lambda e: len(chats(e)) == 5)
    assert loop.time() - t0 < 1.0
    assert len(chats(slow.events())) == 0  # nothing was queued for it beyond the limit
    # It drains: the hub resyncs it with a fresh snapshot, then it is live again.
    slow.backlog = 0
    await slow.wait_for(lambda e: any(x.get("resync") for x in e if x["type"] == "snapshot"))
    snap = [e for e in slow.events() if e["type"] == "snapshot"][-1]
    assert [m["text"] for m in snap["messages"]] == [f"m{i}" for i in range(5)]
    await hub.receive(host, frame("chat", text="after"))
    await slow.wait_for(lambda e: any(x.get("text") == "after" for x in e))


async def test_slow_consumer_that_never_drains_is_dropped(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    slow = FakeConnection()
    await hub.join("show", slow, None)
    host = await hub.join("show", FakeConnection(), HOST)
    slow.backlog = 10 << 20
    await hub.receive(host, frame("chat", text="x"))
    for _ in range(60):
        if slow.closed:
            break
        await asyncio.sleep(0.05)
    assert slow.closed is not None and slow.closed[0] == CLOSE_TOO_SLOW
    assert FAST.lag_timeout_s < 3


async def test_sale_events_become_throttled_stock_events(
    make_hub: Callable[..., Any], redis: Any, prefix: str
) -> None:
    from flashsale.events import SaleEvent
    from flashsale.keys import SaleKeys

    hub: Hub = await make_hub()
    watcher = FakeConnection()
    await hub.join("show", watcher, None)
    meta = SaleKeys.of(prefix, 42).meta
    await redis.hset(meta, mapping={"remaining": 100})
    hub.feed.sale_event(SaleEvent("opened", 42, "show", 100, 1))
    hub.feed.sale_event(SaleEvent("reserved", 7, None, 1, 1))  # not in a room: ignored
    for i in range(100):
        await redis.hset(meta, mapping={"remaining": 99 - i})
        name = "Zoe" if i == 0 else None
        hub.feed.sale_event(
            SaleEvent("reserved", 42, "show", 99 - i, 2, f"42-{i}", f"u{i}", 1, name)
        )
        if i % 10 == 0:
            await asyncio.sleep(0.01)
    hub.feed.sale_event(SaleEvent("sold_out", 42, "show", 0, 3))
    # (Sale phase events come from the sale's state in Redis: tests/chat/test_sale_events.py.)
    evs = await watcher.wait_for(
        lambda e: any(x["type"] == "stock" and x["remaining"] == 0 for x in e)
    )
    stock = [e for e in evs if e["type"] == "stock"]
    assert len(stock) < 20, "100 purchases, a handful of stock frames"
    assert sum(e["bought"] for e in stock) == 100
    buyers = [b for e in stock for b in e["buyers"]]
    assert buyers[0] == "Zoe" and set(buyers[1:]) == {None}
    assert not any("u1" in str(e) for e in stock), "buyers' user ids are never shown"


async def test_idle_room_is_dropped_then_rejoined(make_hub: Callable[..., Any]) -> None:
    import dataclasses

    hub: Hub = await make_hub(dataclasses.replace(FAST, idle_room_s=0.1))
    conn = FakeConnection()
    m = await hub.join("show", conn, None)
    hub.leave(m)
    for _ in range(100):
        if hub.stats()["rooms"] == 0:
            break
        await asyncio.sleep(0.05)
    assert hub.stats()["rooms"] == 0, "the idle room was dropped and unsubscribed"
    # Joining again subscribes again: live events flow.
    again = FakeConnection()
    await hub.join("show", again, None)
    host = await hub.join("show", FakeConnection(), HOST)
    await hub.receive(host, frame("chat", text="back"))
    await again.wait_for(lambda e: any(x.get("text") == "back" for x in e))


async def test_going_live_keeps_the_viewer_count_moving(
    make_hub: Callable[..., Any], redis: Any
) -> None:
    # Going live PERSISTs the room's keys; the presence gate (a short lock) must keep its TTL,
    # or no process ever publishes the count again.
    hub: Hub = await make_hub()
    first = FakeConnection()
    await hub.join("show", first, None)
    await first.wait_for(lambda evs: any(e["type"] == "viewers" for e in evs))
    await hub.stream_status("show", "live")  # right after a count: the gate is held
    assert await redis.pttl(hub.keys("show").viewers_gate) != -1
    await hub.join("show", FakeConnection(), None)
    await first.wait_for(lambda evs: any(e == {"type": "viewers", "count": 2} for e in evs))
