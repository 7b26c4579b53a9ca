"""A server that goes away mid-run and comes back on the same port (same Redis, same database)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.test_utils import TestServer

from web.app import create_app
from web.process import free_port
from web.settings import Settings


async def start_server(settings: Settings) -> TestServer:
    """The app on a free port of its own (a test can close it and start another there)."""
    server = TestServer(create_app(settings), port=free_port())
    await server.start_server()
    return server


async def bounce(
    server: TestServer, settings: Settings, down_s: float, run: asyncio.Task[Any]
) -> Any:
    """Close ``server``, leave its port dark ``down_s``, serve again there; ``run``'s result."""
    port = server.port  # close() forgets it
    await server.close()
    await asyncio.sleep(down_s)
    again = TestServer(create_app(settings), port=port)
    await again.start_server()
    try:
        return await asyncio.wait_for(run, 60)
    finally:
        await again.close()
