"""What a viewer can do in a room: chat, react, buy, join groups, claim coupons, ping."""

from __future__ import annotations

from typing import Any, Protocol

from chat.analytics import NULL_TALLY, Tally
from chat.errors import (
    BadFrame,
    BannedWord,
    Forbidden,
    Muted,
    RateLimited,
    SelfModeration,
    TooLong,
    Unauthorized,
)
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import Member, RoomLimits
from chat.moderation import ACTIONS, Moderation, WordFilter, is_host
from chat.protocol import Command, error_event
from chat.reactions import Reactions
from chat.room import now_ms
from chat.salefeed import RoomSales
from chat.salelots import RoomLots
from chat.social import NoSocial, RoomSocial
from flashsale.errors import SaleNotFound
from inventory.catalog import StreamView
from inventory.errors import DomainError


class Throttle(Protocol):
    """Per-client-address limits shared with the HTTP edge (buys count the same on both)."""

    async def wait_ms(self, client: str, limit: str) -> int:
        """0 when ``client`` may do ``limit``'s action now (counted), else milliseconds to wait."""
        ...


class AddressLimited(RateLimited):
    """Over a per-address limit: not a strike, as the address may be a crowd behind one NAT."""


#: Errors that count as abuse strikes (a client bug or a spammer, not bad luck).
STRIKES = (BadFrame, TooLong, RateLimited, BannedWord, Muted, Unauthorized, Forbidden)


def is_strike(exc: DomainError) -> bool:
    """Whether a failed command counts towards closing the socket (4008)."""
    return isinstance(exc, STRIKES) and not isinstance(exc, SelfModeration | AddressLimited)


def error_reply(exc: DomainError, ref: Any) -> dict[str, Any]:
    """The ``error`` event for a failed command (with retry/mute hints where they apply)."""
    extra: dict[str, Any] = {}
    if isinstance(exc, RateLimited):
        extra["retry_after_ms"] = exc.retry_after_ms
    if isinstance(exc, Muted):
        extra["until_ms"] = exc.until_ms
    return error_event(exc.code, exc.message, ref, **extra)


class Commands:
    """Runs one validated client command for a member; raises DomainError subclasses."""

    def __init__(
        self,
        room_log: RoomLog,
        moderation: Moderation,
        reactions: Reactions,
        sales: RoomSales,
        limits: RoomLimits,
        tally: Tally = NULL_TALLY,
        lots: RoomLots | None = None,
        social: RoomSocial | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self._throttle = throttle
        self._tally = tally  # show analytics: a dict increment per command, flushed elsewhere
        self._lots = lots
        self._log = room_log
        # Group buys and coupons (chat/social.py); none: refused as "no_group_offer".
        self._social: RoomSocial = social or NoSocial()
        self._moderation = moderation
        self._reactions = reactions
        self._limits = limits
        self._sales = sales

    async def run(
        self, member: Member, keys: RoomKeys, stream: StreamView, words: WordFilter, cmd: Command
    ) -> None:
        """Execute ``cmd``; replies (ack, buy_result, pong) go to ``member`` only."""
        if cmd.type == "chat":
            seq = await self._chat(member, keys, stream, words, cmd["text"])
            self._tally.hit(member.stream_id, "chat")
            self._ack(member, cmd, seq=seq)
        elif cmd.type == "react":
            # Extra taps beyond the per-connection budget are dropped silently: likes are
            # spammy by nature, and an error per tap would cost more than the tap.
            if member.reactions.take(cmd["count"]):
                self._reactions.add(member.stream_id, cmd["kind"], cmd["count"])
                self._tally.hit(member.stream_id, "reactions", cmd["count"])
        elif cmd.type == "buy":
            await self._buy(member, cmd)
        elif cmd.type in ("group_open", "group_join", "coupon_claim"):
            await self._social.run(member, cmd)
        elif cmd.type in ("bid", "enter_draw"):
            if self._lots is None:
                raise BadFrame("this server runs no auctions or draws")
            await self._lots.run(member, cmd)
        elif cmd.type == "ping":
            pong = {"type": "pong", "t": cmd["t"], "server_ms": now_ms()}
            member.send(pong if cmd.ref is None else {**pong, "ref": cmd.ref})
        elif cmd.type in ACTIONS:
            seq = await self._moderation.apply(keys, stream, member.identity, cmd)
            self._ack(member, cmd, seq=seq)
        else:  # auth is handled by the hub; parse_command rejects everything else
            raise AssertionError(cmd.type)

    @staticmethod
    def _ack(member: Member, cmd: Command, **fields: Any) -> None:
        if cmd.ref is not None:
            member.send({"type": "ack", "ref": cmd.ref, **fields})

    async def _chat(
        self, member: Member, keys: RoomKeys, stream: StreamView, words: WordFilter, text: str
    ) -> int:
        who = member.identity
        if who is None:
            raise Unauthorized("sign in to chat: send an auth event with a bearer token")
        words.check(text)
        event = {
            "type": "chat",
            "user_id": who.user_id,
            "name": who.name,
            "text": text,
            "at_ms": now_ms(),
        }
        base_role = "host" if is_host(who, stream) else "viewer"
        return await self._log.post_chat(
            keys, event, who.user_id, base_role, self._limits.chat_burst, self._limits.chat_per_s
        )

    async def _buy(self, member: Member, cmd: Command) -> None:
        who = member.identity
        if who is None:
            raise Unauthorized("sign in to buy: send an auth event with a bearer token")
        # A room sells its own stream's sales only: a page cannot be made to buy something
        # else than what its viewers see (muted viewers may buy: muting is about chat).
        if await self._sales.stream_of(cmd["sale_id"]) != member.stream_id:
            raise SaleNotFound(f"sale {cmd['sale_id']} is not on sale in this room")
        if self._throttle is not None and member.client:
            wait = await self._throttle.wait_ms(member.client, "buy")
            if wait:
                raise AddressLimited(wait, f"too many buys from your address; retry in {wait} ms")
        self._tally.hit(member.stream_id, f"buy_attempt:{cmd['sale_id']}")
        # Exactly the HTTP buy: same service, same idempotency key rules, same error codes.
        result = await self._sales.buy(
            cmd["sale_id"],
            who.user_id,
            cmd["key"],
            cmd["qty"],
            public_name=who.name if cmd["show_name"] else None,
        )
        member.send(
            {
                "type": "buy_result",
                "ref": cmd.ref,
                "key": cmd["key"],
                "order": result.order.to_json(),
                "remaining": result.remaining,
                "duplicate": result.duplicate,
            }
        )
