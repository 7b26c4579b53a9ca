"""The pages: HTML under web/templates/, assets under web/static/, and their security headers.

Pages are static HTML with no server-side templating of user data; their ES modules fetch
what they show. The one exception is the room opened from a group's share link, whose head
carries the group's share card for link previews (web/sharecard.py, every value escaped).
``setup_pages`` is the one call web/app.py makes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web
from yarl import URL

from web import signin
from web.auth import Role
from web.keys import SETTINGS
from web.settings import Settings
from web.sharecard import room_page

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

routes = web.RouteTableDef()

#: No inline script anywhere: user text can never become code, even if a page slipped.
CSP = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data: blob: https:",
    "media-src 'self' blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def page_headers(settings: Settings) -> dict[str, str]:
    """Headers of every page: the CSP, no sniffing, no referrer, always revalidated.

    WHEP may answer with a 307 to the worker that holds the stream (``advertise_url``, another
    port of the same host with ``--workers``), so pages may also connect to that host.
    """
    connect = "connect-src 'self'"
    if settings.advertise_url:
        url = URL(settings.advertise_url)
        connect += f" {url.scheme}://{url.host}:*"
    return {
        "Content-Security-Policy": "; ".join((*CSP, connect)),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "X-Frame-Options": "DENY",  # frame-ancestors 'none' for browsers that predate CSP 2
        "Cache-Control": "no-cache",
        "Content-Type": "text/html; charset=utf-8",
    }


#: Explicit types: the system's mimetypes table may call .js application/javascript or
#: not know .mjs at all, and browsers refuse modules served with a wrong type.
STATIC_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webp": "image/webp",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/plain; charset=utf-8",
}


#: Each page's path and its file: the landing page, the viewer room, the host studio (without
#: an id: create a show) and the operator's dashboard.
PAGES = (
    ("/", "index.html"),
    ("/live/{stream_id}", "room.html"),
    ("/studio", "studio.html"),
    ("/studio/{stream_id}", "studio.html"),
    ("/ops", "ops.html"),
    ("/replay/{stream_id}", "replay.html"),
)


def _page(
    name: str, headers: dict[str, str]
) -> Callable[[web.Request], Awaitable[web.FileResponse]]:
    """A handler serving ``templates/<name>`` with ``headers``."""

    async def handler(request: web.Request) -> web.FileResponse:
        path = TEMPLATES / name
        if not path.is_file():
            raise web.HTTPNotFound(reason="page not found")
        return web.FileResponse(path, headers=headers)

    return handler


@routes.get("/static/{path:.+}")
async def static(request: web.Request) -> web.FileResponse:
    """A file under web/static/ with an explicit type; vendored files are cached for a day."""
    rel = request.match_info["path"]
    path = (STATIC / rel).resolve()
    kind = STATIC_TYPES.get(path.suffix)
    if kind is None or not path.is_relative_to(STATIC.resolve()) or not path.is_file():
        raise web.HTTPNotFound(reason="not found")
    cache = "public, max-age=86400" if rel.startswith("vendor/") else "no-cache"
    headers = {"Content-Type": kind, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    return web.FileResponse(path, headers=headers)


def public_url(settings: Settings, host: str, port: int) -> str:
    """The base URL people should open (``advertise_url``, or host:port made reachable)."""
    if settings.advertise_url:
        return settings.advertise_url.rstrip("/")
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


async def sign_in_links(
    codes: signin.LoginCodes, base: str, role: Role = Role.ADMIN, user: str = "admin"
) -> dict[str, str]:
    """Fresh sign-in links, each with its own one-time code: the studio, and ops for an admin."""
    name = "Operator" if role == Role.ADMIN else user
    links = {"studio": f"{base}/studio?code={await codes.issue(role, user, name)}"}
    if role == Role.ADMIN:
        links["ops"] = f"{base}/ops?code={await codes.issue(role, user, name)}"
    return links


def print_links_on_startup(app: web.Application, base: str) -> None:
    """Print the studio and ops sign-in links at ``base`` once the app is up, as Jupyter does."""

    async def show(app: web.Application) -> None:
        links = await sign_in_links(signin.login_codes(app), base)
        print(
            "\n  livesell is running. Sign in (each link works once, for 10 minutes;"
            " `make login-link` prints new ones):\n"
            f"    studio: {links['studio']}\n"
            f"    ops:    {links['ops']}\n"
            f"  viewers: {base}/\n",
            flush=True,
        )

    app.on_startup.append(show)


def setup_pages(app: web.Application) -> None:
    """Register the pages, the static files and the sign-in API."""
    headers = page_headers(app[SETTINGS])
    for path, name in PAGES:
        if name == "room.html":  # a group's share link unfurls into its card
            app.router.add_get(path, room_page(TEMPLATES / name, headers))
        else:
            app.router.add_get(path, _page(name, headers))
    app.add_routes(routes)
    app.add_routes(signin.routes)
