"""Moderation and host actions: who may do what, banned words, mute/ban/delete/promote, pins."""

from __future__ import annotations

import re
from dataclasses import asdict
from typing import Any

from chat.errors import BadFrame, BannedWord, Forbidden, Unauthorized
from chat.history import RoomLog
from chat.keys import RoomKeys
from chat.member import Identity
from chat.protocol import Command
from chat.room import RoomState, now_ms
from inventory.catalog import Catalog, StreamView

HOST, MODERATOR, VIEWER, ANONYMOUS = "host", "moderator", "viewer", "anonymous"
#: Actions a moderator may take; everything in HOST_ONLY needs the stream's host (or an admin).
MODERATOR_ACTIONS = frozenset(
    {"pin", "unpin", "announce", "delete", "mute", "unmute", "ban", "unban", "slow_mode"}
)
HOST_ONLY = frozenset({"promote", "demote", "banned_words"})
ACTIONS = MODERATOR_ACTIONS | HOST_ONLY


class WordFilter:
    """Case-insensitive whole-word matching of a room's banned words (compiled once per change)."""

    def __init__(self, words: list[str]) -> None:
        self.words = sorted({w.casefold() for w in words if w})
        self._re = (
            re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, self.words)) + r")(?!\w)")
            if self.words
            else None
        )

    def check(self, text: str) -> None:
        """Raise BannedWord when ``text`` contains a banned word."""
        if self._re is not None and self._re.search(text.casefold()):
            raise BannedWord("your message contains a word this room does not allow")


def is_host(identity: Identity | None, stream: StreamView) -> bool:
    """The stream's owner, or an admin (admins act as host in every room)."""
    return identity is not None and (identity.role == "admin" or identity.user_id == stream.host_id)


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
            product = asdict(await self._catalog.get_product(cmd["product_id"]))
            await self._state.set_pinned(keys, product)
            return await self._log.publish(keys, {"type": "pinned", "product": product, **by})
        if cmd.type == "unpin":
            await self._state.set_pinned(keys, None)
            return await self._log.publish(keys, {"type": "unpinned", **by})
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
            return await self._log.delete(
                keys, {"type": "deleted", "target": cmd["seq"], **by}, cmd["seq"]
            )
        return await self._moderate_user(keys, stream, actor, role, cmd)

    async def _moderate_user(
        self, keys: RoomKeys, stream: StreamView, actor: Identity, role: str, cmd: Command
    ) -> int:
        target: str = cmd["user_id"]
        if target == actor.user_id:
            raise BadFrame("you cannot moderate yourself")
        if target == stream.host_id:
            raise Forbidden("the host cannot be moderated")
        if role != HOST and await self._state.is_moderator(keys, target):
            raise Forbidden("only the host may moderate a moderator")
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
