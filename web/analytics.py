"""HTTP edge of show analytics: the host's report (JSON or CSV) and the room page's beacon.

The figures come from ``inventory.analytics.ShowAnalytics`` after one roll-up of the stream
(so a report is never staler than this call); the beacon only bumps anonymous counters.
"""

from __future__ import annotations

import csv
import io
from collections import OrderedDict
from contextlib import suppress

from aiohttp import web

from chat.analytics import BEACON_METRICS
from chat.errors import RateLimited
from chat.member import TokenBucket
from inventory.analytics import to_csv_rows
from inventory.errors import NotFound
from web.http import BadRequest, is_json_int, json_body
from web.keys import AUCTIONS, SALES, SHOW_ANALYTICS, SHOW_ROLLUP, SHOW_TALLY
from web.ops import hosted_stream

routes = web.RouteTableDef()

#: Beacon budget per client address: a page reports at most every few seconds.
BEACON_BURST, BEACON_PER_S = 10.0, 2.0
#: Sales one beacon may name per metric, and client addresses remembered for rate limiting.
BEACON_MAX_SALES, BEACON_CLIENTS = 20, 10_000


class BeaconLimiter:
    """A token bucket per client address, the least recently seen forgotten first."""

    def __init__(self) -> None:
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def allow(self, client: str) -> bool:
        """Whether ``client`` may send one more beacon now."""
        bucket = self._buckets.pop(client, None) or TokenBucket(BEACON_BURST, BEACON_PER_S)
        self._buckets[client] = bucket
        if len(self._buckets) > BEACON_CLIENTS:
            self._buckets.popitem(last=False)
        return bucket.take()


BEACON_LIMITER = web.AppKey("beacon_limiter", BeaconLimiter)


@routes.get("/api/streams/{stream_id}/analytics")
async def stream_analytics(request: web.Request) -> web.StreamResponse:
    """A show's analytics for its host or an admin; ``?format=csv`` gives the minutes as CSV."""
    stream = await hosted_stream(request, "analytics")
    stream_id = stream.id
    await request.app[SHOW_ROLLUP].roll(stream_id)
    lots = await request.app[AUCTIONS].lot_ids_for_stream(stream_id)
    report = await request.app[SHOW_ANALYTICS].report(stream_id, lots)
    if request.query.get("format") != "csv":
        return web.json_response({**report, "status": stream.status, "rehearsal": stream.rehearsal})
    out = io.StringIO()
    csv.writer(out).writerows(to_csv_rows(report))
    return web.Response(
        text=out.getvalue(),
        content_type="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{stream_id}-analytics.csv"'},
    )


@routes.post("/api/streams/{stream_id}/beacon")
async def beacon(request: web.Request) -> web.Response:
    """Anonymous product-card views and clicks from the room page, e.g. ``{"card_view": [3]}``."""
    if not request.app[BEACON_LIMITER].allow(request.remote or "?"):
        raise RateLimited(int(1000 / BEACON_PER_S), "too many beacons: report every few seconds")
    stream_id = request.match_info["stream_id"]
    body = await json_body(request)
    sales = request.app[SALES]
    tally = request.app[SHOW_TALLY]
    for metric in BEACON_METRICS:
        ids = body.get(metric, [])
        if not isinstance(ids, list) or len(ids) > BEACON_MAX_SALES:
            raise BadRequest(f"{metric} must be a list of at most {BEACON_MAX_SALES} sale ids")
        for sale_id in ids:
            if not is_json_int(sale_id):
                raise BadRequest(f"{metric} must hold sale ids (integers)")
            # Only this room's own sales count: a page cannot inflate another show's figures.
            with suppress(NotFound):
                if await sales.stream_of(sale_id) == stream_id:
                    tally.hit(stream_id, f"{metric}:{sale_id}")
    return web.json_response({"ok": True}, status=202)


def setup_analytics(app: web.Application) -> None:
    """Register the analytics routes and the beacon's limiter (one line in web/app.py)."""
    app[BEACON_LIMITER] = BeaconLimiter()
    app.add_routes(routes)
