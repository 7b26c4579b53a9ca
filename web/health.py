"""Liveness and readiness endpoints."""

from __future__ import annotations

import asyncio
import os

from aiohttp import web

from web.keys import DATABASE, REDIS

routes = web.RouteTableDef()
#: Set when shutdown starts (before any socket is closed): /readyz answers 503 from then on.
DRAINING = web.AppKey("draining", asyncio.Event)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """The process is up."""
    # The pid tells workers apart (livesell serve --workers N).
    return web.json_response({"status": "ok", "pid": os.getpid()})


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """Redis and the database answer; 503 naming what does not, or while draining."""
    if request.app[DRAINING].is_set():
        body: dict[str, object] = {
            "status": "draining",
            "error": "draining",
            "message": "the server is shutting down",
        }
        return web.json_response(body, status=503)
    checks: dict[str, str] = {}
    try:
        await asyncio.wait_for(request.app[REDIS].ping(), 2)
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"down: {type(exc).__name__}"
    try:
        await asyncio.wait_for(request.app[DATABASE].ping(), 2)
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"down: {type(exc).__name__}"
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if ok else "unavailable", "checks": checks}
    if not ok:
        body["error"] = "unavailable"
        body["message"] = "a backing service is unreachable"
    return web.json_response(body, status=200 if ok else 503)


async def _begin_drain(app: web.Application) -> None:
    app[DRAINING].set()


def setup_health(app: web.Application) -> None:
    """Register /healthz and /readyz; call before other set-ups so draining is marked first."""
    app[DRAINING] = asyncio.Event()
    app.on_shutdown.append(_begin_drain)
    app.add_routes(routes)
