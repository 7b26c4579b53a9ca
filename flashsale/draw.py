"""A provably fair draw for an oversubscribed drop: commit, collect entries, reveal, rank.

Before the entry window opens the server publishes ``commitment = SHA-256(seed)`` of a secret
32-byte seed. Viewers in the room enter (one entry per user, over their room socket) until the
window closes, atomically, by Redis's clock. Each entry is a pseudonymous entry id (a keyed
hash of the sale and the user, told to the entrant), so the published list names nobody. At
the close the seed is revealed, the entry list (entry ids, sorted, one per line) and its
SHA-256 are published, and the winners are the first N entries ranked by
``HMAC-SHA256(key=seed, msg=entry_id)`` (hex, ascending; ties, which need a hash collision, by
entry id). Anyone re-runs it with ``livesell verify-draw``. Winners get reserved orders on the
drop's sale. See docs/auctions.md.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from flashsale import errors
from flashsale.redisguard import guarded, text
from flashsale.service import SaleService
from inventory.catalog import Actor
from inventory.errors import Conflict, Gone, InvalidInput, NotFound
from inventory.luascript import load_script

log = logging.getLogger("livesell.draw")


class DrawNotFound(NotFound):
    """No draw on this sale."""

    code = "draw_not_found"


class DrawClosed(Gone):
    """The draw's entry window is not open (not yet, or no longer)."""

    code = "draw_closed"


class DrawNotDue(Conflict):
    """The draw's entry window has not ended yet."""

    code = "draw_not_due"


class SeedMismatch(InvalidInput):
    """The revealed seed does not hash to the published commitment."""

    code = "seed_mismatch"


# -- the algorithm (pure, what verify-draw re-runs) --------------------------------------------


def commitment_of(seed: bytes) -> str:
    """The published commitment of a seed: SHA-256, hex."""
    return hashlib.sha256(seed).hexdigest()


def entry_id(key: bytes, sale_id: int, user_id: str) -> str:
    """A user's pseudonymous entry id in one draw (the server's key: others cannot link it)."""
    return hmac.new(key, f"draw:{sale_id}:{user_id}".encode(), hashlib.sha256).hexdigest()[:32]


def entry_list(entries: Iterable[str]) -> list[str]:
    """The canonical entry list: unique entry ids, sorted by their UTF-8 bytes."""
    return sorted(set(entries), key=lambda u: u.encode())


def entries_hash(entries: Iterable[str]) -> str:
    """SHA-256 (hex) of the canonical entry list, one id per line, each ending with a newline."""
    return hashlib.sha256("".join(f"{u}\n" for u in entry_list(entries)).encode()).hexdigest()


def draw_winners(entries: Iterable[str], seed: bytes, winners: int) -> list[str]:
    """The first ``winners`` entries ranked by HMAC-SHA256(seed, entry id), best first."""
    ranked = sorted(
        entry_list(entries),
        key=lambda u: (hmac.new(seed, u.encode(), hashlib.sha256).hexdigest(), u.encode()),
    )
    return ranked[: max(0, winners)]


def verify(entries: Iterable[str], seed: bytes, commitment: str, winners: int) -> list[str]:
    """Re-run a published draw; raises SeedMismatch when the seed is not the committed one."""
    if not hmac.compare_digest(commitment_of(seed), commitment.strip().lower()):
        raise SeedMismatch("the seed does not match the commitment")
    return draw_winners(entries, seed, winners)


# -- the live draw -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Draw:
    """A draw's public state; ``seed`` only once it is closed; winners as entry ids."""

    sale_id: int
    state: str
    winners: int
    commitment: str
    end_ms: int
    entries: int
    seed: str | None
    entries_hash: str | None
    winner_ids: tuple[str, ...]
    clock_ms: int

    def to_json(self) -> dict[str, object]:
        """The API shape (winners' ids are published: they are what anyone verifies)."""
        return {
            "sale_id": self.sale_id,
            "state": self.state,
            "winners": self.winners,
            "commitment": self.commitment,
            "ends_at_ms": self.end_ms,
            "entries": self.entries,
            "seed": self.seed,
            "entries_hash": self.entries_hash,
            "winner_entries": list(self.winner_ids),
            "algorithm": "rank entries by HMAC-SHA256(seed, entry_id) hex ascending; first N",
            "server_time_ms": self.clock_ms,
        }


