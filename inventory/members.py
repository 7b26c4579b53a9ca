"""Store members and their points: an append-only ledger in SQL whose balance is a sum.

Points are never a counter that could drift: every change is a ledger line, unique per
(member, reason, ref) so a replay adds nothing. A spend takes the member's row lock first (an
UPDATE of its ``version``: a row lock on PostgreSQL, the write lock on SQLite) and only then
reads the balance, so concurrent spends are serialised and the balance never goes negative.
A refunded order's points are undone the same way, under the same lock. An order's points are
credited and undone as the persister writes it (``orders_written``, a ledger hook run right after);
``credit_paid_orders`` and ``settle_refunds`` are catch-up passes that read every order.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from sqlalchemy import Select, and_, case, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from inventory.database import Database
from inventory.errors import Conflict, InvalidInput
from inventory.models import Order, PointsEntry, Sale, StoreMember, Stream, sale_stream
from inventory.rehearsal import real_sale

#: Points earned per 100 cents paid (1% back); one point is worth one cent when spent.
CENTS_PER_POINT_EARNED = 100

#: The line that undoes each kind of order line: ``refund`` takes back what a refunded order
#: earned, ``unspend`` returns what was spent on an order that was refunded or never paid.
UNDO_REASON = {"order": "refund", "spend": "unspend"}
#: Order states (final) whose points lines are undone: a refund undoes both; an order that
#: ended unpaid only gets its spend back (a crash between the spend and the pay left it).
UNDONE_IN = {"order": ("refund",), "spend": ("refund", "expired", "cancelled")}


class NotAMember(Conflict):
    """The user has not joined this host's store."""

    code = "not_a_member"


class InsufficientPoints(Conflict):
    """The member's balance is smaller than the points asked for."""

    code = "insufficient_points"


@dataclass(frozen=True, slots=True)
class Membership:
    """A member of a host's store and their points balance."""

    host_id: str
    user_id: str
    joined_at_ms: int
    balance: int

    def to_json(self) -> dict[str, object]:
        """The API shape."""
        return {"host_id": self.host_id, "user_id": self.user_id,
                "joined_at_ms": self.joined_at_ms, "points": self.balance}  # fmt: skip


def _now_ms() -> int:
    return int(time.time() * 1000)


