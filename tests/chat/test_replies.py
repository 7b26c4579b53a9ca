"""Every reply echoes the client's ``ref``, errors included; ``auth_ok`` restates the standing."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from chat.hub import Hub
from chat.member import Identity
from chat.protocol import encode
from tests.chat.conftest import FAST
from tests.chat.helpers import FakeConnection, answered, frame

HOST = Identity("hostess", "Hostess", "host")
ALICE = Identity("alice", "Alice", "viewer")


async def test_every_kind_of_bad_frame_echoes_its_ref(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub(dataclasses.replace(FAST, max_strikes=1000))
    conn = FakeConnection()
    alice = await hub.join("show", conn, ALICE)
    bad: list[tuple[str, dict[str, Any], str]] = [
        ("nope", {}, "bad_frame"),  # unknown type
        ("chat", {"text": "y" * 501}, "too_long"),
        ("chat", {"text": " \t\n\u00a0 "}, "bad_frame"),  # whitespace only
        ("chat", {"text": "\u200b\u202e"}, "bad_frame"),  # only invisible characters
        ("chat", {}, "bad_frame"),  # field missing
        ("chat", {"text": 5}, "bad_frame"),  # wrong type
        ("react", {"kind": "poop"}, "bad_frame"),
        ("react", {"count": 51}, "bad_frame"),
        ("buy", {"sale_id": "1", "key": "k"}, "bad_frame"),
        ("buy", {"sale_id": 1, "key": "bad key"}, "bad_frame"),
        ("buy", {"sale_id": 1, "key": "k", "show_name": "yes"}, "bad_frame"),
        ("mute", {"user_id": "a b"}, "bad_frame"),
        ("slow_mode", {"seconds": -1}, "bad_frame"),
        ("banned_words", {"words": "spam"}, "bad_frame"),
        ("delete", {}, "bad_frame"),
        ("ping", {"t": "now"}, "bad_frame"),
        ("auth", {"token": ""}, "bad_frame"),
        ("pin", {"product_id": 1}, "forbidden"),
        ("promote", {"user_id": "bob"}, "forbidden"),
    ]
    for i, (kind, fields, _) in enumerate(bad):
        ref: str | int = f"r{i}" if i % 2 else i
        await hub.receive(alice, frame(kind, ref=ref, **fields))
    got = [(e["ref"], e["code"]) for e in conn.of_type("error")]
    assert got == [(f"r{i}" if i % 2 else i, code) for i, (_, _, code) in enumerate(bad)]
    # The type itself may be garbage: the ref still comes back.
    await hub.receive(alice, encode({"type": 7, "ref": "typeless"}))
    await hub.receive(alice, encode({"ref": "untyped"}))
    assert [e["ref"] for e in conn.of_type("error")[-2:]] == ["typeless", "untyped"]
    # Only a ref that is itself invalid (or a frame that is not a map) cannot be echoed.
    await hub.receive(alice, encode({"type": "chat", "text": "x", "ref": 1.5}))
    await hub.receive(alice, b"\xc1")
    assert [("ref" in e, e["code"]) for e in conn.of_type("error")[-2:]] == [
        (False, "bad_frame"),
        (False, "bad_frame"),
    ]


async def test_replies_and_rejections_echo_their_ref(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub(dataclasses.replace(FAST, frames_burst=3, frames_per_s=0.01))
    conn = FakeConnection()
    anon = await hub.join("show", conn, None)
    await hub.receive(anon, frame("ping", t=1, ref="p"))
    await hub.receive(anon, frame("chat", text="hi", ref="c"))
    await hub.receive(anon, frame("buy", sale_id=1, key="k", ref="b"))
    await hub.receive(anon, frame("ping", ref="over"))  # over the socket's frame budget
    await answered(anon)
    assert conn.of_type("pong")[0]["ref"] == "p"
    # The buy runs beside the frames after it: its answer may come after theirs.
    assert sorted((e["ref"], e["code"]) for e in conn.of_type("error")) == [
        ("b", "unauthorized"),
        ("c", "unauthorized"),
        ("over", "rate_limited"),
    ]
    bad_token = FakeConnection()
    m = await hub.join("show", bad_token, None)
    await hub.receive(m, frame("auth", token="garbage", ref="a1"))
    assert bad_token.of_type("error")[0]["ref"] == "a1"


async def test_auth_ok_restates_role_mute_and_ban(make_hub: Callable[..., Any]) -> None:
    hub: Hub = await make_hub()
    host = await hub.join("show", FakeConnection(), HOST)
    await hub.receive(host, frame("mute", user_id="alice", seconds=600))
    await hub.receive(host, frame("promote", user_id="mo"))
    replies = {}
    for token in ("alice:viewer:Alice", "mo:viewer", "carol:viewer", "ops:admin", "hostess:host"):
        conn = FakeConnection()
        m = await hub.join("show", conn, None)
        await hub.receive(m, frame("auth", token=token, ref=token))
        (ok,) = conn.of_type("auth_ok")
        assert ok["ref"] == token and ok["banned"] is False
        replies[token.split(":")[0]] = (ok["role"], ok["muted_until"] > 0)
    assert replies == {
        "alice": ("viewer", True),
        "mo": ("moderator", False),
        "carol": ("viewer", False),
        "ops": ("host", False),
        "hostess": ("host", False),
    }
    # A banned user gets the error with its ref and is closed (4003), never an auth_ok.
    await hub.receive(host, frame("ban", user_id="carol"))
    conn = FakeConnection()
    m = await hub.join("show", conn, None)
    await hub.receive(m, frame("auth", token="carol:viewer", ref="again"))
    assert conn.of_type("error")[0]["ref"] == "again" and not conn.of_type("auth_ok")
    assert conn.closed is not None and conn.closed[0] == 4003
