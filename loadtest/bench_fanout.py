"""``python -m loadtest.bench fanout``: raw aiohttp broadcast vs the livesell room, one run.

Both servers run as separate processes on this machine, one after the other, and are driven
by the same load generator (loadtest.chat_load): N sockets, some of them sending chat
messages at R per second in total, every delivery timed.

- raw: a minimal aiohttp websocket server (no auth, no Redis, no protocol) that sends every
  frame it receives to every socket with ``await ws.send_bytes`` (the textbook broadcast);
- ours: ``livesell serve`` with its private Redis; the room encodes each event once, batches
  events within ~50 ms and writes one pre-built frame to every socket.

It prints deliveries per second for each, and ``ours_vs_raw``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from loadtest.benchprocs import free_port
from loadtest.chat_load import measure
from loadtest.flashsale_load import livesell_command, mint_tokens


def serve_raw(port: int) -> None:
    """The baseline: every received binary frame goes to every connected socket."""
    from aiohttp import WSMsgType, web

    clients: set[web.WebSocketResponse] = set()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        clients.add(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.BINARY:
                    for peer in list(clients):
                        try:
                            await peer.send_bytes(msg.data)
                        except ConnectionError:
                            clients.discard(peer)
        finally:
            clients.discard(ws)
        return ws

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    app = web.Application()
    app.router.add_get("/ws", handler)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=lambda *_: None)


async def _wait_port(port: int, proc: asyncio.subprocess.Process, wait_s: float = 30) -> None:
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline:
        if proc.returncode is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            _, w = await asyncio.open_connection("127.0.0.1", port)
            w.close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not start")


async def _run_one(
    name: str, argv: list[str], env: dict[str, str], port: int, drive: Any
) -> dict[str, Any]:
    # Server output goes to a file: a pipe nobody reads could fill and stall the server.
    log = tempfile.TemporaryFile()
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=log
    )
    try:
        await _wait_port(port, proc)
        ps = psutil.Process(proc.pid)
        marks: list[tuple[float, float]] = []

        def window(_start: bool) -> None:
            t = ps.cpu_times()
            marks.append((time.perf_counter(), t.user + t.system))

        result: dict[str, Any] = await drive(window)
        (t0, c0), (t1, c1) = marks
        busy = c1 - c0
        # Server CPU over the sending window (connects excluded), and its cost per delivery.
        result["server_cpu_pct"] = round(100 * busy / (t1 - t0), 1)
        result["server_cpu_us_per_delivery"] = (
            round(busy * 1e6 / result["deliveries_received"], 2)
            if result["deliveries_received"]
            else None
        )
        result["name"] = name
        return result
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.seek(0)
        tail = log.read()[-2000:].decode(errors="replace")
        log.close()
        if "Traceback" in tail:
            print(f"{name} server stderr (tail):\n{tail}", file=sys.stderr)


async def run(viewers: int, senders: int, rate: float, duration: float) -> dict[str, Any]:
    """Run both servers in turn under the same load; returns both results and the ratio."""
    raw_port = free_port()
    env = dict(os.environ)

    async def drive_raw(window: Any) -> dict[str, Any]:
        paths = ["/ws"] * viewers
        return await measure(
            f"http://127.0.0.1:{raw_port}", paths[:senders], paths[senders:], rate, duration,
            acked=False, window=window,
        )  # fmt: skip

    argv = [sys.executable, "-m", "loadtest.bench_fanout", "--serve-raw", str(raw_port)]
    raw = await _run_one("raw", argv, env, raw_port, drive_raw)

    port = free_port()
    with tempfile.TemporaryDirectory(prefix="livesell-fanout-") as data_dir:
        env = {
            **os.environ,
            "LIVESELL_DATA_DIR": data_dir,
            "LIVESELL_PORT": str(port),
            "LIVESELL_SECRET": secrets.token_urlsafe(24),
            "LIVESELL_LOG_LEVEL": "WARNING",
        }
        url = f"http://127.0.0.1:{port}"

        async def drive_ours(window: Any) -> dict[str, Any]:
            cmd = livesell_command()
            host = (await mint_tokens(cmd, "host", "fanout-host", None, env))[0]
            tokens = await mint_tokens(cmd, "viewer", "fan", senders, env)
            sid = f"fanout-{uuid.uuid4().hex[:6]}"
            async with (
                aiohttp.ClientSession() as s,
                s.post(
                    f"{url}/api/streams", json={"id": sid},
                    headers={"Authorization": f"Bearer {host}"},
                ) as r,
            ):  # fmt: skip
                if r.status != 201:
                    raise RuntimeError(f"create stream: {r.status} {await r.text()}")
            base = f"/ws/rooms/{sid}"
            return await measure(
                url, [f"{base}?token={t}" for t in tokens], [base] * (viewers - senders),
                rate, duration, window=window,
            )  # fmt: skip

        ours = await _run_one("ours", [*livesell_command(), "serve"], env, port, drive_ours)
    ratio = ours["deliveries_per_s"] / raw["deliveries_per_s"] if raw["deliveries_per_s"] else 0
    return {
        "viewers": viewers,
        "senders": senders,
        "rate": rate,
        "duration_s": duration,
        "raw": raw,
        "ours": ours,
        "ours_vs_raw": round(ratio, 3),
    }


def main(argv: list[str]) -> int:
    """Entry point: ``fanout --viewers N [--rate R] [--senders K] [--duration S] [--json F]``."""
    p = argparse.ArgumentParser(prog="python -m loadtest.bench fanout")
    p.add_argument("--viewers", type=int, default=1000)
    p.add_argument("--rate", type=float, default=100, help="messages/s in total")
    p.add_argument("--senders", type=int, default=100, help="sockets that send (1 msg/s each)")
    p.add_argument("--duration", type=float, default=10)
    p.add_argument("--json", help="write the result here")
    p.add_argument("--serve-raw", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_raw:
        serve_raw(args.serve_raw)
        return 0
    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover
        pass
    senders = min(args.senders, args.viewers)
    result = asyncio.run(run(args.viewers, senders, args.rate, args.duration))
    for side in ("raw", "ours"):
        r = result[side]
        print(
            f"{side:4}: {r['deliveries_per_s']:>9,} deliveries/s  ratio {r['delivery_ratio']}  "
            f"p50 {r['latency_ms']['p50']} ms  p99 {r['latency_ms']['p99']} ms  "
            f"server cpu {r['server_cpu_pct']}% ({r['server_cpu_us_per_delivery']} us/delivery)  "
            f"frames {r['frames_received']:,}"
        )
    print(f"ours_vs_raw: {result['ours_vs_raw']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
