"""Shows after (and beside) the live relay: recordings with range requests, live HLS, replays.

Thin handlers over ``stream.archive.RecordingArchive`` (files on disk, shared by every worker
through the data directory). Cache-Control is set for a CDN in front: an HLS playlist changes
every segment, so it may be cached for one second; segments and finished recordings never
change under their name, so they are immutable.
"""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from inventory.errors import InvalidInput, NotFound
from web.keys import CATALOG, RECORDINGS, ROOM_EVENTS, SALES

PLAYLIST_CACHE = "public, max-age=1"
IMMUTABLE = "public, max-age=31536000, immutable"
HLS_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
}

routes = web.RouteTableDef()


@routes.get("/hls/{stream_id}/{name}")
async def hls_file(request: web.Request) -> web.FileResponse:
    """A live HLS playlist, init section or segment (anyone may watch, as over WHEP)."""
    stream_id, name = request.match_info["stream_id"], request.match_info["name"]
    path = request.app[RECORDINGS].hls_path(stream_id, name)
    if path is None:
        raise NotFound(f"no HLS file {name!r} for stream {stream_id!r}")
    headers = {
        "Content-Type": HLS_TYPES[path.suffix],
        "Cache-Control": PLAYLIST_CACHE if path.suffix == ".m3u8" else IMMUTABLE,
        "Access-Control-Allow-Origin": "*",
        "X-Content-Type-Options": "nosniff",
    }
    return web.FileResponse(path, headers=headers)


@routes.get("/api/streams/{stream_id}/recordings")
async def list_recordings(request: web.Request) -> web.Response:
    """The stream's recordings, one per broadcast, oldest first, each with its start time."""
    stream_id = request.match_info["stream_id"]
    stream = await request.app[CATALOG].get_stream(stream_id)
    if stream is None:
        raise NotFound(f"stream {stream_id} not found")
    files = request.app[RECORDINGS].files(stream_id)
    return web.json_response(
        {
            "stream": asdict(stream),
            "recordings": [
                {
                    "name": f.name,
                    "started_at_ms": f.started_at_ms,
                    "size": f.size,
                    "type": f.media_type,
                    "url": f"/api/streams/{stream_id}/recordings/{f.name}",
                }
                for f in files
            ],
        }
    )


@routes.get("/api/streams/{stream_id}/recordings/{name}")
async def recording_file(request: web.Request) -> web.FileResponse:
    """One recording file; aiohttp answers Range requests (206) so players can seek."""
    stream_id, name = request.match_info["stream_id"], request.match_info["name"]
    archive = request.app[RECORDINGS]
    path = archive.file_path(stream_id, name)
    if path is None:
        raise NotFound(f"no recording {name!r} for stream {stream_id!r}")
    # The file of a broadcast still running grows: only a finished one is immutable.
    files = archive.files(stream_id)
    stream = await request.app[CATALOG].get_stream(stream_id)
    live = stream is not None and stream.status == "live"
    growing = live and files[-1].name == name
    headers = {
        "Content-Type": "video/webm" if name.endswith(".webm") else "video/mp4",
        "Cache-Control": "no-cache" if growing else IMMUTABLE,
        "X-Content-Type-Options": "nosniff",
    }
    return web.FileResponse(path, headers=headers)


@routes.get("/api/streams/{stream_id}/timeline")
async def timeline(request: web.Request) -> web.Response:
    """The show's archived room events (pins, sales, chat) in room order, a page at a time."""
    stream_id = request.match_info["stream_id"]
    raw = request.query.get("after_seq", "0")
    if not raw.isdigit() or len(raw) > 18:
        raise InvalidInput("after_seq must be a non-negative integer")
    if await request.app[CATALOG].get_stream(stream_id) is None:
        raise NotFound(f"stream {stream_id} not found")
    events = await request.app[ROOM_EVENTS].timeline(stream_id, int(raw))
    return web.json_response(
        {
            "events": [{**e.event, "seq": e.seq, "type": e.type, "at_ms": e.at_ms} for e in events],
            "next_after_seq": events[-1].seq if events else None,
        }
    )


@routes.get("/api/replays")
async def list_replays(request: web.Request) -> web.Response:
    """Ended shows that have a recording, newest first (the landing page lists them)."""
    archive = request.app[RECORDINGS]
    streams = await request.app[CATALOG].list_streams()
    replays = []
    for stream in streams:
        files = archive.files(stream.id) if stream.status == "ended" else []
        if files:
            replays.append(
                {
                    **asdict(stream),
                    "started_at_ms": files[0].started_at_ms,
                    "url": f"/replay/{stream.id}",
                }
            )
    return web.json_response({"replays": replays})


@routes.get("/api/streams/{stream_id}/sales/open")
async def open_sales(request: web.Request) -> web.Response:
    """The show's sales open now with stock left: what its replay can sell (a sale still running,
    or one the host opened after the show at a replay price). The live room shows the same."""
    stream_id = request.match_info["stream_id"]
    if await request.app[CATALOG].get_stream(stream_id) is None:
        raise NotFound(f"stream {stream_id} not found")
    sales = request.app[SALES]
    views = await sales.live_views(await sales.sales_for_stream(stream_id))
    return web.json_response(
        {"sales": [v.to_json() for v in views if v.state == "open" and v.remaining > 0]}
    )
