"""The server's HTTP API as the show uses it; a transport failure is an error kind, not a raise."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp

#: The status of a call that never got an HTTP answer.
NO_ANSWER = 0


def error_kind(exc: BaseException) -> str:
    """A short name for a transport failure (``refused``, ``timeout``, ``disconnected`` ...)."""
    if isinstance(exc, aiohttp.ClientConnectorError | ConnectionRefusedError):
        return "refused"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ServerDisconnectedError | ConnectionResetError):
        return "disconnected"
    return type(exc).__name__


class ShowApi:
    """A keep-alive session to one server; every call returns ``(status, body, kind)``."""

    def __init__(self, url: str, timeout_s: float = 10.0, connections: int = 64) -> None:
        self.base = url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> ShowApi:
        """Open the session."""
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, connector=aiohttp.TCPConnector(limit=self._connections)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Close the session."""
        if self._session is not None:
            await self._session.close()

    async def call(
        self, method: str, path: str, token: str = "", body: Any = None
    ) -> tuple[int, Any, str]:
        """One request: status, decoded JSON (or text), and ``""`` or the failure's kind."""
        assert self._session is not None, "use ShowApi as an async context manager"
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        try:
            async with self._session.request(
                method, self.base + path, json=body, headers=headers
            ) as r:
                text = await r.text()
                try:
                    data: Any = json.loads(text) if text else None
                except ValueError:
                    data = text[:200]
                return r.status, data, ""
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            return NO_ANSWER, None, error_kind(exc)

    async def must(self, method: str, path: str, token: str, body: Any = None) -> Any:
        """A call that has to succeed (the show's set-up); raises ``ShowError`` otherwise."""
        status, data, kind = await self.call(method, path, token, body)
        if kind or status >= 300:
            raise ShowError(f"{method} {path}: {kind or status} {data if not kind else ''}".strip())
        return data

    async def healthy(self) -> bool:
        """The server answers ``/healthz`` with 200."""
        status, _, _ = await self.call("GET", "/healthz")
        return status == 200

    async def wait_healthy(self, timeout_s: float) -> float | None:
        """Poll ``/healthz`` until it answers (seconds waited), or None after ``timeout_s``."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        while True:
            if await self.healthy():
                return round(loop.time() - start, 2)
            if loop.time() - start >= timeout_s:
                return None
            await asyncio.sleep(0.5)


class ShowError(Exception):
    """The show cannot go on (set-up failed, server gone); its message is the one-line reason."""
