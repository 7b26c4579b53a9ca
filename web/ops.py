"""Dashboard JSON: the studio's live stats of one show and the ops overview (admin).

Registered by ``setup_ops`` (one line in web/app.py). The figures come from domain queries
(chat.figures, flashsale.backlog, inventory.reports); this module only gathers and shapes them,
and keeps a 15-minute history of a few rates so the ops charts have a past when they open.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from chat.figures import RoomFigures
from flashsale.backlog import active_sale_ids, backlog
from inventory.catalog import StreamView
from inventory.ledger import Ledger
from inventory.rehearsal import rehearsal_sales
from inventory.reports import Reports
from inventory.tasks import cancel_all, supervise
from web.auth import Role
from web.errors import ForbiddenError
from web.http import require
from web.keys import CATALOG, DATABASE, REDIS, RELAY, ROOM_HUB, SALES, SETTINGS

log = logging.getLogger("livesell.ops")

routes = web.RouteTableDef()

#: One chart point every SAMPLE_S seconds, kept for HISTORY_S.
SAMPLE_S = 2.0
HISTORY_S = 15 * 60
#: Sales shown on the ops page and in the studio (newest first).
SALES_SHOWN = 12
#: Shows the ops page offers to chart (newest first).
SHOWS_LISTED = 30


class LoopLag:
    """Measures how late the event loop wakes a sleeper: the lag every request also suffers."""

    def __init__(self, interval_s: float = 0.25) -> None:
        self._interval = interval_s
        self._recent: deque[float] = deque(maxlen=int(10 / interval_s))

    @property
    def ms(self) -> float:
        """The worst lag over the last ~10 s, in milliseconds."""
        return round(max(self._recent, default=0.0) * 1000, 1)

    async def run(self) -> None:
        """Sleep, measure the oversleep, repeat (until cancelled)."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(self._interval)
            self._recent.append(max(0.0, loop.time() - start - self._interval))


@dataclass(slots=True)
class Sample:
    """One chart point."""

    at_ms: int
    buys_per_s: float
    viewers: int
    chat_per_min: float


class Pulse:
    """Samples buys/s, viewers and chat rate every few seconds into a 15-minute ring."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self.samples: deque[Sample] = deque(maxlen=int(HISTORY_S / SAMPLE_S))
        self._last_orders: tuple[float, int] | None = None

    async def run(self) -> None:
        """Take a sample every SAMPLE_S seconds; a failed sample is logged and skipped."""
        while True:
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis or the database away: a gap in the charts
                log.warning("ops sample failed (%s)", type(exc).__name__)
            await asyncio.sleep(SAMPLE_S)

    async def sample(self) -> Sample:
        """Measure now and append the point."""
        app = self._app
        # A rehearsal's audience and buys may be synthetic: the charts show real shows only.
        live = [
            s.id
            for s in await app[CATALOG].list_streams()
            if s.status == "live" and not s.rehearsal
        ]
        figures = await app[ROOM_HUB].figures(live) if live else {}
        prefix = app[SETTINGS].redis_prefix
        practice = await rehearsal_sales(app[DATABASE], await active_sale_ids(app[REDIS], prefix))
        b = await backlog(app[REDIS], prefix, practice)
        now = time.monotonic()
        rate = 0.0
        if self._last_orders is not None:
            then, orders = self._last_orders
            # A sale leaving the active set takes its orders out of the sum: never negative.
            rate = max(0, b.orders_created - orders) / max(now - then, 1e-3)
        self._last_orders = (now, b.orders_created)
        point = Sample(
            at_ms=int(time.time() * 1000),
            buys_per_s=round(rate, 2),
            viewers=sum(f.viewers for f in figures.values()),
            chat_per_min=round(sum(f.chat_per_min for f in figures.values()), 1),
        )
        self.samples.append(point)
        return point

    def series(self) -> dict[str, list[float]]:
        """The ring as parallel arrays (what a chart wants)."""
        s = list(self.samples)
        return {
            "t": [p.at_ms for p in s],
            "buys_per_s": [p.buys_per_s for p in s],
            "viewers": [p.viewers for p in s],
            "chat_per_min": [p.chat_per_min for p in s],
        }


LOOP_LAG = web.AppKey("ops_loop_lag", LoopLag)
PULSE = web.AppKey("ops_pulse", Pulse)


async def ops_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the loop-lag probe and the chart sampler for the app's lifetime."""
    lag, pulse = LoopLag(), Pulse(app)
    app[LOOP_LAG], app[PULSE] = lag, pulse
    tasks = [supervise(lag.run(), "ops.looplag"), supervise(pulse.run(), "ops.pulse")]
    try:
        yield
    finally:
        await cancel_all(tasks)


def setup_ops(app: web.Application) -> None:
    """Register the dashboard routes and their background probes."""
    app.cleanup_ctx.append(ops_ctx)
    app.add_routes(routes)


# -- handlers --------------------------------------------------------------------------------


