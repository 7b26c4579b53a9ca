"""Moderation and host actions: who may do what, banned words, mute/ban/delete/promote, pins."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict
from typing import Any

from chat.errors import BannedWord, Forbidden, MessageNotFound, SelfModeration, Unauthorized
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import Identity
from chat.protocol import BLANKS_RE, INVISIBLE_RE, Command
from chat.room import RoomState, now_ms
from inventory.catalog import Actor, Catalog, ProductView, StreamView, require_owner

HOST, MODERATOR, VIEWER, ANONYMOUS = "host", "moderator", "viewer", "anonymous"
#: Actions a moderator may take; everything in HOST_ONLY needs the stream's host (or an admin).
MODERATOR_ACTIONS = frozenset(
    {"pin", "unpin", "announce", "delete", "mute", "unmute", "ban", "unban", "slow_mode"}
)
HOST_ONLY = frozenset({"promote", "demote", "banned_words"})
ACTIONS = MODERATOR_ACTIONS | HOST_ONLY


_SPACES_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Text as banned words are matched: NFKC, case-folded, every run of whitespace one space.

    Invisible code points are dropped and blank ones read as spaces first. So full-width or
    styled letters, "SPOILER", "spoiler   alert", a no-break space or a Hangul filler in
    between, and "sc<soft hyphen>am" all match the word as the host typed it.
    """
    visible = INVISIBLE_RE.sub("", BLANKS_RE.sub(" ", text))
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", visible).casefold())
    return _SPACES_RE.sub(" ", folded).strip()


class WordFilter:
    """Whole-word matching of a room's banned words after ``normalize`` (compiled per change)."""

    def __init__(self, words: list[str]) -> None:
        self.words = sorted({normalize(w) for w in words if normalize(w)})
        self._re = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, self.words)) + r")(?!\w)")
            if self.words
            else None
        )

    def check(self, text: str) -> None:
        """Raise BannedWord when ``text`` contains a banned word."""
        if self._re is not None and self._re.search(normalize(text)):
            raise BannedWord("your message contains a word this room does not allow")


def is_host(identity: Identity | None, stream: StreamView) -> bool:
    """The stream's owner, or an admin (admins act as host in every room)."""
    return identity is not None and (identity.role == "admin" or identity.user_id == stream.host_id)


def auth_ok(who: Identity, standing: dict[str, Any], ref: Any = None) -> dict[str, Any]:
    """The reply to an ``auth`` event: who the socket now is and its standing in the room."""
    event = {"type": "auth_ok", "user_id": who.user_id, "name": who.name, **standing}
    return event if ref is None else {**event, "ref": ref}


