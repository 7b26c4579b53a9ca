"""``livesell-loadtest flashsale``: a flash sale driven through the HTTP API, then audited.

It knows the server only through HTTP and the ``livesell`` CLI (for tokens): it creates a
product and a sale, opens it, fires N buy attempts and runs the audit. With ``--rate R`` the
attempts arrive at R per second whatever the server does (open model) and each latency is
measured from the attempt's intended send time, so a server that falls behind cannot hide its
queueing (no coordinated omission). With the default ``--rate 0`` every connection sends its
next attempt as soon as the previous reply arrives (closed model, for peak throughput), and
latency is measured from the actual send.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import psutil
from hdrh.histogram import HdrHistogram

from loadtest.rawhttp import RawPool

#: Outcomes that are the sale working as designed, not errors.
EXPECTED_CONFLICTS = ("sold_out", "limit_reached")


@dataclass
class FlashsaleConfig:
    """One load run. ``users`` defaults to ``attempts`` (every attempt a different buyer)."""

    url: str
    attempts: int
    stock: int
    limit: int = 1
    users: int = 0
    qty: int = 1
    rate: float = 0.0
    connections: int = 64
    price_cents: int = 1999
    hold_s: int = 3600
    duration_s: int = 3600
    audit: bool = True
    admin_token: str = ""
    livesell_cmd: list[str] = field(default_factory=list)
    env: dict[str, str] | None = None
    #: How long to wait for a server that stopped answering before auditing.
    recover_s: float = 30.0
    #: Processes (name -> pid) whose CPU use during the load is reported, e.g. server and Redis.
    watch: dict[str, int] = field(default_factory=dict)


def livesell_command() -> list[str]:
    """The ``livesell`` CLI: next to this interpreter (the venv), else on PATH."""
    here = os.path.join(os.path.dirname(sys.executable), "livesell")
    if os.path.exists(here):
        return [here]
    found = shutil.which("livesell")
    return [found] if found else [sys.executable, "-m", "web.cli"]


async def mint_tokens(
    cmd: list[str], role: str, user: str, count: int | None, env: dict[str, str] | None
) -> list[str]:
    """Tokens from ``livesell token`` (one subprocess; ``--count`` mints users user-0..)."""
    argv = [*cmd, "token", "--role", role, "--user", user]
    if count is not None:
        argv += ["--count", str(count)]
    # A blocking run in a thread rather than an asyncio subprocess: under uvloop (the load
    # tool installs it) an asyncio child's exit was at times never noticed, and the run hung.
    proc = await asyncio.to_thread(
        subprocess.run,
        argv,
        capture_output=True,
        env=env if env is not None else dict(os.environ),
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        err = proc.stderr.decode().strip()
        raise RuntimeError(f"livesell token failed ({proc.returncode}): {err}")
    tokens = proc.stdout.decode().split()
    if len(tokens) != (count or 1):
        raise RuntimeError(f"livesell token printed {len(tokens)} tokens, wanted {count or 1}")
    return tokens


async def _api(
    session: aiohttp.ClientSession, method: str, url: str, token: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    async with session.request(
        method, url, json=body, headers={"Authorization": f"Bearer {token}"}
    ) as r:
        data = await r.json(content_type=None)
        return r.status, data


async def _setup_sale(session: aiohttp.ClientSession, cfg: FlashsaleConfig, admin: str) -> int:
    base = cfg.url.rstrip("/")
    status, product = await _api(
        session, "POST", f"{base}/api/products", admin,
        {"name": "Load-test lamp", "price_cents": cfg.price_cents},
    )  # fmt: skip
    if status != 201:
        raise RuntimeError(f"create product: {status} {product}")
    body = {
        "product_id": product["id"], "quantity": cfg.stock, "per_user_limit": cfg.limit,
        "duration_s": cfg.duration_s, "hold_s": cfg.hold_s,
    }  # fmt: skip
    status, sale = await _api(session, "POST", f"{base}/api/sales", admin, body)
    if status != 201:
        raise RuntimeError(f"create sale: {status} {sale}")
    status, opened = await _api(session, "POST", f"{base}/api/sales/{sale['id']}/open", admin)
    if status != 200:
        raise RuntimeError(f"open sale: {status} {opened}")
    return int(sale["id"])


class _Tally:
    """Reply accounting; runs inside the event loop's data callbacks, so it stays tiny."""

    def __init__(self, open_model: bool) -> None:
        self.hist = HdrHistogram(1, 600_000_000, 3)  # microseconds, up to 10 minutes
        self.status: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.open_model = open_model
        self.last = 0.0
        self.errors = 0
        self.started = time.perf_counter()
        #: Every order the server confirmed (id -> user): what an audit must find again.
        self.orders: dict[str, str] = {}
        #: The first time (s into the run) each error kind was seen.
        self.first_error_s: dict[str, float] = {}

    def on_reply(self, status: int, body: bytes, intended: float, sent_at: float) -> None:
        now = time.perf_counter()
        self.last = now
        start = intended if self.open_model else sent_at
        self.hist.record_value(max(1, int((now - start) * 1e6)))
        self.status[status] += 1
        if status == 201:
            order = _order(body)
            if order:
                self.orders[order[0]] = order[1]
            return
        code = _error_code(body)
        self.codes[code] += 1
        if status != 409 or code not in EXPECTED_CONFLICTS:
            self.errors += 1
            self.first_error_s.setdefault(code, round(now - self.started, 3))


