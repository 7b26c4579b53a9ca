"""HTTP edge of rehearsals: switching a stream to practice, and the load tool's reports.

``PATCH /api/streams/{id}`` switches the flag (inventory/rehearsal.py has the rules);
``POST /api/streams/{id}/rehearsal-report`` takes ``{"report": {...}, "html": "..."}`` from
``livesell-loadtest show --rehearse``; the studio lists them and opens the HTML in a new tab.
The HTML is served under a CSP ``sandbox`` with no script source at all: the page gets an
opaque origin, so nothing in an uploaded file can script this site or read its storage.
"""

from __future__ import annotations

from aiohttp import web

from chat.analytics import forget_counters
from inventory.catalog import StreamView
from inventory.errors import Conflict
from inventory.rehearsal import set_rehearsal
from web.auth import Role
from web.errors import ForbiddenError
from web.http import BadRequest, field, json_body, require
from web.keys import CATALOG, DATABASE, REDIS, ROOM_HUB, SETTINGS
from web.rehearsalreports import ReportShelf

routes = web.RouteTableDef()

#: An uploaded report (its JSON with histograms, and the HTML with its plots), at most.
MAX_REPORT_BYTES = 8 * 1024 * 1024
REPORT_SHELF = web.AppKey("rehearsal_reports", ReportShelf)
#: The served report: no script of any origin, inline styles and data: images only (what
#: loadtest/show/htmlreport.py writes), a sandboxed opaque origin, never framed.
REPORT_CSP = (
    "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
REPORT_TYPES = {"html": "text/html", "json": "application/json"}


async def _own_stream(request: web.Request) -> StreamView:
    """The path's stream, when the caller is its host or an admin (else 403; 404 if none)."""
    who = require(request, Role.ADMIN, Role.HOST)
    stream = await request.app[CATALOG].get_stream(request.match_info["stream_id"])
    if stream is None:
        raise web.HTTPNotFound(reason="stream not found")
    if who.role != Role.ADMIN and who.user_id != stream.host_id:
        raise ForbiddenError("only the stream's host or an admin may do this")
    return stream


@routes.patch("/api/streams/{stream_id}")
async def update_stream(request: web.Request) -> web.Response:
    """Mark a stream a rehearsal or a real show (``{"rehearsal": bool}``) while it is not live."""
    stream = await _own_stream(request)
    body = await json_body(request)
    on = field(body, "rehearsal", bool)
    updated = await set_rehearsal(request.app[DATABASE], stream.id, on)
    request.app[ROOM_HUB].stream_changed(updated)
    if stream.rehearsal and not on:
        # The practice's room counters must not roll up into the real show's analytics.
        await forget_counters(request.app[REDIS], request.app[SETTINGS].redis_prefix, stream.id)
    return web.json_response(
        {"id": updated.id, "host_id": updated.host_id, "title": updated.title,
         "status": updated.status, "rehearsal": updated.rehearsal}
    )  # fmt: skip


@routes.post("/api/streams/{stream_id}/rehearsal-report")
async def upload_report(request: web.Request) -> web.Response:
    """Store a rehearsal's report (its host or an admin; 409 for a stream that is no rehearsal)."""
    stream = await _own_stream(request)
    if not stream.rehearsal:
        raise Conflict(f"stream {stream.id} is not a rehearsal", code="not_rehearsal")
    body = await json_body(request, limit=MAX_REPORT_BYTES)
    report = field(body, "report", dict)
    html = field(body, "html", str)
    if not html.lstrip().lower().startswith("<!doctype html"):
        raise BadRequest("html must be an HTML document")
    meta = await request.app[REPORT_SHELF].save(stream.id, report, html)
    return web.json_response(_links(stream.id, meta), status=201)


@routes.get("/api/streams/{stream_id}/rehearsal-reports")
async def list_reports(request: web.Request) -> web.Response:
    """The stream's rehearsal reports, newest first, with links (its host or an admin)."""
    stream = await _own_stream(request)
    reports = request.app[REPORT_SHELF].list(stream.id)
    return web.json_response({"reports": [_links(stream.id, m) for m in reports]})


@routes.get("/api/streams/{stream_id}/rehearsal-reports/{name}")
async def get_report(request: web.Request) -> web.StreamResponse:
    """One report's HTML or JSON; its unguessable id is the capability (see module doc)."""
    report_id, _, kind = request.match_info["name"].rpartition(".")
    path = request.app[REPORT_SHELF].path(request.match_info["stream_id"], report_id, kind)
    if path is None:
        raise web.HTTPNotFound(reason="report not found")
    return web.FileResponse(
        path,
        headers={
            "Content-Type": f"{REPORT_TYPES[kind]}; charset=utf-8",
            "Content-Security-Policy": REPORT_CSP,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cross-Origin-Resource-Policy": "same-origin",
            "Cache-Control": "private, no-cache",
        },
    )


def _links(stream_id: str, meta: dict[str, object]) -> dict[str, object]:
    base = f"/api/streams/{stream_id}/rehearsal-reports/{meta['id']}"
    return {**meta, "html_url": f"{base}.html", "json_url": f"{base}.json"}


def setup_rehearsal(app: web.Application) -> None:
    """Register the rehearsal routes and the reports' shelf under the data directory."""
    app[REPORT_SHELF] = ReportShelf(app[SETTINGS].data_dir / "rehearsals")
    app.add_routes(routes)
