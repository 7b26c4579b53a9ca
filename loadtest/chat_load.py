"""``livesell-loadtest chat``: N viewer sockets in one room, K chatting, every delivery timed.

It knows the server only through HTTP and the room's websocket protocol (msgpack maps with a
``type``; docs/protocol.md). The sockets are a minimal asyncio websocket client: with thousands
of sockets on a 2-core machine shared with the server, a full client library would measure
itself. Every distinct frame is decoded once (all viewers receive the same bytes), and each
delivery costs a dictionary lookup and a histogram record.

Latency is measured from the moment a sender wrote its message to the moment each viewer's
socket received it, on one clock (one process).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import secrets
import struct
import time
import uuid
from collections.abc import Callable
from typing import Any, cast
from urllib.parse import urlsplit

import aiohttp
import msgpack

from loadtest.flashsale_load import livesell_command, mint_tokens

#: Drop the shared decode cache this often: frames are delivered to every viewer within
#: well under this, so each distinct frame is decoded about once.
CACHE_RESET_S = 2.0
BUCKET_NS = 100_000
BUCKETS = 600_000


class Tally:
    """Delivery accounting shared by every socket (runs inside data callbacks: stays tiny)."""

    def __init__(self, run_id: str) -> None:
        self.marker = f"lt{run_id}:"
        # Latency histogram in 0.1 ms buckets up to 60 s: one list increment per delivery
        # (a general histogram's record call would cost the generator more than the server).
        self.buckets = [0] * (BUCKETS + 1)
        self.max_ns = 0
        self.deliveries = 0
        self.frames = 0
        self.last_ns = 0
        self.acks = 0
        self.rejected: dict[str, int] = {}
        self.closes: dict[int, int] = {}
        self._cache: dict[bytes, list[int]] = {}
        self._cache_at = time.monotonic()

    def _parse(self, payload: bytes) -> list[int]:
        # Send times (ns) of this run's chat messages in the frame; personal events counted.
        try:
            msg = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception:
            return []
        events = msg.get("events", []) if msg.get("type") == "batch" else [msg]
        out: list[int] = []
        for ev in events:
            kind = ev.get("type")
            if kind == "chat":
                text = ev.get("text", "")
                if text.startswith(self.marker):
                    out.append(int(text.rsplit(":", 1)[1]))
            elif kind == "ack":
                self.acks += 1
            elif kind == "error":
                code = str(ev.get("code"))
                self.rejected[code] = self.rejected.get(code, 0) + 1
        return out

    def on_frame(self, payload: bytes, now_ns: int) -> None:
        """One binary frame arrived on some socket."""
        self.frames += 1
        sent = self._cache.get(payload)
        if sent is None:
            sent = self._parse(payload)
            if sent:  # only shared broadcast frames are worth keeping
                self._cache[payload] = sent
        if sent:
            buckets = self.buckets
            for t in sent:
                d = now_ns - t
                buckets[min(d // BUCKET_NS, BUCKETS)] += 1
                if d > self.max_ns:
                    self.max_ns = d
            self.deliveries += len(sent)
            self.last_ns = now_ns

    def percentile_ms(self, pct: float) -> float:
        """The latency at ``pct`` percent, in ms (bucket upper bound)."""
        total = sum(self.buckets)
        if not total:
            return 0.0
        want, seen = total * pct / 100, 0
        for i, n in enumerate(self.buckets):
            seen += n
            if seen >= want:
                return round((i + 1) * BUCKET_NS / 1e6, 2)
        return round(self.max_ns / 1e6, 2)

    def tick(self) -> None:
        """Bound the decode cache."""
        now = time.monotonic()
        if now - self._cache_at > CACHE_RESET_S:
            self._cache.clear()
            self._cache_at = now


class WsClient(asyncio.Protocol):
    """A minimal RFC 6455 client: handshake, masked sends, frame parsing, pong, close."""

    def __init__(self, host: str, path: str, on_frame: Callable[[bytes, int], None]) -> None:
        self._host = host
        self.path = path
        self._on_frame = on_frame
        self._buf = bytearray()
        self._open = False
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the upgrade request."""
        # uvloop's transports are not asyncio.Transport subclasses; the interface is the same.
        self.transport = cast(asyncio.Transport, transport)
        key = base64.b64encode(os.urandom(16)).decode()
        self.transport.write(
            (
                f"GET {self.path} HTTP/1.1\r\nHost: {self._host}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )

    def data_received(self, data: bytes) -> None:
        """Parse the handshake reply, then frames."""
        # Fast path: one whole small binary frame and nothing buffered (the common case).
        if self._open and not self._buf and len(data) > 2 and data[0] == 0x82:
            n = data[1]
            if n < 126 and len(data) == n + 2:
                self._on_frame(data[2:], time.monotonic_ns())
                return
        buf = self._buf
        buf += data
        if not self._open:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                return
            if not buf.startswith(b"HTTP/1.1 101"):
                if not self.ready.done():
                    self.ready.set_exception(ConnectionError(bytes(buf[:80]).decode("latin1")))
                return
            del buf[: end + 4]
            self._open = True
            if not self.ready.done():
                self.ready.set_result(None)
        now = time.monotonic_ns()
        pos, n = 0, len(buf)
        while n - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1] & 0x7F
            head = 2
            if b1 == 126:
                if n - pos < 4:
                    break
                b1 = (buf[pos + 2] << 8) | buf[pos + 3]
                head = 4
            elif b1 == 127:
                if n - pos < 10:
                    break
                b1 = struct.unpack_from(">Q", buf, pos + 2)[0]
                head = 10
            if n - pos < head + b1:
                break
            payload = bytes(buf[pos + head : pos + head + b1])
            pos += head + b1
            op = b0 & 0x0F
            if op == 2:
                self._on_frame(payload, now)
            elif op == 9:
                self._send(0xA, payload)
            elif op == 8:
                code = struct.unpack(">H", payload[:2])[0] if len(payload) >= 2 else 1005
                if not self.closed.done():
                    self.closed.set_result(code)
                if self.transport is not None:
                    self.transport.close()
        if pos:
            del buf[:pos]

    def connection_lost(self, exc: Exception | None) -> None:
        """Resolve the futures."""
        if not self.ready.done():
            self.ready.set_exception(exc or ConnectionError("closed during handshake"))
        if not self.closed.done():
            self.closed.set_result(1006)

    def _send(self, opcode: int, payload: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
        key = (mask * (n // 4 + 1))[:n]
        masked = (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")
        self.transport.write(head + mask + masked)

    def send_event(self, event: dict[str, Any]) -> None:
        """Send one msgpack event."""
        self._send(0x2, msgpack.packb(event, use_bin_type=True))

    def close(self) -> None:
        """Send a close frame and drop the connection."""
        self._send(0x8, struct.pack(">H", 1000))
        if self.transport is not None:
            self.transport.close()


async def open_sockets(
    url: str,
    paths: list[str],
    on_frame: Callable[[bytes, int], None] | Callable[[int], Callable[[bytes, int], None]],
    concurrency: int = 200,
    per_socket: bool = False,
) -> list[WsClient]:
    """Connect every path (with bounded concurrency); returns the sockets that opened.

    With ``per_socket``, ``on_frame(i)`` makes the frame callback of the socket for path i.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    loop = asyncio.get_running_loop()
    gate = asyncio.Semaphore(concurrency)
    out: list[WsClient | None] = [None] * len(paths)

    async def one(i: int, path: str) -> None:
        async with gate:
            try:
                handler = on_frame(i) if per_socket else on_frame  # type: ignore[call-arg,arg-type]
                _, proto = await loop.create_connection(
                    lambda: WsClient(f"{host}:{port}", path, handler),  # type: ignore[arg-type]
                    host,
                    port,
                )
                await asyncio.wait_for(proto.ready, 30)
                out[i] = proto
            except (OSError, TimeoutError, ConnectionError):
                pass

    await asyncio.gather(*(one(i, p) for i, p in enumerate(paths)))
    return [c for c in out if c is not None]


async def _create_stream(url: str, host_token: str) -> str:
    sid = f"load-{uuid.uuid4().hex[:8]}"
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{url.rstrip('/')}/api/streams",
            json={"id": sid, "title": "chat load test"},
            headers={"Authorization": f"Bearer {host_token}"},
        ) as r,
    ):
        if r.status != 201:
            raise RuntimeError(f"create stream: {r.status} {await r.text()}")
    return sid


async def measure(
    url: str,
    sender_paths: list[str],
    viewer_paths: list[str],
    rate: float,
    duration: float,
    drain: float = 3.0,
    acked: bool = True,
    window: Callable[[bool], None] | None = None,
) -> dict[str, Any]:
    """Connect everyone, chat at ``rate`` through the senders for ``duration``, count deliveries.

    ``acked``: the server acknowledges each message (livesell does; a raw echo server does
    not, and then every message sent is expected). ``window(True/False)`` is called when
    the sending starts and when the drain ends (benchmarks sample server CPU there).
    """
    tally = Tally(secrets.token_hex(4))
    t0 = time.perf_counter()
    socks = await open_sockets(url, sender_paths + viewer_paths, tally.on_frame)
    connect_s = time.perf_counter() - t0
    senders = set(sender_paths)
    chatters = [s for s in socks if s.path in senders]
    if not chatters:
        raise SystemExit("no sender socket connected")
    await asyncio.sleep(1.0)  # let snapshots land before measuring
    frames_before = tally.frames
    sent = 0
    if window is not None:
        window(True)
    start = time.perf_counter()
    # Open model: message i goes out at start + i/rate whatever the server does.
    while (elapsed := time.perf_counter() - start) < duration:
        due = int(elapsed * rate) + 1
        while sent < due:
            sock = chatters[sent % len(chatters)]
            text = f"{tally.marker}{sent}:{time.monotonic_ns()}"
            sock.send_event({"type": "chat", "text": text, "ref": sent})
            sent += 1
        tally.tick()
        await asyncio.sleep(max(0.001, sent / rate - (time.perf_counter() - start)))
    deadline = time.perf_counter() + drain
    while time.perf_counter() < deadline:
        await asyncio.sleep(0.1)
        tally.tick()
    if window is not None:
        window(False)
    connected = len(socks)
    accepted = tally.acks if acked else sent
    expected = accepted * connected
    closed = sum(1 for s in socks if s.closed.done())
    for s in socks:
        s.close()
    span = max(1e-9, (tally.last_ns / 1e9) - _start_mono(start)) if tally.last_ns else duration
    return {
        "viewers_connected": connected,
        "sockets_closed_during_run": closed,
        "connect_s": round(connect_s, 2),
        "senders": len(chatters),
        "rate": rate,
        "duration_s": duration,
        "messages_sent": sent,
        "messages_accepted": accepted,
        "messages_rejected": tally.rejected,
        "deliveries_expected": expected,
        "deliveries_received": tally.deliveries,
        "delivery_ratio": round(tally.deliveries / expected, 4) if expected else 0.0,
        "deliveries_per_s": round(tally.deliveries / span),
        "frames_received": tally.frames - frames_before,
        "latency_ms": {
            "p50": tally.percentile_ms(50),
            "p99": tally.percentile_ms(99),
            "max": round(tally.max_ns / 1e6, 2),
        },
    }


def _start_mono(perf_start: float) -> float:
    """The monotonic-clock time of a perf_counter reading (delivery stamps use monotonic)."""
    return time.monotonic() - (time.perf_counter() - perf_start)


async def run_chat(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chat load test from parsed ``chat`` arguments; returns the result dict."""
    url: str = args.url
    if not 0 < args.senders <= args.viewers:
        raise SystemExit("--senders must be 1..--viewers")
    cmd = livesell_command()
    stream_id = args.stream
    if not stream_id:
        host = (await mint_tokens(cmd, "host", f"loadhost-{secrets.token_hex(3)}", None, None))[0]
        stream_id = await _create_stream(url, host)
    tokens = await mint_tokens(cmd, "viewer", f"chatter{secrets.token_hex(3)}", args.senders, None)
    base = f"/ws/rooms/{stream_id}"
    result = await measure(
        url,
        [f"{base}?token={t}" for t in tokens],
        [base] * (args.viewers - args.senders),
        args.rate,
        args.duration,
        args.drain,
    )
    return {"url": url, "stream": stream_id, "viewers_requested": args.viewers, **result}


def add_parser(subparsers: Any) -> None:
    """Register the ``chat`` subcommand."""
    p = subparsers.add_parser("chat", help="N viewers in one room, K chatting at R msg/s")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("--viewers", type=int, required=True, help="sockets in the room (N)")
    p.add_argument("--senders", type=int, default=20, help="of which chatting (K)")
    p.add_argument("--rate", type=float, default=20, help="chat messages/s in total (R)")
    p.add_argument("--duration", type=float, default=20, help="seconds of chatting (S)")
    p.add_argument("--drain", type=float, default=3, help="seconds to wait for stragglers")
    p.add_argument("--stream", help="existing stream id (default: create one)")
    p.add_argument("--json", help="write the result here")


if __name__ == "__main__":
    from loadtest.cli import main

    raise SystemExit(main(["chat", *__import__("sys").argv[1:]]))
