"""Requests as raw bytes over a socket: header bytes no HTTP client library would send."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any

import msgpack


async def raw_request(
    port: int, head: bytes, body: bytes = b""
) -> tuple[int, dict[str, str], bytes]:
    """Send ``head`` (request line and headers, no blank line) and ``body``; read the reply."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        length = f"Content-Length: {len(body)}\r\n" if body else ""
        writer.write(head + b"\r\n" + length.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(-1), 10)
    finally:
        writer.close()
    top, _, rest = data.partition(b"\r\n\r\n")
    lines = top.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in lines[1:])}
    return int(lines[0].split()[1]), headers, rest


def json_error(body: bytes) -> str:
    """The ``error`` code of a JSON error body (asserting its documented shape)."""
    doc: dict[str, Any] = json.loads(body)
    assert set(doc) == {"error", "message"}, doc
    return str(doc["error"])


async def raw_websocket(port: int, target: bytes, extra: bytes = b"") -> RawSocket:
    """Open a websocket with a hand-written upgrade request; ``extra`` are more header lines."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16))
    writer.write(
        b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key
        + b"\r\n" + extra + b"\r\n"
    )  # fmt: skip
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return RawSocket(head, reader, writer)


class RawSocket:
    """The server's side of a websocket, frame by frame (server frames are never masked)."""

    def __init__(self, head: bytes, reader: asyncio.StreamReader, writer: Any) -> None:
        self.head = head
        self.status = int(head.split()[1])
        self._reader = reader
        self._writer = writer

    async def frame(self) -> tuple[int, bytes]:
        """The next frame's opcode and payload."""
        b0, b1 = await asyncio.wait_for(self._reader.readexactly(2), 10)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self._reader.readexactly(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self._reader.readexactly(8))
        return b0 & 0x0F, await self._reader.readexactly(n)

    async def send_binary(self, payload: bytes) -> None:
        """Send one masked binary frame (clients must mask)."""
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        n = len(payload)
        size = bytes([0x80 | n]) if n < 126 else b"\xfe" + struct.pack("!H", n)
        self._writer.write(b"\x82" + size + mask + masked)
        await self._writer.drain()

    async def until_close(self) -> tuple[list[dict[str, Any]], int]:
        """Every event up to the close frame, and the close code."""
        events: list[dict[str, Any]] = []
        while True:
            op, payload = await self.frame()
            if op == 0x8:
                return events, struct.unpack("!H", payload[:2])[0]
            if op == 0x2:
                got = msgpack.unpackb(payload)
                events += got if isinstance(got, list) else [got]

    def close(self) -> None:
        """Drop the connection."""
        self._writer.close()
