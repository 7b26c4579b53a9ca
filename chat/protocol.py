"""The room's wire format: msgpack frames, validation of every client event, pre-built frames."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import msgpack

from chat.errors import BadFrame, TooLong

#: Largest client frame accepted, but for ``banned_words`` (a bigger one gets ``bad_frame``).
MAX_FRAME_BYTES = 8 * 1024
#: Largest frame the socket reads (it closes with 1009 above it): the whole banned-word list,
#: 200 words of 50 four-byte characters, fits.
MAX_HOST_FRAME_BYTES = 48 * 1024
#: The one event that may use frames up to MAX_HOST_FRAME_BYTES.
_BIG_EVENTS = ("banned_words",)
MAX_TEXT = 500
MAX_REF = 64
MAX_BANNED_WORDS = 200
MAX_WORD = 50
MAX_REACTION_COUNT = 50
MAX_MUTE_S = 86_400
MAX_SLOW_MODE_S = 3_600
REACTIONS = ("like", "heart", "fire", "clap", "laugh", "wow")

# Close codes (docs/protocol.md). 1001 and 1009 are standard; 4xxx are ours.
CLOSE_GOING_AWAY = 1001
CLOSE_TOO_BIG = 1009
CLOSE_TRY_AGAIN = 1013
CLOSE_UNAUTHORIZED = 4001
CLOSE_BANNED = 4003
CLOSE_NOT_FOUND = 4004
CLOSE_ABUSE = 4008
CLOSE_TOO_SLOW = 4009
CLOSE_RATE_LIMITED = 4029

_USER_ID_RE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}\Z")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,80}\Z")
# Invisible code points: every Default_Ignorable_Code_Point and format (Cf) character but the
# emoji parts below (soft hyphen, joiners, bidi controls, Mongolian selectors, fillers...).
# They render as nothing, so inside a word they only serve to slip it past the banned words.
_INVISIBLE = (
    "\u00ad\u034f\u0600-\u0605\u061c\u06dd\u070f\u0890\u0891\u08e2\u115f\u1160\u17b4\u17b5"
    "\u180b-\u180f\u200b-\u200f\u202a-\u202e\u2060-\u206f\u3164\ufeff\uffa0\ufff0-\ufffb"
    "\U000110bd\U000110cd\U00013430-\U0001343f\U0001bca0-\U0001bca3\U0001d173-\U0001d17a"
    "\U000e0000-\U000e001f\U000e0080-\U000e00ff\U000e01f0-\U000e0fff"
)
# Variation selectors and tag characters are invisible too, but they shape emoji (a red heart,
# a Scottish flag): kept in the text, ignored when matching banned words.
_EMOJI_PARTS = "\ufe00-\ufe0f\U000e0020-\U000e007f\U000e0100-\U000e01ef"
#: Every invisible code point (what banned-word matching ignores).
INVISIBLE_RE = re.compile(f"[{_INVISIBLE}{_EMOJI_PARTS}]")
#: Blanks that show as an empty cell (Hangul fillers, the Braille blank): read as spaces.
BLANKS_RE = re.compile("[\u115f\u1160\u3164\uffa0\u2800]")
# Control characters (other than newline and tab) are dropped: they render as garbage or
# confuse terminals and logs; so are the invisible ones. Text is otherwise stored and sent
# verbatim, never as HTML.
_CONTROL_RE = re.compile(f"[\x00-\x08\x0b-\x1f\x7f{_INVISIBLE}]")


def encode(event: Any) -> bytes:
    """One msgpack value (events are maps)."""
    return msgpack.packb(event, use_bin_type=True)


def decode(data: bytes) -> Any:
    """Decode one frame (tests and the load generator use the same shapes)."""
    return msgpack.unpackb(data, raw=False, strict_map_key=False)


#: A pub/sub message may start with its publish time: msgpack's uint64 marker, then the Redis
#: clock in microseconds (chat/lua/publish_fn.lua). An event itself always starts with a map.
_STAMP = 0xCF
_STAMP_LEN = 9


def unwrap(message: bytes) -> tuple[bytes, int]:
    """A room channel message as (the event, its publish time in µs, or 0 when unstamped)."""
    if len(message) > _STAMP_LEN and message[0] == _STAMP:
        return message[_STAMP_LEN:], int.from_bytes(message[1:_STAMP_LEN], "big")
    return message, 0


def open_payload(event: dict[str, Any], extra_fields: int) -> bytes:
    """Encode ``event`` as a map whose header announces ``extra_fields`` more entries.

    The Lua publisher appends those entries (``seq``, ``role``...) so the event is encoded once,
    in Python, and never decoded and re-encoded on its way to thousands of sockets.
    """
    n = len(event) + extra_fields
    if n > 15:
        raise ValueError("room events have at most 15 fields")
    body = encode(event)
    return bytes([0x80 | n]) + body[1:]


def batch_payload(events: list[bytes]) -> bytes:
    """``{"type": "batch", "events": [...]}`` built by concatenating already-encoded events."""
    n = len(events)
    if n < 16:
        head = bytes([0x90 | n])
    elif n < 65536:
        head = b"\xdc" + struct.pack(">H", n)
    else:
        head = b"\xdd" + struct.pack(">I", n)
    return b"\x82\xa4type\xa5batch\xa6events" + head + b"".join(events)


def ws_binary_frame(payload: bytes) -> bytes:
    """An unmasked, final, binary websocket frame (RFC 6455, server to client)."""
    n = len(payload)
    if n < 126:
        return bytes((0x82, n)) + payload
    if n < 65536:
        return struct.pack(">BBH", 0x82, 126, n) + payload
    return struct.pack(">BBQ", 0x82, 127, n) + payload


class Frame:
    """One outgoing frame, built once and written as the same bytes to every socket.

    ``first_seq``/``last_seq`` bound the sequenced events inside (0 when there are none), so a
    joining client can drop frames it already got from its snapshot or replay.
    """

    __slots__ = ("__dict__", "first_seq", "last_seq", "payload")

    def __init__(self, payload: bytes, first_seq: int = 0, last_seq: int = 0) -> None:
        self.payload = payload
        self.first_seq = first_seq
        self.last_seq = last_seq

    @cached_property
    def wire(self) -> bytes:
        """The complete websocket frame (header and payload), built on first use only."""
        return ws_binary_frame(self.payload)

    @classmethod
    def of(cls, event: dict[str, Any]) -> Frame:
        """A frame holding one unsequenced event."""
        return cls(encode(event))


#: A draining server tells each socket when to reconnect, spread over this range (ms) so that
#: a room's viewers do not all land on the remaining servers in the same instant.
RESTART_RETRY_MS = (250, 3000)


def restarting_event(retry_after_ms: int) -> dict[str, Any]:
    """The ``server_restarting`` event: this server is going; reconnect after the hint."""
    return {"type": "server_restarting", "retry_after_ms": retry_after_ms}


def error_event(code: str, message: str, ref: Any = None, **extra: Any) -> dict[str, Any]:
    """The ``error`` event sent to one client."""
    ev: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if ref is not None:
        ev["ref"] = ref
    ev.update(extra)
    return ev


# -- client events -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Command:
    """A validated client event: its ``type``, its fields, and the client's correlation ref."""

    type: str
    ref: str | int | None
    fields: dict[str, Any]

    def __getitem__(self, name: str) -> Any:
        return self.fields[name]


