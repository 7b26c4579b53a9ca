"""Frame encoding and client-event validation, and that docs/protocol.md covers the code."""

from __future__ import annotations

import inspect
import struct
import unicodedata
from pathlib import Path
from typing import Any, get_args

import msgpack
import pytest

from chat import errors, protocol
from chat.errors import BadFrame, TooLong
from chat.moderation import WordFilter, normalize
from chat.protocol import (
    CLIENT_EVENTS,
    Frame,
    batch_payload,
    decode,
    encode,
    open_payload,
    parse_command,
    ws_binary_frame,
)
from flashsale.phases import Phase

DOC = (Path(__file__).resolve().parents[2] / "docs" / "protocol.md").read_text()


def test_open_payload_lets_fields_be_appended_without_reencoding() -> None:
    head = open_payload({"type": "chat", "text": "hi"}, 1)
    ev = decode(head + msgpack.packb("seq") + msgpack.packb(7))
    assert ev == {"type": "chat", "text": "hi", "seq": 7}


@pytest.mark.parametrize("n", [0, 1, 15, 16, 70000])
def test_batch_payload_is_a_valid_batch(n: int) -> None:
    events = [encode({"type": "chat", "seq": i}) for i in range(n)]
    msg = decode(batch_payload(events))
    assert msg["type"] == "batch" and [e["seq"] for e in msg["events"]] == list(range(n))


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536])
def test_ws_frame_header(size: int) -> None:
    payload = b"x" * size
    wire = ws_binary_frame(payload)
    assert wire[0] == 0x82 and wire.endswith(payload)
    if size < 126:
        assert wire[1] == size
    elif size < 65536:
        assert wire[1] == 126 and struct.unpack(">H", wire[2:4])[0] == size
    else:
        assert wire[1] == 127 and struct.unpack(">Q", wire[2:10])[0] == size
    assert Frame(payload).wire == wire


def test_text_is_cleaned_but_kept_as_text() -> None:
    cmd = parse_command(encode({"type": "chat", "text": "  <b>hi</b>\x00\u202e\nthere  "}))
    assert cmd["text"] == "<b>hi</b>\nthere"
    assert len(parse_command(encode({"type": "chat", "text": "é" * 500}))["text"]) == 500
    with pytest.raises(TooLong):
        parse_command(encode({"type": "chat", "text": "é" * 501}))
    with pytest.raises(BadFrame):
        parse_command(encode({"type": "chat", "text": "\x00\x01 "}))


INVISIBLE_SPLITS = {
    "soft hyphen": "sc\u00adam",
    "word joiner": "sc\u2060am",
    "combining grapheme joiner": "sc\u034fam",
    "Mongolian vowel separator": "sc\u180eam",
    "variation selector": "sc\ufe0fam",
    "tag character": "sc\U000e0061am",
    "zero-width no-break space": "sc\ufeffam",
    "Hangul filler as the space": "spoiler\u3164alert",
    "Braille blank as the space": "spoiler\u2800alert",
    "halfwidth filler as the space": "spoiler\uffa0alert",
}


def test_the_longest_banned_word_list_fits_in_one_frame() -> None:
    words = [f"{i:03d}" + "\U0001f600" * 47 for i in range(protocol.MAX_BANNED_WORDS)]
    frame = encode({"type": "banned_words", "words": words, "ref": "bw"})
    assert len(parse_command(frame)["words"]) == protocol.MAX_BANNED_WORDS
    big_chat = encode({"type": "chat", "text": "hi", "pad": "x" * 9000, "ref": "c"})
    with pytest.raises(BadFrame) as caught:
        parse_command(big_chat)
    assert caught.value.ref == "c"


@pytest.mark.parametrize("text", INVISIBLE_SPLITS.values(), ids=INVISIBLE_SPLITS.keys())
def test_invisible_characters_do_not_hide_a_banned_word(text: str) -> None:
    words = WordFilter(["spoiler alert", "scam"])
    with pytest.raises(errors.BannedWord):
        words.check(parse_command(encode({"type": "chat", "text": text}))["text"])
    with pytest.raises(errors.BannedWord):
        words.check(text)  # HTTP text that never went through clean_text


