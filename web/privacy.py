"""The caller's own data: ``GET /api/me/data`` exports it, ``DELETE /api/me/data`` erases it.

Orders are kept under a pseudonym (Redis and SQL alike, so audits still add up); chat history,
points, memberships and share-link touches go; reviews stay without a name. docs/privacy.md
lists each datum, where it lives and for how long.
"""

from __future__ import annotations

import secrets
from dataclasses import asdict

from aiohttp import web

from chat.privacy import RoomForgetter
from flashsale.privacy import SaleForgetter
from inventory.userdata import UserData
from web.http import require
from web.keys import DATABASE, LEDGER, REDIS, SETTINGS

routes = web.RouteTableDef()


def _parts(app: web.Application) -> tuple[UserData, SaleForgetter, RoomForgetter]:
    prefix = app[SETTINGS].redis_prefix
    return (
        UserData(app[DATABASE]),
        SaleForgetter(app[REDIS], app[LEDGER], prefix),
        RoomForgetter(app[REDIS], prefix),
    )


@routes.get("/api/me/data")
async def export_my_data(request: web.Request) -> web.Response:
    """Everything kept about the caller, as JSON."""
    who = require(request)
    sql, sales, rooms = _parts(request.app)
    return web.json_response(
        {
            "user_id": who.user_id,
            "name": who.name,  # a guest's name lives only in their token
            **await sql.export(who.user_id, who.name),
            "live_orders": [asdict(o) for o in await sales.live_orders(who.user_id)],
            "chat_history": await rooms.chat_of(who.user_id),
        }
    )


@routes.delete("/api/me/data")
async def erase_my_data(request: web.Request) -> web.Response:
    """Erase the caller's data; orders stay under a pseudonym nobody can link back."""
    who = require(request)
    sql, sales, rooms = _parts(request.app)
    pseudonym = f"erased-{secrets.token_hex(8)}"
    redis_changed = await sales.forget(who.user_id, pseudonym)
    sql_changed = await sql.erase(who.user_id, who.name, pseudonym)
    room_changed = await rooms.forget(who.user_id, who.name)
    # A persister batch read before the drain may have inserted an order since: once more.
    sql_changed += await sql.erase(who.user_id, who.name, pseudonym)
    return web.json_response(
        {"erased": True, "redis": redis_changed + room_changed, "sql": sql_changed}
    )
