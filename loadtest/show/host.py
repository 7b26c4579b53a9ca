"""The show's host, over HTTP: sets up the stream and the sale, pins, opens, then audits."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from loadtest.show.api import ShowApi
from loadtest.show.recorder import Recorder
from loadtest.show.scenario import Scenario

#: How many seen orders are checked concurrently against the server after the run.
ORDER_CHECKS = 32


@dataclass
class ShowSetup:
    """The ids the set-up made."""

    stream_id: str
    product_id: int
    sale_id: int


class Host:
    """Acts with an admin (or host) token on one server."""

    def __init__(self, api: ShowApi, token: str, rec: Recorder) -> None:
        self.api = api
        self.token = token
        self.rec = rec

    async def setup(self, sc: Scenario, run: str) -> ShowSetup:
        """Create the stream, the product and its sale (scheduled; opened later)."""
        sid = f"show-{run}"
        await self.api.must("POST", "/api/streams", self.token, {"id": sid, "title": "Rehearsal"})
        product = await self.api.must(
            "POST", "/api/products", self.token,
            {"name": "Rehearsal lamp", "price_cents": sc.price_cents},
        )  # fmt: skip
        sale = await self.api.must(
            "POST", "/api/sales", self.token,
            {"product_id": product["id"], "quantity": sc.stock, "stream_id": sid,
             "per_user_limit": sc.per_user_limit, "hold_s": sc.hold_s,
             "duration_s": max(60, int(sc.duration_s * 2))},
        )  # fmt: skip
        return ShowSetup(sid, int(product["id"]), int(sale["id"]))

    async def existing(self, stream_id: str) -> ShowSetup:
        """A rehearsal's stream, which must exist (its host pins and sells; sale 0: any)."""
        await self.api.must("GET", f"/api/streams/{stream_id}", self.token)
        return ShowSetup(stream_id, 0, 0)

    async def pin(self, setup: ShowSetup) -> None:
        """Pin the product in the room (a failure is recorded, the show goes on)."""
        status, data, kind = await self.api.call(
            "POST", f"/api/streams/{setup.stream_id}/room/pin", self.token,
            {"product_id": setup.product_id},
        )  # fmt: skip
        if status != 200:
            self.rec.error(f"pin_{kind or status}", str(data)[:200])

    async def open_at(self, setup: ShowSetup, due_ns: int, countdown_s: int) -> None:
        """Open the sale at ``due_ns`` with a countdown; the viewers' events time the delivery."""
        await asyncio.sleep(max(0.0, (due_ns - time.monotonic_ns()) / 1e9))
        status, data, kind = await self.api.call(
            "POST", f"/api/sales/{setup.sale_id}/open", self.token, {"countdown_s": countdown_s}
        )
        self.rec.latency("open_call", due_ns)
        if status != 200:
            self.rec.error(f"open_{kind or status}", str(data)[:200])
        else:
            self.rec.count("sale_opened")

    async def metrics(self) -> dict[str, Any] | None:
        """The server's ``/metrics`` (text or JSON), or None when it has none or is down."""
        status, data, _ = await self.api.call("GET", "/metrics", self.token)
        if status != 200:
            return None
        return {"body": data if isinstance(data, dict) else str(data)[:20_000]}

    async def audit(self, sale_id: int, orders: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """The server's audit of the sale, and whether every order the run saw exists there."""
        status, data, kind = await self.api.call("GET", f"/api/sales/{sale_id}/audit", self.token)
        if kind or not isinstance(data, dict) or "figures" not in data:
            return {"ok": None, "oversold": None, "lost": None, "why": kind or f"status {status}"}
        fig = data["figures"]
        live = int(fig.get("reserved", 0)) + int(fig.get("paid", 0))
        oversold = max(0, live - int(fig.get("initial_stock", 0)), -int(fig.get("remaining", 0)))
        lost, unchecked = await self._missing(orders)
        return {
            "ok": bool(data.get("ok")) and not lost and not unchecked,
            "server_ok": bool(data.get("ok")),
            "oversold": oversold,
            "lost": len(lost),
            "lost_orders": lost[:50],
            "unchecked": unchecked,
            "orders_seen": len(orders),
            "checks": data.get("checks"),
            "figures": fig,
            "problems": data.get("problems"),
        }

    async def audit_all(
        self, sale_ids: list[int], orders: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """``audit`` of each sale (a rehearsal may hold several), summed; ``sales`` per sale."""
        if len(sale_ids) == 1:
            return await self.audit(sale_ids[0], orders)
        if not sale_ids:
            return {"ok": True, "oversold": 0, "lost": 0, "orders_seen": 0, "sales": {}}
        per = {
            sid: await self.audit(sid, {k: o for k, o in orders.items() if o.get("sale") == sid})
            for sid in sale_ids
        }
        oks = [a["ok"] for a in per.values()]
        return {
            "ok": None if None in oks else all(oks),
            "why": next((a["why"] for a in per.values() if "why" in a), None),
            "oversold": sum(a["oversold"] or 0 for a in per.values()),
            "lost": sum(a["lost"] or 0 for a in per.values()),
            "orders_seen": len(orders),
            "sales": per,
        }

    async def _missing(self, orders: dict[str, dict[str, Any]]) -> tuple[list[str], int]:
        """Orders the run was told about that the server does not know (and how many unknown)."""
        gate = asyncio.Semaphore(ORDER_CHECKS)
        lost: list[str] = []
        unchecked = 0

        async def one(oid: str) -> None:
            nonlocal unchecked
            async with gate:
                status, _, _ = await self.api.call("GET", f"/api/orders/{oid}", self.token)
            if status == 404:
                lost.append(oid)
            elif status != 200:
                unchecked += 1

        await asyncio.gather(*(one(o) for o in orders))
        return sorted(lost), unchecked