def test_every_format_character_is_invisible_and_blank_only_text_is_empty() -> None:
    fmt = [chr(c) for c in range(0x110000) if unicodedata.category(chr(c)) == "Cf"]
    assert all(normalize(f"a{c}b") == "ab" for c in fmt)
    for blank in ("\u3164\u2800", "\ufe0f\u00ad", "\u2800 \U000e0061"):
        with pytest.raises(BadFrame):
            parse_command(encode({"type": "chat", "text": blank}))
    # Emoji keep the parts that shape them; the invisible rest goes.
    assert parse_command(encode({"type": "chat", "text": "\u2764\ufe0f\u00ad"}))["text"] == (
        "\u2764\ufe0f"
    )


def test_every_client_event_parses() -> None:
    samples: dict[str, dict[str, Any]] = {
        "auth": {"token": "t"},
        "chat": {"text": "hi"},
        "react": {"kind": "fire", "count": 3},
        "buy": {"sale_id": 1, "key": "k-1", "qty": 2, "show_name": True},
        "group_open": {"sale_id": 1, "key": "g-1", "show_name": False},
        "group_join": {"group_id": "1-g1"},
        "coupon_claim": {"coupon_id": "1-c1"},
        "bid": {"lot_id": 1, "key": "b-1", "amount_cents": 100},
        "enter_draw": {"sale_id": 1},
        "pin": {"product_id": 4},
        "unpin": {},
        "announce": {"text": ""},
        "slow_mode": {"seconds": 10},
        "banned_words": {"words": ["B", "a", "b"]},
        "delete": {"seq": 3},
        "mute": {"user_id": "bob"},
        "unmute": {"user_id": "bob"},
        "ban": {"user_id": "bob"},
        "unban": {"user_id": "bob"},
        "promote": {"user_id": "bob"},
        "demote": {"user_id": "bob"},
        "ping": {"t": 1.5},
    }
    assert set(samples) == set(CLIENT_EVENTS)
    for kind, fields in samples.items():
        cmd = parse_command(encode({"type": kind, "ref": "r", **fields}))
        assert cmd.type == kind and cmd.ref == "r"
    assert parse_command(encode({"type": "mute", "user_id": "bob"}))["seconds"] == 300
    assert parse_command(encode({"type": "banned_words", "words": ["B", "b"]}))["words"] == ["b"]


@pytest.mark.parametrize(
    "frame",
    [
        b"",
        b"\xc1",
        encode([1, 2]),
        encode({"text": "no type"}),
        encode({"type": 5}),
        encode({"type": "chat", "text": "x", "ref": 1.5}),
        encode({"type": "chat", "text": "x", "ref": "r" * 65}),
        encode({"type": "buy", "sale_id": True, "key": "k"}),
        encode({"type": "buy", "sale_id": 1, "key": "bad key"}),
        encode({"type": "react", "count": 51}),
        encode({"type": "group_open", "sale_id": 1, "key": "k", "show_name": "yes"}),
        encode({"type": "group_join", "group_id": 7}),
        encode({"type": "coupon_claim", "coupon_id": "bad id"}),
        encode({"type": "slow_mode", "seconds": -1}),
        encode({"type": "banned_words", "words": ["x" * 51]}),
        encode({"type": "mute", "user_id": "bob", "seconds": 86401}),
        b"x" * (protocol.MAX_FRAME_BYTES + 1),
        encode({"type": "chat", "text": "x" * protocol.MAX_FRAME_BYTES}),
        encode(
            {"type": "banned_words", "words": ["x"], "pad": "x" * protocol.MAX_HOST_FRAME_BYTES}
        ),
    ],
)
def test_bad_frames_raise_bad_frame(frame: bytes) -> None:
    with pytest.raises(BadFrame):
        parse_command(frame)


def test_docs_cover_every_event_error_and_close_code() -> None:
    for kind in CLIENT_EVENTS:
        assert f"| `{kind}` |" in DOC, kind
    codes = {
        cls.code
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.DomainError) and cls.__module__ == errors.__name__
    }
    for code in codes:
        assert f"`{code}`" in DOC, code
    for name, value in vars(protocol).items():
        if name.startswith("CLOSE_"):
            assert f"| {value} |" in DOC, name
    server_events = (
        "snapshot resumed batch chat deleted pinned unpinned announcement slow_mode moderation "
        "stream sale stock reactions viewers auth_ok ack buy_result pong error group coupon "
        "group_result coupon_result server_restarting"
    )
    for kind in server_events.split():
        assert f"`{kind}`" in DOC, kind
    for phase in get_args(Phase):
        assert f"| `{phase}` |" in DOC, phase
    for state in ("scheduled", "countdown", "open", "ended"):
        assert f"| `{state}` |" in DOC, state
    for section in ("## Sales in the room", "## HTTP responses", "## Writing a client"):
        assert section in DOC, section
