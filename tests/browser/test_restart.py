"""roomsocket.js in Chromium: a draining server's `server_restarting` and 1001 lead to a resume."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import msgpack
from aiohttp import web

from chat.protocol import CLOSE_GOING_AWAY, restarting_event
from tests.browser.conftest import eventually, open_page
from web.process import free_port

STATIC = Path(__file__).resolve().parents[2] / "web" / "static"
PAGE = """<!doctype html><script type="module">
import { RoomSocket } from "/static/js/roomsocket.js";
window.log = [];
const room = new RoomSocket("show", {
  onEvent: (ev) => window.log.push(ev.type),
  onState: (state, detail) => window.log.push(`state:${state}:${detail.code || ""}`),
});
room.connect();
</script>"""


async def test_room_socket_resumes_with_since_after_server_restarting(browser: Any) -> None:
    joins: list[str | None] = []

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    async def asset(request: web.Request) -> web.FileResponse:
        path = (STATIC / request.match_info["path"]).resolve()
        assert path.is_relative_to(STATIC)
        return web.FileResponse(path, headers={"Content-Type": "text/javascript"})

    async def room(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        joins.append(request.query.get("since"))
        if len(joins) == 1:  # the server that is going away
            await ws.send_bytes(msgpack.packb({"type": "snapshot", "seq": 7}))
            await ws.send_bytes(msgpack.packb(restarting_event(300)))
            await ws.close(code=CLOSE_GOING_AWAY)
            return ws
        await ws.send_bytes(msgpack.packb({"type": "resumed", "since": 7, "seq": 7}))
        async for _ in ws:  # the server that took over: stay until the page goes
            pass
        return ws

    app = web.Application()
    app.add_routes([web.get("/", page), web.get("/static/{path:.+}", asset),
                    web.get("/ws/rooms/show", room)])  # fmt: skip
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        viewer = await open_page(browser, f"http://127.0.0.1:{port}/")

        async def resumed() -> bool:
            return "resumed" in await viewer.evaluate("() => window.log")

        await eventually(resumed, 15, "the page resumed on the next server")
        log = await viewer.evaluate("() => window.log")
        assert joins == [None, "7"]  # the second join resumed after the last seq seen
        restart = log.index("server_restarting")
        assert log.index("state:reconnecting:1001") > restart
        assert log[-2:] == ["state:open:", "resumed"], log
        await viewer.context.close()
        await asyncio.sleep(0)
    finally:
        await runner.cleanup()