def clean_text(value: Any, name: str = "text", allow_empty: bool = False) -> str:
    """Validate user text: a string of at most 500 characters after dropping control chars."""
    if not isinstance(value, str):
        raise BadFrame(f"{name} must be a string")
    text = _CONTROL_RE.sub("", BLANKS_RE.sub(" ", value)).strip()
    if len(text) > MAX_TEXT:
        raise TooLong(f"{name} is longer than {MAX_TEXT} characters")
    if not INVISIBLE_RE.sub("", text).strip() and not allow_empty:
        raise BadFrame(f"{name} is empty")
    return text


def _int(raw: dict[Any, Any], name: str, lo: int, hi: int, default: int | None = None) -> int:
    value = raw.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadFrame(f"{name} must be an integer")
    if not lo <= value <= hi:
        raise BadFrame(f"{name} must be {lo}..{hi}")
    return value


def _user(raw: dict[Any, Any]) -> str:
    value = raw.get("user_id")
    if not isinstance(value, str) or not _USER_ID_RE.match(value):
        raise BadFrame("user_id must be 1..64 of [A-Za-z0-9_.@:-]")
    return value


def _token(raw: dict[Any, Any]) -> dict[str, Any]:
    token = raw.get("token")
    if not isinstance(token, str) or not 0 < len(token) <= 4096:
        raise BadFrame("token must be a non-empty string")
    return {"token": token}


def _chat(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"text": clean_text(raw.get("text"))}


def _react(raw: dict[Any, Any]) -> dict[str, Any]:
    kind = raw.get("kind", "like")
    if kind not in REACTIONS:
        raise BadFrame(f"kind must be one of {', '.join(REACTIONS)}")
    return {"kind": kind, "count": _int(raw, "count", 1, MAX_REACTION_COUNT, 1)}


def _buy(raw: dict[Any, Any]) -> dict[str, Any]:
    key = raw.get("key")
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise BadFrame("key (the idempotency key) must be 1..80 of [A-Za-z0-9_.:-]")
    return {
        "sale_id": _int(raw, "sale_id", 1, 2**53),
        "key": key,
        "qty": _int(raw, "qty", 1, 1000, 1),
        "show_name": _show_name(raw),
    }


def _show_name(raw: dict[Any, Any]) -> bool:
    show = raw.get("show_name", False)
    if not isinstance(show, bool):
        raise BadFrame("show_name must be a boolean")
    return show