class Moderation:
    """Checks the actor's room role, then changes the shared state and announces it in order."""

    def __init__(self, state: RoomState, room_log: RoomLog, catalog: Catalog) -> None:
        self._state = state
        self._log = room_log
        self._catalog = catalog

    async def room_role(self, keys: RoomKeys, stream: StreamView, who: Identity | None) -> str:
        """host, moderator, viewer or anonymous."""
        if who is None:
            return ANONYMOUS
        if is_host(who, stream):
            return HOST
        if await self._state.is_banned(keys, who.user_id):
            return VIEWER  # a banned moderator keeps no power (and cannot post either)
        return MODERATOR if await self._state.is_moderator(keys, who.user_id) else VIEWER

    async def standing(self, keys: RoomKeys, stream: StreamView, who: Identity) -> dict[str, Any]:
        """``role``, ``muted_until`` (0: not muted) and ``banned`` of a user in the room."""
        snap = await self._state.standing(keys, who.user_id)
        role = HOST if is_host(who, stream) else MODERATOR if snap.moderator else VIEWER
        if snap.banned and role != HOST:
            role = VIEWER
        return {"role": role, "muted_until": snap.muted_until, "banned": snap.banned}

    async def apply(
        self, keys: RoomKeys, stream: StreamView, actor: Identity | None, cmd: Command
    ) -> int:
        """Run one host/moderator action; returns the seq of the event it published (0: none)."""
        if actor is None:
            raise Unauthorized("a bearer token is required for this")
        role = await self.room_role(keys, stream, actor)
        allowed = cmd.type in MODERATOR_ACTIONS and role in (HOST, MODERATOR)
        if not (allowed or role == HOST):
            who = "the host" if cmd.type in HOST_ONLY else "the host or a moderator"
            raise Forbidden(f"{cmd.type} needs {who}")
        by = {"by": actor.name}
        if cmd.type == "pin":
            product = asdict(await self._pinnable(stream, actor, cmd["product_id"]))
            await self._state.set_pinned(keys, product)
            pin = {"type": "pinned", "product": product, "at_ms": now_ms(), **by}
            return await self._log.publish(keys, pin)
        if cmd.type == "unpin":
            await self._state.set_pinned(keys, None)
            return await self._log.publish(keys, {"type": "unpinned", "at_ms": now_ms(), **by})
        if cmd.type == "announce":
            text = cmd["text"]
            note = {"text": text, "at_ms": now_ms(), **by}
            await self._state.set_announcement(keys, note if text else None)
            return await self._log.publish(keys, {"type": "announcement", **note})
        if cmd.type == "slow_mode":
            await self._state.set_slow_mode(keys, cmd["seconds"])
            return await self._log.publish(
                keys, {"type": "slow_mode", "seconds": cmd["seconds"], **by}
            )
        if cmd.type == "banned_words":
            # The list is for moderators only: hubs hear it on an internal event, never sent on.
            await self._state.set_banned_words(keys, cmd["words"])
            await self._log.broadcast(keys, {"type": "_words", "words": cmd["words"]})
            return 0
        if cmd.type == "delete":
            message = await self._log.event(keys, cmd["seq"])
            if message is None or message.get("type") != "chat":
                raise MessageNotFound(f"no recent chat message with seq {cmd['seq']}")
            author, by_host = str(message["user_id"]), message.get("role") == HOST
            await self._may_moderate(keys, stream, actor, role, author, by_host)
            return await self._log.delete(
                keys, {"type": "deleted", "target": cmd["seq"], **by}, cmd["seq"]
            )
        await self._may_moderate(keys, stream, actor, role, cmd["user_id"])
        return await self._moderate_user(keys, actor, cmd)

    async def _pinnable(self, stream: StreamView, actor: Identity, product_id: int) -> ProductView:
        """The product, when ``actor`` owns it or is an admin; a moderator pins the host's."""
        product = await self._catalog.get_product(product_id)
        if product.owner_id is None or product.owner_id != stream.host_id:
            require_owner(Actor(actor.user_id, actor.role == "admin"), product_id, product.owner_id)
        return product

    async def _may_moderate(
        self,
        keys: RoomKeys,
        stream: StreamView,
        actor: Identity,
        role: str,
        target: str,
        by_host: bool = False,
    ) -> None:
        # ``by_host``: a message the host (or an admin, who acts as host) posted.
        if target == actor.user_id:
            raise SelfModeration("you cannot moderate yourself")
        if by_host or target == stream.host_id or await self._state.is_admin(keys, target):
            raise Forbidden("the host cannot be moderated")
        if role != HOST and await self._state.is_moderator(keys, target):
            raise Forbidden("only the host may moderate a moderator")

    async def _moderate_user(self, keys: RoomKeys, actor: Identity, cmd: Command) -> int:
        target: str = cmd["user_id"]
        event: dict[str, Any] = {"type": "moderation", "action": cmd.type, "user_id": target}
        if cmd.type == "mute":
            until = now_ms() + cmd["seconds"] * 1000
            await self._state.set_muted_until(keys, target, until)
            event["until_ms"] = until
        elif cmd.type == "unmute":
            await self._state.set_muted_until(keys, target, 0)
        elif cmd.type in ("ban", "unban"):
            await self._state.set_banned(keys, target, cmd.type == "ban")
        else:  # promote / demote
            await self._state.set_moderator(keys, target, cmd.type == "promote")
        return await self._log.publish(keys, {**event, "by": actor.name})
