"""The audience of one generator process: joins, churn, chat, reactions, taps, pay and cancel.

Every action is an intent with a due time on one schedule (a heap walked by one task): the
open model. A late server (or a late generator) shows up as latency, never as fewer arrivals.
All viewers of a process receive the same broadcast bytes, so each distinct frame is decoded
once and each viewer's share of the work is a dictionary lookup and a few comparisons.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import random
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from loadtest.chat_load import WsClient
from loadtest.show.api import ShowApi
from loadtest.show.completeness import Completeness
from loadtest.show.frames import FrameBook
from loadtest.show.plan import CrowdPlan
from loadtest.show.recorder import Recorder
from loadtest.show.scenario import join_times, rate_times
from loadtest.show.viewer import Viewer

#: How often bulk arrivals become latency samples.
FLUSH_S = 0.2
#: Sale phases whose event tells a viewer that buying starts (now or after the countdown).
OPEN_PHASES = ("opened",)
#: Events applied in ``seq`` order (an ``ack`` carries a seq too, but of the event it caused).
SEQUENCED = frozenset(
    (
        "chat",
        "deleted",
        "pinned",
        "unpinned",
        "announcement",
        "slow_mode",
        "moderation",
        "stream",
        "sale",
    )
)


class Crowd:
    """Runs a ``CrowdPlan``; what it sees goes to a ``Recorder`` and a ``Completeness``."""

    def __init__(self, plan: CrowdPlan, rec: Recorder, comp: Completeness, api: ShowApi) -> None:
        self.plan = plan
        self.sc = plan.scenario
        self.rec = rec
        self.comp = comp
        self.api = api
        self.rng = random.Random(self.sc.seed * 7919 + plan.worker)
        parts = urlsplit(self.sc.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.viewers: list[Viewer] = []
        self.live = 0
        self.running = True
        self._heap: list[tuple[int, int, Callable[[int], None]]] = []
        self._tie = itertools.count()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self.chat_marker = f"{plan.marker}:"
        self.frames = FrameBook(rec, comp, self.chat_marker, plan.sale_id)

    # -- the schedule ----------------------------------------------------------------------

    def at(self, due_ns: int, action: Callable[[int], None]) -> None:
        """Run ``action(due_ns)`` at ``due_ns`` (monotonic clock)."""
        heapq.heappush(self._heap, (due_ns, next(self._tie), action))
        self._wake.set()

    def _plan(self) -> None:
        sc, plan, origin = self.sc, self.plan, self.plan.origin_ns
        rng = random.Random(sc.seed)  # the same on every worker: ids and times agree
        joins = join_times(sc, rng)
        for idx, t in enumerate(joins):
            # Draw for every viewer, so every worker's generator stays in step.
            buyer, offset = rng.random() < sc.buy_share, rng.random()
            token = plan.tokens.get(idx)
            if token is None:
                continue
            v = Viewer(self, idx, token, buyer, offset)
            self.viewers.append(v)
            self.at(origin + int(t * 1e9), lambda due, v=v: self._join(v, due))
        spans, t = [], 0.0
        for st in sc.stages:
            spans.append((t, t + st.duration_s, st.chat_rate))
            t += st.duration_s
        for n, ts in enumerate(rate_times(spans, sc.arrivals, rng)):
            self.at(origin + int(ts * 1e9), lambda due, n=n: self._chat(n, due))
        spans = []
        t = 0.0
        for st in sc.stages:
            spans.append((t, t + st.duration_s, st.react_rate / plan.workers))
            t += st.duration_s
        for ts in rate_times(spans, sc.arrivals, self.rng):
            self.at(origin + int(ts * 1e9), self._react)
        ramp = sc.stages[0].duration_s
        leaves = int(len(self.viewers) * sc.churn_per_min * (sc.duration_s - ramp) / 60)
        quiet = max(ramp, sc.duration_s - 5)
        for _ in range(leaves):
            ts = ramp + self.rng.random() * max(0.0, quiet - ramp)
            self.at(origin + int(ts * 1e9), self._leave)
        if plan.sale_id:
            self.at(plan.opens_ns, self._expect_open)

    async def run(self) -> None:
        """Walk the schedule until the show's end, then let stragglers arrive and hang up."""
        self._plan()
        flusher = asyncio.get_running_loop().create_task(self._flush_often(), name="show-flush")
        try:
            await self._walk()
        finally:
            flusher.cancel()
            self.frames.flush()

    async def _flush_often(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            self.frames.flush()

    async def _walk(self) -> None:
        end = self.plan.end_ns
        while self._heap and self.running:
            due = self._heap[0][0]
            now = time.monotonic_ns()
            if due > now:
                # Wake at most every 1 ms: a late wake-up is latency, measured from `due`.
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), max(0.001, (due - now) / 1e9))
                except TimeoutError:
                    pass
                continue
            _, _, action = heapq.heappop(self._heap)
            action(due)
            if due > end and not self._tasks:
                break
        if time.monotonic_ns() < end:
            await asyncio.sleep((end - time.monotonic_ns()) / 1e9)
        await asyncio.sleep(self.sc.drain_s)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=30)
        self.running = False
        self.rec.gauge("connected", self.live)
        for v in self.viewers:
            if v.sock is not None:
                v.leaving = True
                v.sock.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- joining and leaving ---------------------------------------------------------------

    def _join(self, v: Viewer, due: int) -> None:
        if self.running and v.sock is None:
            self._spawn(self._connect(v, due))

    async def _connect(self, v: Viewer, due: int) -> None:
        path = f"/ws/rooms/{self.plan.stream_id}?token={v.token}"
        v.rejoin = v.seq > 0
        if v.rejoin:
            path += f"&since={v.seq}"
        v.join_ns = due
        loop = asyncio.get_running_loop()
        try:
            _, sock = await loop.create_connection(
                lambda: WsClient(f"{self.host}:{self.port}", path, v.on_frame), self.host, self.port
            )
            await asyncio.wait_for(sock.ready, 30)
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.rec.error("connect_failed", f"{type(exc).__name__}: {exc}")
            self._retry(v)
            return
        self.rec.latency("connect", due)
        v.sock, v.leaving = sock, False
        sock.closed.add_done_callback(lambda f, v=v, s=sock: self._closed(v, s, f.result()))

    def _closed(self, v: Viewer, sock: WsClient, code: int) -> None:
        if v.sock is not sock:
            return
        v.sock = None
        if v.live:
            v.live = False
            self.live -= 1
            self.rec.count("leaves")
            self.rec.gauge("connected", self.live)
        if not v.leaving:
            self.rec.error(f"socket_closed_{code}", f"viewer {v.idx}")
            self._retry(v)

    def _retry(self, v: Viewer) -> None:
        # Back off (1 s, 2 s, .. 5 s, with jitter) so a dead server is not hammered.
        if not self.running:
            return
        v.retries += 1
        wait = min(5.0, float(v.retries)) * (0.5 + self.rng.random())
        self.at(time.monotonic_ns() + int(wait * 1e9), lambda due, v=v: self._join(v, due))

    def _leave(self, due: int) -> None:
        # Churn: a live viewer that is not about to buy leaves, and comes back in 1-5 s.
        for _ in range(20):
            v = self.rng.choice(self.viewers) if self.viewers else None
            if v is not None and v.live and v.sock is not None and not v.buyer:
                break
        else:
            return
        v.leaving = True
        v.sock.close()
        back = due + int((1 + 4 * self.rng.random()) * 1e9)
        self.at(back, lambda d, v=v: self._join(v, d))

    # -- sending ---------------------------------------------------------------------------

    def _live_viewer(self) -> Viewer | None:
        for _ in range(20):
            v = self.rng.choice(self.viewers)
            if v.live and v.sock is not None:
                return v
        return None

    def _chat(self, n: int, due: int) -> None:
        # Every process expects message n from its live viewers; only its owner sends it.
        self.comp.sent(f"c{n}", due, self.live)
        if n % self.plan.workers != self.plan.worker or not self.viewers:
            return
        v = self._live_viewer()
        if v is None or v.sock is None:
            self.rec.count("chats_unsent")
            return
        v.sock.send_event({"type": "chat", "text": f"{self.chat_marker}{n}:{due}", "ref": n})
        self.rec.count("chats_sent")

    def _react(self, due: int) -> None:
        v = self._live_viewer() if self.viewers else None
        if v is not None and v.sock is not None:
            v.sock.send_event({"type": "react", "kind": self.rng.choice(("like", "heart", "fire"))})
            self.rec.count("reactions_sent")

    def _expect_open(self, due: int) -> None:
        self.comp.sent("open", due, self.live)

    def _tap(self, v: Viewer, due: int, sale_id: int) -> None:
        if v.sock is None or not v.live:
            self.rec.count("taps_offline")
            return
        v.tap_ns = due
        key = f"{self.plan.marker}-{sale_id}-{v.idx}"
        v.sock.send_event({"type": "buy", "sale_id": sale_id, "key": key, "ref": f"b{v.idx}"})
        self.rec.count("taps")

    # -- receiving -------------------------------------------------------------------------

    def on_frame(self, v: Viewer, payload: bytes, now: int) -> None:
        """Handle one frame for ``v``."""
        frame = self.frames.get(payload)
        if frame is None:
            return
        if frame.plain and v.live and frame.first_seq > v.seq:
            # The common case: new chat and ephemeral events, the same for every viewer.
            if frame.last_seq:
                v.seq = frame.last_seq
            self.frames.arrived(frame, now)
            return
        for ev in frame.events:
            kind = ev.get("type")
            seq = ev.get("seq")
            if seq is not None and kind in SEQUENCED:
                if seq <= v.seq:
                    continue  # already applied (a replay overlapping what we had)
                v.seq = seq
            if kind == "chat":
                text = ev.get("text", "")
                if v.live and text.startswith(self.chat_marker):
                    n, _, sent = text[len(self.chat_marker) :].partition(":")
                    self.frames.arrived_one(f"c{n}", int(sent), now)
            elif kind == "sale":
                if ev.get("phase") in OPEN_PHASES or (ev.get("sale") or {}).get("state") == "open":
                    self._sale_opened(v, ev.get("sale") or {}, now)
            elif kind in ("snapshot", "resumed"):
                self._arrived(v, ev, now)
            elif kind == "buy_result":
                self._bought(v, ev, now)
            elif kind == "error":
                self._error(v, ev, now)

    def _arrived(self, v: Viewer, ev: dict[str, Any], now: int) -> None:
        if ev["type"] == "snapshot":
            v.seq = int(ev.get("seq", 0))
            sale = ev.get("sale") or {}
            if self._wants(sale.get("id")) and sale.get("state") in ("countdown", "open"):
                self._sale_opened(v, sale, now, delivered=False)
        if v.live:
            return
        v.live, v.retries = True, 0
        self.live += 1
        self.rec.count("joins", now_ns=now)
        self.rec.gauge("connected", self.live, now)
        self.rec.latency("rejoin" if v.rejoin else "snapshot", v.join_ns, now)
        if v.rejoin:
            self.rec.count("resumed" if ev["type"] == "resumed" else "resynced")

    def _sale_opened(
        self, v: Viewer, sale: dict[str, Any], now: int, delivered: bool = True
    ) -> None:
        sale_id = int(sale.get("id", self.plan.sale_id))
        if v.last_sale == sale_id or not self._wants(sale_id):
            return
        v.last_sale = sale_id
        if delivered and v.live and self.plan.sale_id:  # a rehearsal's host opens unplanned
            self.rec.latency("sale_open", self.plan.opens_ns, now)
            self.comp.arrived("open", self.plan.opens_ns, now)
        if v.buyer:
            wait_ms = max(0, int(sale.get("starts_at_ms", 0)) - int(sale.get("server_time_ms", 0)))
            tap = now + wait_ms * 1_000_000 + int(v.tap_offset_s * 1e9)
            self.at(tap, lambda due, v=v, s=sale_id: self._tap(v, due, s))

    def _wants(self, sale_id: Any) -> bool:
        """The show's own sale, or in a rehearsal (sale 0) any sale the host opens."""
        return self.plan.sale_id == 0 or sale_id == self.plan.sale_id

    def _bought(self, v: Viewer, ev: dict[str, Any], now: int) -> None:
        self.rec.latency("buy", v.tap_ns, now)
        self.rec.count("buys", now_ns=now)
        order = ev.get("order") or {}
        if "remaining" in ev:
            self.rec.gauge("stock", ev["remaining"], now)
        oid = str(order.get("id", ""))
        if not oid or ev.get("duplicate"):
            return
        self.rec.count("orders", now_ns=now)
        self.rec.orders[oid] = {
            "user": order.get("user_id"), "sale": order.get("sale_id"), "viewer": v.idx,
            "state": "reserved",
        }  # fmt: skip
        roll = self.rng.random()
        sc = self.sc
        if roll < sc.pay_share + sc.cancel_share:
            action = "pay" if roll < sc.pay_share else "cancel"
            due = now + int((0.2 + self.rng.random()) * 1e9)
            self.at(due, lambda d, oid=oid, a=action, v=v: self._spawn(self._settle(v, oid, a, d)))
        else:
            self.rec.count("holds_left_to_expire")

    async def _settle(self, v: Viewer, oid: str, action: str, due: int) -> None:
        status, data, kind = await self.api.call("POST", f"/api/orders/{oid}/{action}", v.token)
        self.rec.latency("pay", due)
        if status == 200:
            self.rec.orders[oid]["state"] = "paid" if action == "pay" else "cancelled"
            self.rec.count(f"{action}_ok")
        else:
            code = (
                kind or (data or {}).get("error", status)
                if isinstance(data, dict) or kind
                else status
            )
            self.rec.error(f"{action}_{code}", f"order {oid}")

    def _error(self, v: Viewer, ev: dict[str, Any], now: int) -> None:
        code = str(ev.get("code"))
        ref = ev.get("ref")
        if isinstance(ref, str) and ref.startswith("b"):
            self.rec.latency("buy", v.tap_ns, now)
            self.rec.count("buys", now_ns=now)
            self.rec.count(f"buy_{code}")
            if code not in ("sold_out", "limit_reached"):
                self.rec.error(f"buy_{code}", str(ev.get("message", ""))[:100])
            return
        self.rec.error(f"ws_{code}", str(ev.get("message", ""))[:100])