def _ref_id(raw: dict[Any, Any], name: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not _KEY_RE.match(value):
        raise BadFrame(f"{name} must be 1..80 of [A-Za-z0-9_.:-]")
    return value


def _group_open(raw: dict[Any, Any]) -> dict[str, Any]:
    return {
        "sale_id": _int(raw, "sale_id", 1, 2**53),
        "key": _ref_id(raw, "key"),
        "show_name": _show_name(raw),
    }


def _group_join(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"group_id": _ref_id(raw, "group_id"), "show_name": _show_name(raw)}


def _coupon_claim(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"coupon_id": _ref_id(raw, "coupon_id")}


def _bid(raw: dict[Any, Any]) -> dict[str, Any]:
    # A bid on a lot (flashsale/auction.py): its idempotency key as a buy's.
    fields = _buy({**raw, "sale_id": raw.get("lot_id"), "qty": 1})
    return {"lot_id": fields["sale_id"], "key": fields["key"], "show_name": fields["show_name"],
            "amount_cents": _int(raw, "amount_cents", 1, 10**12)}  # fmt: skip


def _enter_draw(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"sale_id": _int(raw, "sale_id", 1, 2**53)}


def _pin(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"product_id": _int(raw, "product_id", 1, 2**53)}


def _announce(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"text": clean_text(raw.get("text", ""), allow_empty=True)}


def _slow_mode(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"seconds": _int(raw, "seconds", 0, MAX_SLOW_MODE_S)}


def _banned_words(raw: dict[Any, Any]) -> dict[str, Any]:
    words = raw.get("words")
    if not isinstance(words, list) or len(words) > MAX_BANNED_WORDS:
        raise BadFrame(f"words must be a list of at most {MAX_BANNED_WORDS} strings")
    out: list[str] = []
    for w in words:
        if not isinstance(w, str) or not 0 < len(w.strip()) <= MAX_WORD:
            raise BadFrame(f"each word must be 1..{MAX_WORD} characters")
        out.append(w.strip().casefold())
    return {"words": sorted(set(out))}


def _delete(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"seq": _int(raw, "seq", 1, 2**53)}


def _mute(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"user_id": _user(raw), "seconds": _int(raw, "seconds", 1, MAX_MUTE_S, 300)}


def _target(raw: dict[Any, Any]) -> dict[str, Any]:
    return {"user_id": _user(raw)}


def _ping(raw: dict[Any, Any]) -> dict[str, Any]:
    t = raw.get("t")
    if t is not None and (isinstance(t, bool) or not isinstance(t, int | float)):
        raise BadFrame("t must be a number")
    return {"t": t}


def _none(raw: dict[Any, Any]) -> dict[str, Any]:
    return {}


_PARSERS = {
    "auth": _token,
    "chat": _chat,
    "react": _react,
    "buy": _buy,
    "group_open": _group_open,
    "group_join": _group_join,
    "coupon_claim": _coupon_claim,
    "bid": _bid,
    "enter_draw": _enter_draw,
    "pin": _pin,
    "unpin": _none,
    "announce": _announce,
    "slow_mode": _slow_mode,
    "banned_words": _banned_words,
    "delete": _delete,
    "mute": _mute,
    "unmute": _target,
    "ban": _target,
    "unban": _target,
    "promote": _target,
    "demote": _target,
    "ping": _ping,
}
#: Every client event type, for the docs and the tests.
CLIENT_EVENTS = tuple(_PARSERS)


def parse_command(data: bytes) -> Command:
    """Decode and validate one client frame; raises BadFrame/TooLong with a clear message."""
    if len(data) > MAX_HOST_FRAME_BYTES:
        raise BadFrame(f"frame larger than {MAX_HOST_FRAME_BYTES} bytes")
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage input
        raise BadFrame("frame is not valid msgpack") from exc
    if not isinstance(raw, dict):
        raise BadFrame("frame must be a msgpack map")
    # The ref first: every reply, errors included, must echo it.
    ref = raw.get("ref")
    if ref is not None:
        if isinstance(ref, bool) or not isinstance(ref, str | int):
            raise BadFrame("ref must be a string or an integer")
        if isinstance(ref, str) and len(ref) > MAX_REF:
            raise BadFrame(f"ref longer than {MAX_REF} characters")
        if isinstance(ref, int) and not -(2**53) <= ref <= 2**53:
            raise BadFrame("ref out of range")
    try:
        kind = raw.get("type")
        if len(data) > MAX_FRAME_BYTES and kind not in _BIG_EVENTS:
            raise BadFrame(f"frame larger than {MAX_FRAME_BYTES} bytes")
        parser = _PARSERS.get(kind) if isinstance(kind, str) else None
        if parser is None:
            raise BadFrame(f"unknown event type {kind!r}"[:120])
        assert isinstance(kind, str)
        return Command(kind, ref, parser(raw))
    except BadFrame as exc:
        exc.ref = ref
        raise
