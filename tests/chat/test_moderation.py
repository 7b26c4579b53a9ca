"""Moderation paths, rate limits, abuse handling and reactions, through the Hub and real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chat.hub import Hub
from chat.member import Identity, RoomLimits
from chat.protocol import CLOSE_ABUSE, CLOSE_BANNED, CLOSE_UNAUTHORIZED, decode
from tests.chat.conftest import FAST
from tests.chat.helpers import FakeConnection, answered, frame

HOST = Identity("hostess", "Hostess", "host")
ALICE = Identity("alice", "Alice", "viewer")
BOB = Identity("bob", "Bob", "viewer")


def errors(conn: FakeConnection) -> list[str]:
    """Error codes a client got."""
    return [e["code"] for e in conn.of_type("error")]


async def setup(make_hub: Callable[..., Any], limits: RoomLimits = FAST) -> Any:
    hub: Hub = await make_hub(limits)
    watcher = FakeConnection()
    await hub.join("show", watcher, None)
    host_conn = FakeConnection()
    host = await hub.join("show", host_conn, HOST)
    return hub, watcher, host, host_conn


async def test_anonymous_cannot_chat_or_buy(make_hub: Callable[..., Any]) -> None:
    hub, watcher, *_ = await setup(make_hub)
    conn = FakeConnection()
    anon = await hub.join("show", conn, None)
    await hub.receive(anon, frame("chat", text="hi", ref=1))
    await hub.receive(anon, frame("buy", sale_id=1, key="k1"))
    await answered(anon)
    assert errors(conn) == ["unauthorized", "unauthorized"]
    assert conn.of_type("error")[0]["ref"] == 1
    # An auth event upgrades the same socket.
    await hub.receive(anon, frame("auth", token="carol:viewer:Carol"))
    assert conn.of_type("auth_ok")[0]["role"] == "viewer"
    await hub.receive(anon, frame("chat", text="now I can", ref="r2"))
    assert conn.of_type("ack")[0]["ref"] == "r2"
    await watcher.wait_for(lambda e: any(x.get("text") == "now I can" for x in e))


async def test_bad_token_closes_4001(make_hub: Callable[..., Any]) -> None:
    hub, *_ = await setup(make_hub)
    conn = FakeConnection()
    m = await hub.join("show", conn, None)
    await hub.receive(m, frame("auth", token="garbage"))
    assert errors(conn) == ["unauthorized"]
    assert conn.closed is not None and conn.closed[0] == CLOSE_UNAUTHORIZED


async def test_viewer_cannot_moderate_until_promoted(make_hub: Callable[..., Any]) -> None:
    hub, watcher, host, _host_conn = await setup(make_hub)
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    for ev in (
        frame("pin", product_id=1),
        frame("mute", user_id="bob"),
        frame("promote", user_id="bob"),
    ):
        await hub.receive(alice, ev)
    assert errors(conn) == ["forbidden", "forbidden", "forbidden"]
    await hub.receive(host, frame("promote", user_id="alice"))
    await hub.receive(alice, frame("pin", product_id=1, ref="p"))
    assert conn.of_type("ack")[-1]["ref"] == "p"
    await hub.receive(alice, frame("promote", user_id="bob"))  # host only, even for moderators
    assert errors(conn)[-1] == "forbidden"
    await hub.receive(alice, frame("mute", user_id="hostess"))  # nobody moderates the host
    assert errors(conn)[-1] == "forbidden"
    evs = await watcher.wait_for(lambda e: any(x["type"] == "pinned" for x in e))
    pinned = next(e for e in evs if e["type"] == "pinned")
    assert pinned["product"]["name"] == "Red scarf" and pinned["product"]["price_cents"] == 1999
    assert pinned["product"]["description"] == "<b>warm</b>"  # stored as text, sent verbatim
    mod = next(e for e in evs if e["type"] == "moderation")
    assert mod["action"] == "promote" and mod["user_id"] == "alice"
    # A fresh join sees the pin, and the moderator's own snapshot says so.
    again = FakeConnection()
    await hub.join("show", again, ALICE)
    snap = again.events()[0]
    assert snap["pinned"]["id"] == 1 and snap["you"]["role"] == "moderator"
    await hub.receive(alice, frame("chat", text="mod here"))
    await watcher.wait_for(lambda e: any(x.get("role") == "moderator" for x in e))


async def test_muted_user_cannot_post_until_unmuted(make_hub: Callable[..., Any]) -> None:
    hub, watcher, host, _ = await setup(make_hub)
    conn = FakeConnection()
    bob = await hub.join("show", conn, BOB)
    await hub.receive(host, frame("mute", user_id="bob", seconds=60))
    await hub.receive(bob, frame("chat", text="let me talk"))
    err = conn.of_type("error")[-1]
    assert err["code"] == "muted" and err["until_ms"] > 0
    # A second process agrees: the mute lives in Redis, not in this process.
    other: Hub = await make_hub()
    conn2 = FakeConnection()
    bob2 = await other.join("show", conn2, BOB)
    assert conn2.events()[0]["you"]["muted_until"] == err["until_ms"]
    await other.receive(bob2, frame("chat", text="from elsewhere"))
    assert errors(conn2) == ["muted"]
    await hub.receive(host, frame("unmute", user_id="bob"))
    await hub.receive(bob, frame("chat", text="thanks"))
    await watcher.wait_for(lambda e: any(x.get("text") == "thanks" for x in e))
    assert not any(e.get("text") in ("let me talk", "from elsewhere") for e in watcher.events())


async def test_ban_kicks_everywhere_and_blocks_rejoin(make_hub: Callable[..., Any]) -> None:
    hub, watcher, host, _ = await setup(make_hub)
    other: Hub = await make_hub()
    here, there = FakeConnection(), FakeConnection()
    await hub.join("show", here, BOB)
    await other.join("show", there, BOB)
    await hub.receive(host, frame("ban", user_id="bob"))
    for _ in range(100):
        if here.closed and there.closed:
            break
        await asyncio.sleep(0.02)
    assert here.closed and here.closed[0] == CLOSE_BANNED
    assert there.closed and there.closed[0] == CLOSE_BANNED
    try:
        await hub.join("show", FakeConnection(), BOB)
    except Exception as exc:
        assert getattr(exc, "code", "") == "banned"
    else:
        raise AssertionError("a banned user joined")
    await hub.receive(host, frame("unban", user_id="bob"))
    again = FakeConnection()
    m = await hub.join("show", again, BOB)
    await hub.receive(m, frame("chat", text="I am back"))
    await watcher.wait_for(lambda e: any(x.get("text") == "I am back" for x in e))


async def test_delete_is_broadcast_and_removed_from_history(make_hub: Callable[..., Any]) -> None:
    hub, watcher, host, host_conn = await setup(make_hub)
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    await hub.receive(alice, frame("chat", text="spam spam", ref="a"))
    seq = conn.of_type("ack")[0]["seq"]
    await hub.receive(host, frame("delete", seq=seq))
    await watcher.wait_for(lambda e: any(x["type"] == "deleted" and x["target"] == seq for x in e))
    fresh = FakeConnection()
    await hub.join("show", fresh, None)
    assert fresh.events()[0]["messages"] == []
    await hub.receive(host, frame("delete", seq=9999))
    assert errors(host_conn) == ["message_not_found"]


async def test_rate_limit_holds(make_hub: Callable[..., Any]) -> None:
    hub, watcher, *_ = await setup(make_hub)
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    for i in range(25):
        await hub.receive(alice, frame("chat", text=f"m{i}"))
    accepted = FAST.chat_burst
    assert errors(conn).count("rate_limited") >= 25 - accepted - 1
    rejected = conn.of_type("error")[0]
    assert rejected["retry_after_ms"] > 0
    await watcher.wait_for(lambda e: len([x for x in e if x["type"] == "chat"]) >= accepted)
    await asyncio.sleep(0.1)
    assert len(watcher.of_type("chat")) <= accepted + 1


async def test_slow_mode_and_banned_words(make_hub: Callable[..., Any]) -> None:
    hub, watcher, host, _ = await setup(make_hub)
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    await hub.receive(host, frame("slow_mode", seconds=30))
    await hub.receive(alice, frame("chat", text="one"))
    await hub.receive(alice, frame("chat", text="two"))
    assert errors(conn) == ["slow_mode"]
    await hub.receive(host, frame("chat", text="host is exempt"))
    await hub.receive(host, frame("chat", text="still exempt"))
    await hub.receive(host, frame("slow_mode", seconds=0))
    await hub.receive(host, frame("banned_words", words=["Scam", "buy now"]))
    await watcher.wait_for(lambda e: any(x.get("text") == "still exempt" for x in e))
    await asyncio.sleep(0.1)  # the word list reaches every hub on an internal event
    await hub.receive(alice, frame("chat", text="this is a SCAM!"))
    await hub.receive(alice, frame("chat", text="scampi is fine"))
    assert errors(conn) == ["slow_mode", "banned_word"]
    assert not any(e["type"] == "_words" for e in watcher.events())
    await watcher.wait_for(lambda e: any(x.get("text") == "scampi is fine" for x in e))


async def test_bad_frames_get_errors_then_close_4008(make_hub: Callable[..., Any]) -> None:
    hub, *_ = await setup(make_hub)
    conn = FakeConnection()
    m = await hub.join("show", conn, ALICE)
    bad = [
        b"\xc1",  # never valid msgpack
        b'{"type": "chat"}',  # JSON is not the protocol
        frame("nope"),
        frame("chat", text=""),
        frame("chat", text="x" * 501),
        frame("chat", text=5),
        frame("react", kind="poop"),
        frame("mute", user_id="a b"),
        frame("buy", sale_id="1", key="k"),
    ]
    for data in bad:
        await hub.receive(m, data)
    codes = errors(conn)
    assert codes[:4] == ["bad_frame"] * 4 and codes[4] == "too_long"
    assert all(e["message"] and "Traceback" not in e["message"] for e in conn.of_type("error"))
    assert conn.closed is None
    await hub.receive(m, b"\x00")
    assert conn.closed is not None and conn.closed[0] == CLOSE_ABUSE


async def test_reactions_are_aggregated(make_hub: Callable[..., Any]) -> None:
    hub, watcher, *_ = await setup(make_hub)
    conns = [FakeConnection() for _ in range(5)]
    members = [await hub.join("show", c, None) for c in conns]
    for m in members:
        for _ in range(4):
            await hub.receive(m, frame("react", kind="heart", count=2))
    evs = await watcher.wait_for(
        lambda e: sum(x["delta"].get("heart", 0) for x in e if x["type"] == "reactions") == 40
    )
    frames = [e for e in evs if e["type"] == "reactions"]
    assert len(frames) <= 2, "aggregated, never one frame per like"
    assert frames[-1]["totals"]["heart"] == 40
    late = FakeConnection()
    await hub.join("show", late, None)
    assert late.events()[0]["reactions"] == {"heart": 40}


async def test_viewer_count_across_processes(make_hub: Callable[..., Any]) -> None:
    a: Hub = await make_hub()
    b: Hub = await make_hub()
    ca = [FakeConnection() for _ in range(3)]
    cb = [FakeConnection() for _ in range(4)]
    for c in ca:
        await a.join("show", c, None)
    for c in cb:
        await b.join("show", c, None)
    evs = await ca[0].wait_for(lambda e: any(x["type"] == "viewers" and x["count"] == 7 for x in e))
    assert evs
    await cb[0].wait_for(lambda e: any(x["type"] == "viewers" and x["count"] == 7 for x in e))


async def test_announcement_and_stream_status(make_hub: Callable[..., Any]) -> None:
    hub, watcher, host, _ = await setup(make_hub)
    await hub.receive(host, frame("announce", text="<script>alert(1)</script> 20% off"))
    await hub.stream_status("show", "ended")
    evs = await watcher.wait_for(lambda e: any(x["type"] == "stream" for x in e))
    ann = next(e for e in evs if e["type"] == "announcement")
    assert ann["text"] == "<script>alert(1)</script> 20% off"
    fresh = FakeConnection()
    await hub.join("show", fresh, None)
    snap = decode(fresh.frames[0].payload)
    assert snap["stream"]["status"] == "ended"
    assert snap["announcement"]["text"].startswith("<script>")


async def test_banned_words_match_after_unicode_normalisation(
    make_hub: Callable[..., Any],
) -> None:
    hub, watcher, host, _ = await setup(make_hub)
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    await hub.receive(host, frame("banned_words", words=["Spoiler  Alert", "scam"]))
    await asyncio.sleep(0.1)  # the word list reaches every hub on an internal event
    caught = [
        "spoiler   alert",
        "spoiler\u00a0alert",  # a no-break space
        "SPOILER\talert!",
        "\uff33\uff30\uff2f\uff29\uff2c\uff25\uff32 alert",  # full-width letters (NFKC)
        "a \U0001d42c\U0001d41c\U0001d41a\U0001d426 here",  # mathematical bold "scam"
        "spoiler\u200b alert",  # a zero-width space is dropped, the space stays
    ]
    for i, text in enumerate(caught):
        await hub.receive(alice, frame("chat", text=text, ref=i))
    await hub.receive(alice, frame("chat", text="spoilers alerted nobody", ref="ok"))
    assert [(e["code"], e["ref"]) for e in conn.of_type("error")] == [
        ("banned_word", i) for i in range(len(caught))
    ]
    await watcher.wait_for(lambda e: any(x.get("text") == "spoilers alerted nobody" for x in e))


async def test_slow_mode_counts_only_posts_after_it_was_switched_on(
    make_hub: Callable[..., Any],
) -> None:
    hub, watcher, host, _ = await setup(make_hub)
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    await hub.receive(alice, frame("chat", text="before"))
    await hub.receive(host, frame("slow_mode", seconds=30))
    await hub.receive(alice, frame("chat", text="first since slow mode", ref="a"))
    await hub.receive(alice, frame("chat", text="too soon", ref="b"))
    assert [(e["code"], e["ref"]) for e in conn.of_type("error")] == [("slow_mode", "b")]
    await watcher.wait_for(lambda e: any(x.get("text") == "first since slow mode" for x in e))


async def test_changing_the_slow_mode_interval_keeps_its_start(
    make_hub: Callable[..., Any],
) -> None:
    hub, _, host, _ = await setup(make_hub)
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    await hub.receive(host, frame("slow_mode", seconds=60))
    await hub.receive(alice, frame("chat", text="one", ref=1))
    await hub.receive(host, frame("slow_mode", seconds=120))  # stricter, still on
    await hub.receive(alice, frame("chat", text="two", ref=2))
    assert [(e["code"], e["ref"]) for e in conn.of_type("error")] == [("slow_mode", 2)]
    await hub.receive(host, frame("slow_mode", seconds=0))
    await hub.receive(host, frame("slow_mode", seconds=60))  # off, then on: counts afresh
    await hub.receive(alice, frame("chat", text="three", ref=3))
    assert [e["ref"] for e in conn.of_type("ack")] == [1, 3]


async def test_nobody_moderates_an_admin_who_acts_as_host(make_hub: Callable[..., Any]) -> None:
    hub, _, host, _ = await setup(make_hub)
    admin, mo = Identity("ops", "Ops", "admin"), Identity("mo", "Mo", "viewer")
    await hub.receive(host, frame("promote", user_id="mo"))
    # A ban made before the room ever saw the admin: it does not keep them out or silent.
    await hub.receive(host, frame("ban", user_id="ops"))
    mconn, aconn = FakeConnection(), FakeConnection()
    mod = await hub.join("show", mconn, mo)
    ops = await hub.join("show", aconn, admin)
    await hub.receive(ops, frame("chat", text="still here", ref="c"))
    assert [e["ref"] for e in aconn.of_type("ack")] == ["c"]
    for i, action in enumerate(("ban", "mute")):
        await hub.receive(mod, frame(action, user_id="ops", ref=i))
    await asyncio.sleep(0.1)
    assert [(e["code"], e["ref"]) for e in mconn.of_type("error")] == [
        ("forbidden", 0),
        ("forbidden", 1),
    ]
    assert not aconn.closed and not mconn.of_type("ack")
    on_other = FakeConnection()  # another server process knows the admin too
    second: Hub = await make_hub()
    await second.receive(await second.join("show", on_other, mo), frame("ban", user_id="ops"))
    assert [e["code"] for e in on_other.of_type("error")] == ["forbidden"]


async def test_nobody_moderates_the_host_and_self_moderation_is_no_strike(
    make_hub: Callable[..., Any],
) -> None:
    hub, watcher, host, host_conn = await setup(make_hub, replace(FAST, max_strikes=3))
    await hub.receive(host, frame("promote", user_id="alice"))
    await hub.receive(host, frame("promote", user_id="bob"))
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    bob = await hub.join("show", FakeConnection(), BOB)
    await hub.receive(host, frame("chat", text="host speaking", ref="h"))
    await hub.receive(bob, frame("chat", text="bob speaking", ref="b"))
    await hub.receive(alice, frame("chat", text="alice speaking", ref="a"))
    host_seq = host_conn.of_type("ack")[-1]["seq"]
    evs = await watcher.wait_for(lambda e: len([x for x in e if x["type"] == "chat"]) == 3)
    seq_of = {x["text"]: x["seq"] for x in evs if x["type"] == "chat"}
    # Five self-moderations (more than max_strikes): refused, never a strike.
    for ev in (
        frame("mute", user_id="alice"),
        frame("ban", user_id="alice"),
        frame("demote", user_id="alice"),
        frame("unmute", user_id="alice"),
        frame("delete", seq=seq_of["alice speaking"]),
    ):
        await hub.receive(alice, ev)
    assert [e["code"] for e in conn.of_type("error")] == ["forbidden"] * 5
    assert conn.closed is None
    # The host's message cannot be deleted by a moderator; another moderator's only by the host.
    await hub.receive(alice, frame("delete", seq=host_seq, ref="dh"))
    await hub.receive(alice, frame("delete", seq=seq_of["bob speaking"], ref="db"))
    assert [(e["code"], e.get("ref")) for e in conn.of_type("error")[5:]] == [
        ("forbidden", "dh"),
        ("forbidden", "db"),
    ]
    await hub.receive(host, frame("delete", seq=seq_of["bob speaking"], ref="hb"))
    assert host_conn.of_type("ack")[-1]["ref"] == "hb"
    # Even the host does not moderate itself (or an admin acting as host in the room).
    await hub.receive(host, frame("delete", seq=host_seq, ref="self"))
    assert host_conn.of_type("error")[-1]["ref"] == "self"
    admin_conn = FakeConnection()
    admin = await hub.join("show", admin_conn, Identity("ops", "Ops", "admin"))
    await hub.receive(admin, frame("delete", seq=host_seq, ref="adm"))
    assert admin_conn.of_type("error")[-1]["code"] == "forbidden"
    assert [x["target"] for x in watcher.of_type("deleted")] in ([], [seq_of["bob speaking"]])
    await watcher.wait_for(
        lambda e: [x["target"] for x in e if x["type"] == "deleted"] == [seq_of["bob speaking"]]
    )
