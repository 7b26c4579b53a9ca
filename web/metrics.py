"""Prometheus metrics: the series, how the domain's counters reach them, and ``GET /metrics``.

With several workers (``livesell serve --workers N``) every worker writes its series to files in
``PROMETHEUS_MULTIPROC_DIR`` (prometheus-client's multiprocess mode; the supervisor sets the
variable before the workers start), and whichever worker answers a scrape sums them all. So:

- counted events (requests, buys, Lua calls, expiries) are counted where they happen;
- a process's own state (room sockets, relay viewers) is copied into gauges twice a second by
  a supervised sampler, which also measures event-loop lag, and once more on each scrape;
- the sales' backlog in Redis is the same for every worker, so the worker answering a scrape
  reads it then (``livemostrecent``: the freshest value wins).
"""

from __future__ import annotations

import asyncio
import gc
import glob
import logging
import os
import shutil
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any, Final

from aiohttp import web
from aiohttp.web_urldispatcher import AbstractResource
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from redis.asyncio import Redis

from chat.hub import Hub
from flashsale.backlog import backlog
from inventory.tasks import cancel_all, supervise
from stream.relay import Relay
from web.keys import METRICS, REDIS, RELAY, ROOM_HUB, SETTINGS

log = logging.getLogger("livesell.metrics")

