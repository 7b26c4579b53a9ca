"""Room figures for dashboards: viewers, likes and chat rate, read from the room's shared state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from chat.keys import RoomKeys
from chat.protocol import decode
from chat.room import now_ms

#: Chat rate is measured over this window (the history's 50 messages bound it from above).
CHAT_WINDOW_MS = 30_000


@dataclass(frozen=True, slots=True)
class RoomFigures:
    """What a host or an operator watches about one room."""

    viewers: int
    likes: int
    chat_per_min: float

    def to_json(self) -> dict[str, float | int]:
        """The JSON shape of the studio and ops endpoints."""
        return {"viewers": self.viewers, "likes": self.likes, "chat_per_min": self.chat_per_min}


def chat_per_min(stamps_ms: list[int], now: int, history_len: int = 50) -> float:
    """Messages per minute from the newest chat stamps (newest first).

    Every process and the history share one clock source (each message's ``at_ms``), so this
    is the same answer whichever worker is asked. When the whole history fits inside the
    window, the rate is measured over the span the history covers instead.
    """
    recent = [t for t in stamps_ms if now - t <= CHAT_WINDOW_MS]
    if not recent:
        return 0.0
    if len(recent) >= history_len:
        span = max(now - recent[-1], 1000)
        return round(len(recent) * 60_000 / span, 1)
    return round(len(recent) * 60_000 / CHAT_WINDOW_MS, 1)


#: Reads the figures of rooms by their keys (``room_figures`` bound to a Redis client).
FiguresReader = Callable[[dict[str, RoomKeys]], Awaitable[dict[str, RoomFigures]]]


async def room_figures(
    redis: Redis, rooms: dict[str, RoomKeys], history_len: int = 50
) -> dict[str, RoomFigures]:
    """Viewers, likes and chat rate of each room, in one pipelined round trip."""
    if not rooms:
        return {}
    items = list(rooms.items())
    async with redis.pipeline(transaction=False) as p:
        for _, keys in items:
            p.hget(keys.state, "viewers")
            p.hgetall(keys.reactions)
            p.lrange(keys.history, 0, -1)
        replies = await p.execute()
    now = now_ms()
    out: dict[str, RoomFigures] = {}
    for i, (stream_id, _) in enumerate(items):
        viewers, reactions, history = replies[3 * i : 3 * i + 3]
        stamps = []
        for raw in history:
            try:
                stamps.append(int(decode(raw).get("at_ms", 0)))
            except Exception:  # one malformed entry must not hide the room's figures
                continue
        out[stream_id] = RoomFigures(
            viewers=int(viewers or 0),
            likes=sum(int(v) for v in reactions.values()),
            chat_per_min=chat_per_min(stamps, now, history_len),
        )
    return out
