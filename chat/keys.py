"""Redis key layout of a room. Every key shares the hash tag ``{r<STREAM_ID>}`` (Cluster-ready)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RoomKeys:
    """The keys and the pub/sub channel of one room."""

    base: str
    seq: str
    events: str
    history: str
    state: str
    mods: str
    bans: str
    admins: str
    mutes: str
    reactions: str
    viewers: str
    viewers_gate: str
    channel: str
    #: Ids of the group and coupon events the room has published (chat/social.py).
    once: str

    @classmethod
    def of(cls, prefix: str, stream_id: str) -> RoomKeys:
        """Keys of room ``stream_id`` under ``prefix``."""
        base = f"{prefix}:{{r{stream_id}}}"
        return cls(
            base=base,
            seq=f"{base}:seq",
            events=f"{base}:events",
            history=f"{base}:history",
            state=f"{base}:state",
            mods=f"{base}:mods",
            bans=f"{base}:bans",
            admins=f"{base}:admins",
            mutes=f"{base}:mutes",
            reactions=f"{base}:reactions",
            viewers=f"{base}:viewers",
            viewers_gate=f"{base}:viewers:gate",
            channel=f"{base}:ch",
            once=f"{base}:once",
        )

    def durable(self) -> list[str]:
        """Every long-lived key of the room (what is kept, then expired, after the show).

        Not the presence gate: it is a lock that must keep its short TTL. Going live PERSISTs
        these keys, and a persisted gate froze the viewer count for good.
        """
        return [
            self.seq, self.events, self.history, self.state, self.mods, self.bans, self.admins,
            self.mutes, self.reactions, self.viewers, self.once,
        ]  # fmt: skip

    def bucket(self, user_id: str) -> str:
        """The user's token bucket and slow-mode clock in this room."""
        return f"{self.base}:rl:{user_id}"

    def log(self) -> list[str]:
        """KEYS[1..3] of every sequenced-publish script."""
        return [self.seq, self.events, self.history]