class Draws:
    """Runs draws on sales: entries in Redis (one Lua call each), winners as reserved orders."""

    def __init__(self, redis: Redis, sales: SaleService, prefix: str, entry_key: bytes) -> None:
        self._redis = redis
        self._entry_key = entry_key
        self._sales = sales
        self._prefix = prefix
        self._script = load_script(redis, "flashsale", "draw")
        #: Draws not yet awarded, which the draw closer sweeps.
        self._active = f"{prefix}:draw:active"

    def _keys(self, sale_id: int) -> list[str]:
        s = self._sales.keys(sale_id)
        base = f"{self._prefix}:{{s{sale_id}}}"
        return [f"{base}:draw", f"{base}:entries", s.meta, s.users, s.orders, s.holds, s.events,
                f"{base}:entrants"]  # fmt: skip

    async def _call(self, sale_id: int, *args: Any) -> list[Any]:
        reply = list(await guarded(self._script(keys=self._keys(sale_id), args=list(args))))
        code = text(reply[0])
        if code == "draw_not_found":
            raise DrawNotFound(f"sale {sale_id} has no draw")
        if code == "draw_closed":
            raise DrawClosed(f"the draw of sale {sale_id} is not taking entries")
        if code == "draw_not_due":
            raise DrawNotDue(f"the draw of sale {sale_id} is still taking entries")
        if code == "exists":
            raise Conflict(f"sale {sale_id} already has a draw", code="draw_exists")
        return reply

    async def create(self, sale_id: int, window_s: int, by: Actor) -> Draw:
        """Publish the commitment and open the entry window; winners = the sale's stock."""
        if not 5 <= window_s <= 86400:
            raise errors.BadSaleInput("window_s must be 5..86400")
        sale = await self._sales.own_sale(sale_id, by)
        if sale.state != "scheduled" or sale.starts_at_ms:
            raise Conflict("a draw needs a sale not yet opened", code="draw_sale_open")
        seed = secrets.token_bytes(32)
        await self._call(sale_id, "create", seed.hex(), commitment_of(seed), window_s * 1000,
                         sale.quantity)  # fmt: skip
        await guarded(self._redis.sadd(self._active, sale_id))
        if sale.stream_id is not None:
            key = f"{self._prefix}:draw:stream:{sale.stream_id}"
            await guarded(self._redis.zadd(key, {str(sale_id): sale_id}))
        return await self.get(sale_id)

    async def draws_for_stream(self, stream_id: str, limit: int = 5) -> list[Draw]:
        """The stream's latest draws, newest first (the room's draw card)."""
        key = f"{self._prefix}:draw:stream:{stream_id}"
        ids = await guarded(self._redis.zrevrange(key, 0, limit - 1))
        return [await self.get(int(i)) for i in ids]

    async def close_due(self) -> int:
        """Close every draw whose window ended (Redis's clock); returns how many were closed."""
        closed = 0
        for member in await guarded(self._redis.smembers(self._active)):
            sale_id = int(member)
            try:
                await self.close(sale_id)
            except DrawNotDue:
                continue
            except DrawNotFound:
                pass
            await guarded(self._redis.srem(self._active, sale_id))
            closed += 1
        return closed

    async def enter(self, sale_id: int, user_id: str) -> tuple[str, bool]:
        """Enter ``user_id`` once; returns their entry id and False for a repeated entry."""
        eid = entry_id(self._entry_key, sale_id, user_id)
        reply = await self._call(sale_id, "enter", eid, user_id)
        return eid, text(reply[0]) == "ok"

    async def close(self, sale_id: int, now: bool = False) -> Draw:
        """Close entries (once the window ended, or ``now``), rank them, reserve the winners."""
        reply = await self._call(sale_id, "close", "1" if now else "0")
        if text(reply[0]) == "ok":
            seed = bytes.fromhex(text(reply[1]))
            entries = [text(u) for u in await guarded(self._redis.smembers(self._keys(sale_id)[1]))]
            chosen = draw_winners(entries, seed, int(reply[2]))
            await self._call(sale_id, "award", entries_hash(entries), *chosen)
            log.info("draw of sale %d: %d entries, %d winners", sale_id, len(entries), len(chosen))
        return await self.get(sale_id)

    async def entries(self, sale_id: int) -> list[str]:
        """The canonical entry list (published once the draw closed)."""
        if (await self.get(sale_id)).seed is None:
            raise DrawNotDue(f"the draw of sale {sale_id} is still taking entries")
        members = await guarded(self._redis.smembers(self._keys(sale_id)[1]))
        return entry_list(text(u) for u in members)

    async def get(self, sale_id: int) -> Draw:
        """The draw's public state with Redis's clock."""
        key, ekey = self._keys(sale_id)[:2]
        async with self._redis.pipeline(transaction=False) as p:
            p.hgetall(key)
            p.scard(ekey)
            p.time()
            raw, count, (sec, usec) = await guarded(p.execute())
        if not raw:
            raise DrawNotFound(f"sale {sale_id} has no draw")
        m = {text(k): text(v) for k, v in raw.items()}
        revealed = m["state"] == "awarded"
        return Draw(
            sale_id, m["state"], int(m["winners"]), m["commit"], int(m["end_ms"]), int(count),
            m["seed"] if revealed else None, m.get("ehash"),
            tuple(w for w in m.get("won", "").split(",") if w),
            int(sec) * 1000 + int(usec) // 1000,
        )  # fmt: skip