def _busy_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def _error_code(body: bytes) -> str:
    try:
        return str(json.loads(body).get("error", "?"))
    except (ValueError, AttributeError):
        return "transport" if not body else "unparsed"


def _order(body: bytes) -> tuple[str, str] | None:
    try:
        order = json.loads(body)["order"]
        return str(order["id"]), str(order["user_id"])
    except (ValueError, KeyError, TypeError):
        return None


def _request_factory(
    cfg: FlashsaleConfig, sale_id: int, tokens: list[str], run: str
) -> Callable[[int], bytes]:
    parts = urlsplit(cfg.url)
    body = json.dumps({"qty": cfg.qty}, separators=(",", ":")).encode()
    head = (
        f"POST /api/sales/{sale_id}/buy HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    ).encode()
    auth = [f"Authorization: Bearer {t}\r\n".encode() for t in tokens]
    key = f"Idempotency-Key: {run}-".encode()

    def make(i: int) -> bytes:
        # Attempt i is made by user i mod users, with its own idempotency key.
        return b"".join((head, auth[i % len(auth)], key, str(i).encode(), b"\r\n\r\n", body))

    return make


async def _fire(cfg: FlashsaleConfig, sale_id: int, tokens: list[str], run: str) -> dict[str, Any]:
    parts = urlsplit(cfg.url)
    tally = _Tally(open_model=cfg.rate > 0)
    make = _request_factory(cfg, sale_id, tokens, run)
    pool = RawPool(parts.hostname or "127.0.0.1", parts.port or 80, cfg.connections, tally.on_reply)
    # Closed model: every request is built before the clock starts (they all queue at once).
    prebuilt = [make(i) for i in range(cfg.attempts)] if cfg.rate <= 0 else []
    await pool.open()
    watched = {name: psutil.Process(pid) for name, pid in cfg.watch.items()}
    before = {name: sum(p.cpu_times()[:2]) for name, p in watched.items()}
    busy0 = _busy_s()
    cpu0 = time.process_time()
    start = time.perf_counter()
    max_backlog = 0
    try:
        if cfg.rate <= 0:
            for data in prebuilt:
                pool.submit(data, start)
            prebuilt.clear()
        else:
            step = 1.0 / cfg.rate
            i = 0
            while i < cfg.attempts:
                due = min(cfg.attempts, int((time.perf_counter() - start) * cfg.rate) + 1)
                while i < due:
                    pool.submit(make(i), start + i * step)
                    i += 1
                max_backlog = max(max_backlog, pool.backlog)
                # Wake at most every 1 ms: sub-millisecond sleeps spin the CPU the server needs.
                # A late wake-up still counts, since latency runs from the intended time.
                ahead = start + i * step - time.perf_counter()
                await asyncio.sleep(min(0.05, max(0.001, ahead)))
        await asyncio.wait_for(pool.drain(), 600)
    finally:
        pool.close()
    if pool.first_failure_at is not None:
        tally.first_error_s.setdefault("connect", round(pool.first_failure_at - start, 3))
    elapsed = max(tally.last - start, 1e-9)
    cpu = time.process_time() - cpu0
    cpu_pct = {n: round(100 * (sum(p.cpu_times()[:2]) - before[n]) / elapsed, 1)
               for n, p in watched.items()}  # fmt: skip
    # The whole machine's busy CPU (100 = one core): what other work competed with the run.
    cpu_pct["machine"] = round(100 * (_busy_s() - busy0) / elapsed, 1)
    h = tally.hist
    ok = tally.status[201]
    return {
        "orders_seen": tally.orders,
        "first_error_s": tally.first_error_s,
        "duration_s": round(elapsed, 3),
        "orders": ok,
        "status": {str(s): n for s, n in sorted(tally.status.items())},
        "codes": dict(tally.codes),
        "errors": tally.errors,
        "buys_per_s": round(ok / elapsed, 1),
        "attempts_per_s": round(sum(tally.status.values()) / elapsed, 1),
        "latency_ms": {
            "p50": h.get_value_at_percentile(50) / 1000,
            "p90": h.get_value_at_percentile(90) / 1000,
            "p99": h.get_value_at_percentile(99) / 1000,
            "p999": h.get_value_at_percentile(99.9) / 1000,
            "max": h.get_max_value() / 1000,
            "mean": round(h.get_mean_value() / 1000, 3),
        },
        "max_client_backlog": max_backlog,
        "reconnects": pool.reconnects,
        "connect_failures": pool.connect_failures,
        "client_cpu_s": round(cpu, 3),
        "client_cpu_pct": round(100 * cpu / elapsed, 1),
        **{f"{n}_cpu_pct": v for n, v in cpu_pct.items()},
    }


def _audit_figures(result: dict[str, Any], status: int, audit: dict[str, Any]) -> None:
    fig = audit.get("figures", {})
    live = int(fig.get("reserved", 0)) + int(fig.get("paid", 0))
    ever = live + int(fig.get("cancelled", 0)) + int(fig.get("expired", 0))
    initial = int(fig.get("initial_stock", 0))
    result["audit_ok"] = status == 200 and bool(audit.get("ok"))
    result["audit_sold"] = ever
    result["audit_oversold"] = max(0, live - initial, -int(fig.get("remaining", 0)))
    result["sold_matches_audit"] = ever == result["sold"]
    result["audit"] = {
        "checks": audit.get("checks"),
        "figures": fig,
        "problems": audit.get("problems"),
    }


async def run_flashsale(cfg: FlashsaleConfig) -> dict[str, Any]:
    """Create and open a sale, fire the attempts, audit; returns the result as plain data."""
    if cfg.attempts < 1 or cfg.stock < 1 or cfg.connections < 1:
        raise ValueError("attempts, stock and connections must be >= 1")
    cmd = cfg.livesell_cmd or livesell_command()
    users = cfg.users or cfg.attempts
    run = f"lt{secrets.token_hex(4)}"  # fresh user ids, so reruns on one server start at 0
    admin = cfg.admin_token or os.environ.get("LIVESELL_ADMIN_TOKEN", "")
    if not admin:
        admin = (await mint_tokens(cmd, "admin", f"{run}-admin", None, cfg.env))[0]
    tokens = await mint_tokens(cmd, "viewer", run, users, cfg.env)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        sale_id = await _setup_sale(session, cfg, admin)
        fired = await _fire(cfg, sale_id, tokens, run)
        result: dict[str, Any] = {
            "url": cfg.url, "sale_id": sale_id, "attempts": cfg.attempts, "users": users,
            "stock": cfg.stock, "limit": cfg.limit, "qty": cfg.qty,
            "model": "open" if cfg.rate > 0 else "closed",
            "rate": cfg.rate if cfg.rate > 0 else "max", "connections": cfg.connections,
        }  # fmt: skip
        result.update(fired)
        result["sold"] = fired["orders"] * cfg.qty
        result["oversold"] = max(0, result["sold"] - cfg.stock)
        result["audit_ok"] = None
        if cfg.audit:
            await _audit_after_faults(session, cfg, sale_id, admin, result)
    return result


async def _audit_after_faults(
    session: aiohttp.ClientSession,
    cfg: FlashsaleConfig,
    sale_id: int,
    admin: str,
    result: dict[str, Any],
) -> None:
    """Audit, once the server answers again (bounded), and look up every order seen."""
    base = cfg.url.rstrip("/")
    result["server_unreachable"] = bool(result["status"].get("0") or result["connect_failures"])
    waited = await _wait_healthy(session, base, cfg.recover_s)
    if waited is None:
        result["audit_error"] = f"server did not answer within {cfg.recover_s:.0f} s"
        return
    try:
        status, audit = await _api(session, "GET", f"{base}/api/sales/{sale_id}/audit", admin)
        _audit_figures(result, status, audit)
        missing = [
            oid
            for oid in result["orders_seen"]
            if (await _api(session, "GET", f"{base}/api/orders/{oid}", admin))[0] == 404
        ]
    except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
        result["audit_ok"] = None
        result["audit_error"] = f"{type(exc).__name__}: {exc}"
        return
    result["lost"] = len(missing)
    result["lost_orders"] = missing[:50]


async def _wait_healthy(
    session: aiohttp.ClientSession, base: str, timeout_s: float
) -> float | None:
    """Seconds until ``/healthz`` answers 200, or None after ``timeout_s``."""
    start = time.monotonic()
    while True:
        try:
            async with session.get(f"{base}/healthz") as r:
                if r.status == 200:
                    return round(time.monotonic() - start, 2)
        except (aiohttp.ClientError, OSError, TimeoutError):
            pass
        if time.monotonic() - start >= timeout_s:
            return None
        await asyncio.sleep(0.5)


def add_parser(subparsers: Any) -> None:
    """Register the ``flashsale`` subcommand."""
    p = subparsers.add_parser("flashsale", help="drive a flash sale through the HTTP API")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("--buyers", type=int, required=True, help="buy attempts to fire (N)")
    p.add_argument("--stock", type=int, required=True, help="units on sale")
    p.add_argument("--limit", type=int, default=1, help="per-user limit")
    p.add_argument("--users", type=int, default=0, help="distinct buyers (default N)")
    p.add_argument("--qty", type=int, default=1, help="units per attempt")
    p.add_argument("--rate", type=float, default=0.0, help="attempts/s, open model (0 = max)")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    p.add_argument("--hold", type=int, default=3600, help="payment hold of the sale, s")
    p.add_argument("--no-audit", action="store_true", help="skip the audit")
    p.add_argument("--recover", type=float, default=30, help="wait this long for a dead server")
    p.add_argument("--orders", help="write every order seen here (default: next to --json)")
    p.add_argument(
        "--watch", action="append", default=[], metavar="NAME=PID",
        help="report this process's CPU during the load as NAME_cpu_pct (repeatable)",
    )  # fmt: skip
    p.add_argument("--json", help="write the result here")


async def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run from parsed ``flashsale`` arguments."""
    cfg = FlashsaleConfig(
        url=args.url, attempts=args.buyers, stock=args.stock, limit=args.limit,
        users=args.users, qty=args.qty, rate=args.rate, connections=args.connections,
        hold_s=args.hold, audit=not args.no_audit, recover_s=args.recover,
        watch={n: int(pid) for n, _, pid in (w.partition("=") for w in args.watch)},
    )  # fmt: skip
    return await run_flashsale(cfg)