class Members:
    """Repository of store memberships and points."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def _insert(self, table: type) -> postgresql.Insert | sqlite.Insert:
        return (postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert)(table)

    async def join(self, host_id: str, user_id: str) -> Membership:
        """Join a host's store (one tap; joining again changes nothing)."""
        stmt = self._insert(StoreMember).values(
            host_id=host_id, user_id=user_id, joined_at_ms=_now_ms(), version=0
        )
        async with self._db.transaction() as s:
            await s.execute(stmt.on_conflict_do_nothing(index_elements=["host_id", "user_id"]))
        got = await self.membership(host_id, user_id)
        assert got is not None
        return got

    async def is_member(self, host_id: str, user_id: str) -> bool:
        """Whether the user has joined the host's store (one primary-key read)."""
        async with self._db.session() as s:
            return await s.get(StoreMember, (host_id, user_id)) is not None

    async def members_among(self, host_id: str, user_ids: Collection[str]) -> set[str]:
        """Those of ``user_ids`` who have joined the host's store (one read per 500)."""
        users = sorted(set(user_ids))
        found: set[str] = set()
        async with self._db.session() as s:
            for i in range(0, len(users), 500):
                rows = await s.scalars(
                    select(StoreMember.user_id).where(
                        StoreMember.host_id == host_id, StoreMember.user_id.in_(users[i : i + 500])
                    )
                )
                found.update(rows)
        return found

    async def joined_since(self, host_id: str, since_ms: int, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` members who joined the store at or after ``since_ms``, oldest first."""
        query = (
            select(StoreMember.user_id, StoreMember.joined_at_ms)
            .where(StoreMember.host_id == host_id, StoreMember.joined_at_ms >= since_ms)
            .order_by(StoreMember.joined_at_ms)
            .limit(limit)
        )
        async with self._db.session() as s:
            return [(u, int(at)) for u, at in (await s.execute(query)).tuples()]

    async def membership(self, host_id: str, user_id: str) -> Membership | None:
        """The membership with its balance, or None."""
        async with self._db.session() as s:
            row = await s.get(StoreMember, (host_id, user_id))
            if row is None:
                return None
            balance = await s.scalar(self._balance_query(host_id, user_id))
            return Membership(host_id, user_id, row.joined_at_ms, int(balance or 0))

    async def count(self, host_id: str) -> int:
        """How many members a host's store has."""
        async with self._db.session() as s:
            n = await s.scalar(select(func.count()).where(StoreMember.host_id == host_id))
            return int(n or 0)

    @staticmethod
    def _balance_query(host_id: str, user_id: str) -> Select[tuple[int]]:
        return select(func.coalesce(func.sum(PointsEntry.delta), 0)).where(
            PointsEntry.host_id == host_id, PointsEntry.user_id == user_id
        )

    async def credit(self, host_id: str, user_id: str, points: int, reason: str, ref: str) -> bool:
        """Add points once per (member, reason, ref); False when that line already exists."""
        if points <= 0:
            raise InvalidInput("points must be positive")
        stmt = self._insert(PointsEntry).values(
            host_id=host_id, user_id=user_id, delta=points, reason=reason, ref=ref, at_ms=_now_ms()
        )
        stmt = stmt.on_conflict_do_nothing(index_elements=["host_id", "user_id", "reason", "ref"])
        async with self._db.transaction() as s:
            if await s.get(StoreMember, (host_id, user_id)) is None:
                raise NotAMember(f"{user_id} is not a member of {host_id}'s store")
            result = await s.execute(stmt)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    @staticmethod
    async def _lock(s: AsyncSession, host_id: str, user_id: str) -> bool:
        """Take the member's row lock (False: no such member); points reads come after it."""
        locked = await s.execute(
            update(StoreMember)
            .where(StoreMember.host_id == host_id, StoreMember.user_id == user_id)
            .values(version=StoreMember.version + 1)
        )
        return bool(locked.rowcount)  # type: ignore[attr-defined]

    async def spend(self, host_id: str, user_id: str, points: int, ref: str) -> int:
        """Spend points once per ``ref`` (e.g. an order id); returns the balance after it."""
        if not 1 <= points <= 10**9:
            raise InvalidInput("points must be 1..10^9")
        async with self._db.transaction() as s:
            # The member's lock before the balance read: concurrent spends wait here in turn.
            if not await self._lock(s, host_id, user_id):
                raise NotAMember(f"{user_id} is not a member of {host_id}'s store")
            balance = int(await s.scalar(self._balance_query(host_id, user_id)) or 0)
            done = await s.scalar(
                select(PointsEntry.delta).where(
                    PointsEntry.host_id == host_id, PointsEntry.user_id == user_id,
                    PointsEntry.reason == "spend", PointsEntry.ref == ref,
                )
            )  # fmt: skip
            if done is not None:  # a retry of this very spend
                return balance
            if balance < points:
                raise InsufficientPoints(f"{balance} points, {points} asked")
            s.add(PointsEntry(host_id=host_id, user_id=user_id, delta=-points, reason="spend",
                              ref=ref, at_ms=_now_ms()))  # fmt: skip
            return balance - points

    @staticmethod
    def _credit_query() -> Select[tuple[str, str, str, int]]:
        credited = and_(
            PointsEntry.host_id == Stream.host_id, PointsEntry.user_id == Order.user_id,
            PointsEntry.reason == "order", PointsEntry.ref == Order.id,
        )  # fmt: skip
        member = and_(StoreMember.host_id == Stream.host_id, StoreMember.user_id == Order.user_id)
        return (
            select(Stream.host_id, Order.user_id, Order.id, Order.qty * Order.unit_price_cents)
            .join(Sale, Sale.id == Order.sale_id)
            .join(Stream, Stream.id == sale_stream())  # a won lot's order earns points too
            .join(StoreMember, member)
            .outerjoin(PointsEntry, credited)
            .where(Order.state == "paid", Order.created_at_ms >= StoreMember.joined_at_ms)
            .where(real_sale())  # a rehearsal's orders earn no points
            .where(Order.qty * Order.unit_price_cents >= CENTS_PER_POINT_EARNED)
            .where(PointsEntry.id.is_(None))
        )

    async def credit_paid_orders(self, limit: int = 500) -> int:
        """Catch up: credit members for paid orders not yet credited (made since they joined).

        Orders are credited as the persister writes them (``orders_written``); this reads every
        order, so it only runs as a rare catch-up.
        """
        async with self._db.session() as s:
            rows = list(await s.execute(self._credit_query().limit(limit)))
        n = 0
        for host_id, user_id, order_id, cents in rows:
            points = int(cents) // CENTS_PER_POINT_EARNED
            if points > 0 and await self.credit(host_id, user_id, points, "order", order_id):
                n += 1
        return n

    async def orders_written(self, session: AsyncSession, order_ids: Sequence[str]) -> None:
        """Credit and undo the points of orders just written (in ``session``'s transaction)."""
        for i in range(0, len(order_ids), 500):
            chunk = order_ids[i : i + 500]
            for host_id, user_id, order_id, cents in await session.execute(
                self._credit_query().where(Order.id.in_(chunk))
            ):
                stmt = self._insert(PointsEntry).values(
                    host_id=host_id, user_id=user_id, delta=int(cents) // CENTS_PER_POINT_EARNED,
                    reason="order", ref=order_id, at_ms=_now_ms(),
                )  # fmt: skip
                await session.execute(stmt.on_conflict_do_nothing(
                    index_elements=["host_id", "user_id", "reason", "ref"]
                ))  # fmt: skip
            member = and_(
                StoreMember.host_id == Stream.host_id, StoreMember.user_id == Order.user_id
            )
            ended = (
                select(Stream.host_id, Order.user_id, Order.id)
                .join(Sale, Sale.id == Order.sale_id)
                .join(Stream, Stream.id == sale_stream())
                .join(StoreMember, member)
                .where(Order.id.in_(chunk), Order.state.in_(UNDONE_IN["spend"]))
            )
            for host_id, user_id, order_id in list(await session.execute(ended)):
                await self._undo(session, host_id, user_id, order_id)

    async def settle_refunds(self, limit: int = 500) -> int:
        """Undo the points lines of refunded (or never paid) orders; returns the lines added.

        Read from SQL, like the accrual: an order's state there is final once ``refund``,
        ``expired`` or ``cancelled``, so a replayed persister batch changes nothing, and a credit
        that lands after the refund (the accrual raced it) is found on a later pass.
        """
        line, undo = PointsEntry, aliased(PointsEntry)
        undone = and_(
            undo.host_id == line.host_id, undo.user_id == line.user_id, undo.ref == line.ref,
            undo.reason == case(UNDO_REASON, value=line.reason),
        )  # fmt: skip
        due = [
            and_(line.reason == reason, Order.state.in_(states))
            for reason, states in UNDONE_IN.items()
        ]
        query = (
            select(line.host_id, line.user_id, line.ref)
            .join(Order, Order.id == line.ref)
            .outerjoin(undo, undone)
            .where(or_(*due), undo.id.is_(None))
            .distinct()
            .limit(limit)
        )
        async with self._db.session() as s:
            rows = list(await s.execute(query))
        n = 0
        for host_id, user_id, order_id in rows:
            n += await self.undo_order(host_id, user_id, order_id)
        return n

    async def undo_order(self, host_id: str, user_id: str, order_id: str) -> int:
        """Return the points spent on an order and take back what it earned, each once.

        The spend comes back first, then the reversal takes what the order earned but at most
        the balance: points already spent elsewhere are not clawed back below zero (the
        reversal's line records what was taken; docs/social.md). Nothing is undone for an order
        in no state of ``UNDONE_IN``. Returns the lines added.
        """
        async with self._db.transaction() as s:
            return await self._undo(s, host_id, user_id, order_id)

    async def _undo(self, s: AsyncSession, host_id: str, user_id: str, order_id: str) -> int:
        if not await self._lock(s, host_id, user_id):
            return 0
        got = await s.execute(
            select(PointsEntry.reason, PointsEntry.delta).where(
                PointsEntry.host_id == host_id, PointsEntry.user_id == user_id,
                PointsEntry.ref == order_id,
            )
        )  # fmt: skip
        lines = dict(got.tuples().all())
        state = await s.scalar(select(Order.state).where(Order.id == order_id))
        balance = int(await s.scalar(self._balance_query(host_id, user_id)) or 0)
        due = {r for r, states in UNDONE_IN.items() if r in lines and state in states}
        due -= {r for r, undo in UNDO_REASON.items() if undo in lines}
        added: list[tuple[str, int]] = []
        if "spend" in due:
            added.append(("unspend", -lines["spend"]))
            balance -= lines["spend"]
        if "order" in due:
            added.append(("refund", -min(lines["order"], max(balance, 0))))
        for reason, delta in added:
            stmt = self._insert(PointsEntry).values(
                host_id=host_id, user_id=user_id, delta=delta, reason=reason, ref=order_id,
                at_ms=_now_ms(),
            )  # fmt: skip
            await s.execute(stmt.on_conflict_do_nothing(
                index_elements=["host_id", "user_id", "reason", "ref"]
            ))  # fmt: skip
        return len(added)