#: prometheus-client's own switch into multiprocess mode (read by it when first imported).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_GC_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
_LUA_BUCKETS = (0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
#: A process's own state, summed over the live workers.
_PER_PROCESS: Final = "livesum"
#: The same Redis state read by whichever worker was scraped: the freshest value wins.
_SHARED: Final = "livemostrecent"
#: The 4-byte "bytes used" count and padding every series file starts with once sized.
_FILE_HEADER = 8
#: Publish to socket write: about a millisecond on a quiet host, the batch window (50 ms) and
#: the flush's cost (tens of ms with thousands of local sockets) on a busy one.
_DELIVERY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def metrics_dir(data_dir: Path) -> Path:
    """Where the workers of one ``livesell serve --workers N`` write their series."""
    return data_dir / "metrics"


def prepare_metrics_dir(data_dir: Path) -> dict[str, str]:
    """Empty the series directory of a previous run; the environment the workers need."""
    path = metrics_dir(data_dir).resolve()
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return {MULTIPROC_ENV: str(path)}


def worker_exited(data_dir: Path, pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay: they are history)."""
    mark_process_dead(pid, str(metrics_dir(data_dir).resolve()))


class SeriesFiles:
    """prometheus-client's MultiProcessCollector, skipping files not yet sized.

    prometheus-client creates a worker's series file and only then sizes it, and reading a file
    in that window fails the whole scrape (prometheus/client_python issue 1199): every scrape
    while a worker starts, and every scrape forever once a worker is killed in that window.
    """

    def __init__(self, path: str) -> None:
        self._path = path

    def collect(self) -> Iterable[Metric]:
        """The merged series of every readable file."""
        files = []
        for path in glob.glob(os.path.join(self._path, "*.db")):
            try:
                if os.path.getsize(path) >= _FILE_HEADER:
                    files.append(path)
            except FileNotFoundError:  # a live gauge of a worker just marked dead
                continue
        return MultiProcessCollector.merge(files, accumulate=True)


class Metrics:
    """Every livesell series; the sale's ``BuyMeter`` and the room's ``FanoutMeter``."""

    def __init__(self) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROC_ENV))
        # One process: a registry of this app's own (tests build many apps in one process).
        # Several: series go to the shared files, and a scrape reads those files.
        own = None if self.multiprocess else CollectorRegistry()
        self.http = Histogram(
            "livesell_http_request_duration_seconds",
            "HTTP requests by route (its pattern), method and status, with their latency.",
            ["route", "method", "status"], buckets=_LATENCY_BUCKETS, registry=own,
        )  # fmt: skip
        self.buys = Counter(
            "livesell_buys", "Buy attempts that reached the sale service, by outcome.",
            ["outcome"], registry=own,
        )  # fmt: skip
        self.lua = Histogram(
            "livesell_buy_lua_call_seconds", "buy.lua calls (one per coalesced batch), as awaited.",
            buckets=_LUA_BUCKETS, registry=own,
        )  # fmt: skip
        self.lua_buyers = Counter(
            "livesell_buy_lua_buyers", "Buyers decided by buy.lua calls.", registry=own
        )
        self.expired = Counter(
            "livesell_holds_expired", "Unpaid reservations expired (stock back on sale).",
            registry=own,
        )  # fmt: skip
        self.gc_pause = Histogram(
            "livesell_gc_pause_seconds", "Garbage-collector pauses (the whole process stops).",
            ["generation"], buckets=_GC_BUCKETS, registry=own,
        )  # fmt: skip
        self.loop_lag = Histogram(
            "livesell_event_loop_lag_seconds", "How late the event loop ran a timer.",
            buckets=_LAG_BUCKETS, registry=own,
        )  # fmt: skip
        self.rooms = Gauge("livesell_rooms", "Rooms with local members.", registry=own,
                           multiprocess_mode=_PER_PROCESS)  # fmt: skip
        self.sockets = Gauge("livesell_room_sockets", "Open room websockets.", registry=own,
                             multiprocess_mode=_PER_PROCESS)  # fmt: skip
        self.deliveries = Counter(
            "livesell_room_deliveries", "Room events delivered to sockets (fan-out).",
            registry=own,
        )  # fmt: skip
        self.frames = Counter(
            "livesell_room_frames", "Websocket frames written by the room fan-out.", registry=own
        )
        self.delivery = Histogram(
            "livesell_room_delivery_lag_seconds",
            "Room events: from Redis PUBLISH to the frame written to this worker's sockets.",
            buckets=_DELIVERY_BUCKETS, registry=own,
        )  # fmt: skip
        self.publishers = Gauge("livesell_relay_publishers", "Live WHIP publishers.",
                                registry=own, multiprocess_mode=_PER_PROCESS)  # fmt: skip
        self.viewers = Gauge("livesell_relay_viewers", "WHEP viewers.", registry=own,
                             multiprocess_mode=_PER_PROCESS)  # fmt: skip
        self.bitrate = Gauge(
            "livesell_relay_bitrate_bps", "Relay media bit rate, in and out.", ["direction"],
            registry=own, multiprocess_mode=_PER_PROCESS,
        )  # fmt: skip
        self.active_sales = Gauge("livesell_active_sales", "Sales the workers watch.",
                                  registry=own, multiprocess_mode=_SHARED)  # fmt: skip
        self.unpersisted = Gauge(
            "livesell_persister_lag_events", "Order events in Redis not yet acked into SQL.",
            registry=own, multiprocess_mode=_SHARED,
        )  # fmt: skip
        self.holds = Gauge("livesell_sale_holds", "Reservations waiting for payment or expiry.",
                           registry=own, multiprocess_mode=_SHARED)  # fmt: skip
        self.holds_due = Gauge("livesell_sale_holds_due", "Reservations past expiry, not swept.",
                               registry=own, multiprocess_mode=_SHARED)  # fmt: skip
        if own is not None:
            ProcessCollector(registry=own)
            self.registry = own
        else:
            self.registry = CollectorRegistry()
            self.registry.register(SeriesFiles(os.environ[MULTIPROC_ENV]))
        # Labelled children by label values: labels() takes a lock and builds a tuple each call.
        self._http: dict[tuple[AbstractResource | None, str, int], Any] = {}
        self._outcomes: dict[str, Any] = {}

    def http_request(
        self, resource: AbstractResource | None, method: str, status: int, seconds: float
    ) -> None:
        """Count one HTTP request and its latency, labelled with its route's pattern."""
        # Keyed by the resource object: its pattern string costs a microsecond to build.
        key = (resource, method, status)
        child = self._http.get(key)
        if child is None:
            route = resource.canonical if resource is not None else "unmatched"
            child = self._http[key] = self.http.labels(route, method, str(status))
        child.observe(seconds)

    def buy_outcome(self, outcome: str) -> None:
        """Count one buy by outcome (BuyMeter)."""
        child = self._outcomes.get(outcome)
        if child is None:
            child = self._outcomes[outcome] = self.buys.labels(outcome)
        child.inc()

    def lua_call(self, seconds: float, buyers: int) -> None:
        """Time one buy.lua call (BuyMeter)."""
        self.lua.observe(seconds)
        self.lua_buyers.inc(buyers)

    def holds_expired(self, count: int) -> None:
        """Count expired holds (BuyMeter)."""
        self.expired.inc(count)

    def delivery_lag(self, seconds: float) -> None:
        """Time one room event's fan-out (chat.fanout.FanoutMeter)."""
        self.delivery.observe(seconds)

    def exposition(self) -> bytes:
        """Every series in the Prometheus text format."""
        return generate_latest(self.registry)


class GcPauses:
    """Times each garbage collection into ``livesell_gc_pause_seconds`` (a ``gc.callbacks`` hook).

    A full collection walks every live object: with thousands of sockets it stops the process
    long enough to show in a rush's tail, and nothing else would say so.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._by_gen = [metrics.gc_pause.labels(str(g)) for g in range(3)]
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        """Called by the collector at the start and the stop of each collection."""
        if phase == "start":
            self._started = time.perf_counter()
        elif self._started:
            self._by_gen[info["generation"]].observe(time.perf_counter() - self._started)
            self._started = 0.0


class Sampler:
    """Copies this process's room and relay state into the gauges; measures event-loop lag."""

    def __init__(
        self, metrics: Metrics, hub: Hub, relay: Relay, redis: Redis, prefix: str,
        tick_s: float = 0.5,
    ) -> None:  # fmt: skip
        self._m = metrics
        self._hub = hub
        self._relay = relay
        self._redis = redis
        self._prefix = prefix
        self._tick_s = tick_s
        self._seen = {"deliveries": 0, "frames_sent": 0}

    def sample_process(self) -> None:
        """Read the room's and the relay's counters now."""
        m, stats = self._m, self._hub.stats()
        m.rooms.set(stats["rooms"])
        m.sockets.set(stats["clients"])
        for name, counter in (("deliveries", m.deliveries), ("frames_sent", m.frames)):
            delta = stats[name] - self._seen[name]
            if delta > 0:
                counter.inc(delta)
            self._seen[name] = stats[name]
        viewers = bps_in = bps_out = 0
        streams = self._relay.streams()
        for stream_id in streams:
            snap = self._relay.metrics(stream_id)
            if snap is not None:
                viewers += snap["viewers"]
                bps_in += snap["bitrate_in_bps"]
                bps_out += snap["bitrate_out_bps"]
        m.publishers.set(len(streams))
        m.viewers.set(viewers)
        m.bitrate.labels("in").set(bps_in)
        m.bitrate.labels("out").set(bps_out)

    async def sample_backlog(self) -> None:
        """Read the sales' backlog from Redis (left as it was when Redis does not answer)."""
        try:
            b = await asyncio.wait_for(backlog(self._redis, self._prefix), 2)
        except Exception as exc:
            log.warning("metrics: sale backlog unreadable: %s", type(exc).__name__)
            return
        self._m.active_sales.set(b.active_sales)
        self._m.unpersisted.set(b.unpersisted_events)
        self._m.holds.set(b.holds)
        self._m.holds_due.set(b.holds_due)

    async def run(self) -> None:
        """Sample every tick; how late each tick wakes is the event loop's lag."""
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self._tick_s)
            self._m.loop_lag.observe(max(0.0, time.perf_counter() - started - self._tick_s))
            try:
                self.sample_process()
            except Exception:  # a stats bug must not end the sampling (or the lag measure)
                log.exception("metrics sampling failed")


async def metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    """Run the sampler for the app's lifetime (after the composition root built the room)."""
    settings = app[SETTINGS]
    sampler = Sampler(app[METRICS], app[ROOM_HUB], app[RELAY], app[REDIS], settings.redis_prefix)
    app[SAMPLER] = sampler
    tasks = [supervise(sampler.run(), "metrics-sampler")]
    pauses = GcPauses(app[METRICS])
    gc.callbacks.append(pauses)
    try:
        yield
    finally:
        gc.callbacks.remove(pauses)  # tests build many apps in one process
        await cancel_all(tasks)


SAMPLER = web.AppKey("metrics_sampler", Sampler)
routes = web.RouteTableDef()


@routes.get("/metrics")
async def scrape(request: web.Request) -> web.Response:
    """Every series in the Prometheus text format (all workers' when there are several)."""
    sampler = request.app[SAMPLER]
    sampler.sample_process()
    await sampler.sample_backlog()
    metrics = request.app[METRICS]
    body = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
