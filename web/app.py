"""The application factory: settings, resources, the composition root (web/services.py), routes."""

from __future__ import annotations

import gc
import logging

from aiohttp import web

from web import api, payments, privacy, replay, reviews
from web.analytics import setup_analytics
from web.auctions import setup_auctions
from web.auth import TokenSigner
from web.cors import allowed_origins, cors_middleware
from web.health import setup_health
from web.http import error_middleware
from web.keys import METRICS, SETTINGS, SIGNER
from web.metrics import Metrics, metrics_ctx
from web.metrics import routes as metrics_routes
from web.observe import observe_middleware, setup_observe
from web.openapi import setup_openapi
from web.ops import setup_ops
from web.pages import setup_pages
from web.rehearsal import setup_rehearsal
from web.resources import database_ctx, redis_ctx, sale_workers_ctx
from web.revocation import REVOKED, RevocationList, setup_revocation
from web.room import setup_room
from web.services import services_ctx
from web.settings import Settings
from web.social import setup_social
from web.whip import setup_stream

log = logging.getLogger("livesell.app")


async def _freeze_gc(app: web.Application) -> None:
    """Move everything built at start-up out of the garbage collector's sight; collect less.

    A full collection walks every tracked object, and the imports alone (aiortc, SQLAlchemy,
    av, numpy) leave hundreds of thousands of them: measured here, gen-2 collections paused the
    event loop for 40-90 ms mid-sale. Frozen objects are never scanned again. The objects of
    thousands of open sockets come later and cannot be frozen (they die with their socket):
    larger thresholds make the collector walk them less often (LIVESELL_GC_THRESHOLDS).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*app[SETTINGS].resolved_gc_thresholds())
    log.debug("gc frozen with %d objects", gc.get_freeze_count())


def create_app(settings: Settings | None = None) -> web.Application:
    """Build the livesell application. Resources open in order on start-up, close in reverse."""
    settings = settings or Settings.from_env()
    metrics = Metrics()
    cors = cors_middleware(allowed_origins(settings.cors_origins))
    app = web.Application(
        middlewares=[observe_middleware(metrics), cors, error_middleware],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    settings.resolved_gc_thresholds()  # a bad value fails here, before anything opens
    app[METRICS] = metrics
    setup_health(app)  # first: /readyz turns 503 before the room closes its sockets
    setup_observe(app)
    revoked = app[REVOKED] = RevocationList()
    app[SIGNER] = TokenSigner(settings.resolved_secret(), settings.token_ttl_s, revoked)
    app.cleanup_ctx.append(redis_ctx)
    app.cleanup_ctx.append(database_ctx)
    app.cleanup_ctx.append(services_ctx)  # the composition root: sales, room, relay
    app.cleanup_ctx.append(sale_workers_ctx)
    app.cleanup_ctx.append(metrics_ctx)
    setup_room(app)
    setup_social(app)  # group buys, coupons: routes and the group reaper
    setup_auctions(app)  # live auctions and fair draws: routes and the lot sweeper
    setup_stream(app)
    setup_revocation(app)  # after the room: a revocation closes its sockets
    app.on_startup.append(_freeze_gc)  # after every cleanup_ctx has opened its resource
    app.add_routes(api.routes)
    app.add_routes(replay.routes)
    app.add_routes(reviews.routes)  # verified reviews
    app.add_routes(privacy.routes)  # export and erase one's own data
    app.add_routes(payments.routes)  # the provider's signed payment webhook
    app.add_routes(metrics_routes)
    setup_ops(app)
    setup_analytics(app)  # show analytics report, CSV and the room's beacon
    setup_rehearsal(app)  # practice shows: the flag, the load tool's reports
    setup_pages(app)
    setup_openapi(app)  # GET /openapi.json, the table in web/openapi.py
    return app