async def _sales_with_totals(app: web.Application, stream_id: str | None) -> list[dict[str, Any]]:
    """The newest sales (of one stream, or all) with live stock and order totals by state."""
    records = await Ledger(app[DATABASE]).recent_sales(SALES_SHOWN, stream_id)
    totals = await Reports(app[DATABASE]).by_sale([r.id for r in records])
    out = []
    for rec in records:
        sale = (await app[SALES].get_sale(rec.id)).to_json()
        # A lot's sale has no stream_id (no sale card offers it): ops names its show all the same.
        out.append({**sale, **totals[rec.id].to_json(), "lot_stream_id": rec.lot_stream_id})
    return out


async def hosted_stream(request: web.Request, what: str) -> StreamView:
    """The path's stream, when the caller is its host or an admin (else 403; 404 if none)."""
    who = require(request, Role.ADMIN, Role.HOST)
    stream = await request.app[CATALOG].get_stream(request.match_info["stream_id"])
    if stream is None:
        raise web.HTTPNotFound(reason="stream not found")
    if who.role != Role.ADMIN and who.user_id != stream.host_id:
        raise ForbiddenError(f"only the stream's host or an admin may see its {what}")
    return stream


@routes.get("/api/streams/{stream_id}/stats")
async def stream_stats(request: web.Request) -> web.Response:
    """A show's live figures for its host (or an admin): room, orders, GMV and its sales."""
    stream = await hosted_stream(request, "stats")
    stream_id = stream.id
    room = (await request.app[ROOM_HUB].figures([stream_id]))[stream_id]
    orders = await Reports(request.app[DATABASE]).by_stream(stream_id)
    return web.json_response(
        {
            "stream_id": stream_id,
            "status": stream.status,
            # A rehearsal's studio shows its practice orders; no real figure counts them.
            "rehearsal": stream.rehearsal,
            **room.to_json(),
            **orders.to_json(),
            "sales": await _sales_with_totals(request.app, stream_id),
        }
    )


async def _timed(coro: Any) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        await asyncio.wait_for(coro, 2)
    except Exception as exc:
        return {"ok": False, "error": type(exc).__name__}
    return {"ok": True, "ms": round((time.perf_counter() - start) * 1000, 1)}


def _stream_row(stream: StreamView, figures: Any, relay: Any) -> dict[str, Any]:
    metrics = relay.metrics(stream.id) if relay is not None else None
    return {
        "id": stream.id,
        "title": stream.title,
        "host_id": stream.host_id,
        "status": stream.status,
        "rehearsal": stream.rehearsal,
        **figures.to_json(),
        # The relay knows only the streams this process relays; others show no bitrate.
        "bitrate_bps": None if metrics is None else metrics.get("bitrate_in_bps"),
        "relay_viewers": None if metrics is None else metrics.get("viewers"),
    }


async def _or(coro: Any, default: Any, what: str) -> Any:
    """The coroutine's result, or ``default`` when its backing service fails: the dashboard is
    most needed exactly when something is down, so one failing part must not blank the rest."""
    try:
        return await asyncio.wait_for(coro, 3)
    except Exception as exc:
        log.warning("ops overview: %s unavailable (%s)", what, type(exc).__name__)
        return default


def _show_row(s: StreamView) -> dict[str, Any]:
    return {"id": s.id, "title": s.title, "status": s.status, "rehearsal": s.rehearsal}


@routes.get("/api/ops/overview")
async def overview(request: web.Request) -> web.Response:
    """Health, live streams, recent sales and 15 minutes of chart history (admin)."""
    require(request, Role.ADMIN)
    app = request.app
    settings = app[SETTINGS]
    every = await _or(app[CATALOG].list_streams(), [], "streams")
    streams = [s for s in every if s.status == "live"]
    figures = await _or(app[ROOM_HUB].figures([s.id for s in streams]), {}, "room figures")
    relay = app.get(RELAY)
    b = await _or(backlog(app[REDIS], settings.redis_prefix), None, "persister backlog")
    health = {
        "redis": await _timed(app[REDIS].ping()),
        "database": await _timed(app[DATABASE].ping()),
        "workers": settings.workers,
        "persister": {
            "mode": settings.persister,
            "unpersisted_events": None if b is None else b.unpersisted_events,
            "active_sales": None if b is None else b.active_sales,
        },
        "loop_lag_ms": app[LOOP_LAG].ms,
        "sales_by_state": await _or(Reports(app[DATABASE]).sales_by_state(), {}, "sale counts"),
        "room": app[ROOM_HUB].stats(),
    }
    unknown = RoomFigures(0, 0, 0.0)
    return web.json_response(
        {
            "server_time_ms": int(time.time() * 1000),
            "health": health,
            "streams": [_stream_row(s, figures.get(s.id, unknown), relay) for s in streams],
            # The newest shows, live or not, for the page's analytics picker.
            "shows": [_show_row(s) for s in every[:SHOWS_LISTED]],
            "sales": await _or(_sales_with_totals(app, None), [], "sales"),
            "series": app[PULSE].series(),
        }
    )
