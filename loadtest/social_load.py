"""``livesell-loadtest groupbuy`` and ``coupons``: social selling driven through the HTTP API.

Like the flash-sale scenario, it knows the server only through HTTP and the ``livesell`` CLI
(for tokens), fires every request at once over keep-alive connections (closed model), and
audits the result. Each run also measures a flash sale of the same size on the same server
(unless ``--no-baseline``), so the join or claim rate is reported as a ratio of the buy rate
measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from hdrh.histogram import HdrHistogram

from loadtest.flashsale_load import (
    FlashsaleConfig,
    _api,
    _error_code,
    _setup_sale,
    livesell_command,
    mint_tokens,
    run_flashsale,
)
from loadtest.rawhttp import RawPool

#: The subcommands this module adds.
COMMANDS = ("groupbuy", "coupons")
#: Refusals that are the feature working as designed, not errors.
EXPECTED = ("group_full", "sold_out", "limit_reached", "coupons_gone")


class _Tally:
    """Replies of one phase: statuses, error codes, latency, and each reply's body by tag."""

    def __init__(self, keep_bodies: bool = False) -> None:
        self.hist = HdrHistogram(1, 600_000_000, 3)  # microseconds
        self.status: Counter[int] = Counter()
        self.codes: Counter[str] = Counter()
        self.errors = 0
        self.last = 0.0
        self.bodies: dict[int, bytes] | None = {} if keep_bodies else None

    def on_reply(self, status: int, body: bytes, tag: Any, sent_at: float) -> None:
        now = time.perf_counter()
        self.last = now
        self.hist.record_value(max(1, int((now - sent_at) * 1e6)))
        self.status[status] += 1
        if self.bodies is not None:
            self.bodies[tag] = body
        if status not in (200, 201):
            code = _error_code(body)
            self.codes[code] += 1
            if status != 409 or code not in EXPECTED:
                self.errors += 1


async def _blast(url: str, requests: Sequence[bytes], connections: int,
                 keep_bodies: bool = False) -> tuple[dict[str, Any], _Tally]:  # fmt: skip
    """Send every request at once over ``connections``; the phase's figures and replies."""
    parts = urlsplit(url)
    tally = _Tally(keep_bodies)
    pool = RawPool(parts.hostname or "127.0.0.1", parts.port or 80, connections, tally.on_reply)
    await pool.open()
    start = time.perf_counter()
    try:
        for i, data in enumerate(requests):
            pool.submit(data, i)
        await pool.drain()
    finally:
        pool.close()
    elapsed = max(tally.last - start, 1e-9)
    h = tally.hist
    return {
        "attempts": len(requests),
        "ok": tally.status[201],
        "duration_s": round(elapsed, 3),
        "attempts_per_s": round(len(requests) / elapsed, 1),
        "ok_per_s": round(tally.status[201] / elapsed, 1),
        "status": {str(s): n for s, n in sorted(tally.status.items())},
        "codes": dict(tally.codes),
        "errors": tally.errors,
        "latency_ms": {
            "p50": h.get_value_at_percentile(50) / 1000,
            "p99": h.get_value_at_percentile(99) / 1000,
            "max": h.get_max_value() / 1000,
        },
    }, tally


def _group_id(body: bytes) -> str | None:
    """The group id in an open reply, or None for a refusal."""
    try:
        return str(json.loads(body)["group"]["id"])
    except (ValueError, KeyError, TypeError):
        return None


def _post(url: str, path: str, token: str, extra: str = "") -> bytes:
    """One pre-encoded POST with an empty JSON body."""
    return (
        f"POST {path} HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
        f"Authorization: Bearer {token}\r\n{extra}"
        "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
    ).encode()


async def _baseline(result: dict[str, Any], attempts: int, stock: int, connections: int,
                    env: dict[str, str] | None) -> None:  # fmt: skip
    """Run a flash sale of the same size on the same server and compare ``result``'s rate."""
    r = await run_flashsale(FlashsaleConfig(url=result["url"], attempts=attempts, stock=stock,
                                            connections=connections, env=env))  # fmt: skip
    result["flashsale"] = {
        "attempts_per_s": r["attempts_per_s"], "buys_per_s": r["buys_per_s"],
        "p99_ms": r["latency_ms"]["p99"], "oversold": r["oversold"], "audit_ok": r["audit_ok"],
    }  # fmt: skip
    result["ratio_to_flashsale"] = round(result["rate"] / max(r["attempts_per_s"], 1e-9), 3)


async def _checked(session: aiohttp.ClientSession, method: str, url: str, token: str,
                   body: Any = None, want: int = 201) -> dict[str, Any]:  # fmt: skip
    status, data = await _api(session, method, url, token, body)
    if status != want:
        raise RuntimeError(f"{method} {url}: {status} {data}")
    return data


async def run_groupbuy(url: str, n: int, k: int, m: int, connections: int = 64,
                       baseline: bool = True, env: dict[str, str] | None = None
                       ) -> dict[str, Any]:  # fmt: skip
    """Open ``n`` groups of ``k``, then fire ``m`` joins at them; audit."""
    base = url.rstrip("/")
    if n < 1 or k < 2 or m < 1:
        raise ValueError("groups >= 1, size >= 2 and joiners >= 1")
    cmd, run = livesell_command(), f"gb{secrets.token_hex(4)}"
    admin = (await mint_tokens(cmd, "admin", f"{run}-admin", None, env))[0]
    openers = await mint_tokens(cmd, "viewer", f"{run}o", n, env)
    joiners = await mint_tokens(cmd, "viewer", f"{run}j", m, env)
    stock = n * k
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        sale_id = await _setup_sale(session, FlashsaleConfig(url, 1, stock), admin)
        await _checked(session, "POST", f"{base}/api/sales/{sale_id}/group-offer", admin,
                       {"price_cents": 999, "size": k, "ttl_s": 3600})  # fmt: skip
        opens = [_post(url, f"/api/sales/{sale_id}/groups", t, "Idempotency-Key: o\r\n")
                 for t in openers]  # fmt: skip
        opened, replies = await _blast(url, opens, connections, keep_bodies=True)
        ids = [g for g in (_group_id(b) for b in (replies.bodies or {}).values()) if g]
        if not ids:
            raise RuntimeError(f"no group opened: {opened}")
        joins = [_post(url, f"/api/groups/{ids[j % len(ids)]}/join", t)
                 for j, t in enumerate(joiners)]  # fmt: skip
        joined, _ = await _blast(url, joins, connections)
        status, audit = await _api(session, "GET", f"{base}/api/sales/{sale_id}/audit", admin)
    fig = audit.get("figures", {})
    sold = opened["ok"] + joined["ok"]
    result: dict[str, Any] = {
        "scenario": "groupbuy", "url": url, "sale_id": sale_id, "groups": n, "size": k,
        "joiners": m, "stock": stock, "connections": connections,
        "open": opened, "join": joined, "rate": joined["attempts_per_s"],
        "p99_ms": joined["latency_ms"]["p99"], "sold": sold,
        "oversold": max(0, sold - stock, int(fig.get("reserved", 0)) - stock),
        "groups_filled": fig.get("groups_filled"),
        "audit_ok": status == 200 and bool(audit.get("ok")),
        "audit": {"checks": audit.get("checks"), "figures": fig,
                  "problems": audit.get("problems")},
    }  # fmt: skip
    if baseline:
        await _baseline(result, m, stock, connections, env)
    return result


async def run_coupons(url: str, n: int, m: int, connections: int = 64, baseline: bool = True,
                      env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Drop ``n`` coupons and fire ``m`` claims at them; check none is extra."""
    base = url.rstrip("/")
    if n < 1 or m < 1:
        raise ValueError("coupons and claimers must be >= 1")
    cmd, run = livesell_command(), f"cp{secrets.token_hex(4)}"
    admin = (await mint_tokens(cmd, "admin", f"{run}-admin", None, env))[0]
    claimers = await mint_tokens(cmd, "viewer", f"{run}c", m, env)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        sale_id = await _setup_sale(session, FlashsaleConfig(url, 1, 1), admin)
        drop = await _checked(session, "POST", f"{base}/api/sales/{sale_id}/coupons", admin,
                              {"kind": "amount", "value": 100, "count": n,
                               "expires_s": 3600})  # fmt: skip
        claims = [_post(url, f"/api/coupons/{drop['id']}/claim", t) for t in claimers]
        claimed, _ = await _blast(url, claims, connections)
        after = await _checked(session, "GET", f"{base}/api/coupons/{drop['id']}", admin, want=200)
    left = int(after["left"])
    result: dict[str, Any] = {
        "scenario": "coupons", "url": url, "sale_id": sale_id, "coupon_id": drop["id"],
        "coupons": n, "claimers": m, "connections": connections, "claim": claimed,
        "rate": claimed["attempts_per_s"], "p99_ms": claimed["latency_ms"]["p99"],
        "claimed": claimed["ok"], "left": left,
        "oversold": max(0, claimed["ok"] - n, -left),
        # Every coupon is accounted for: claimed ones plus those left make the drop.
        "audit_ok": claimed["ok"] + left == n and claimed["ok"] == min(n, m),
    }  # fmt: skip
    if baseline:
        await _baseline(result, m, n, connections, env)
    return result


def add_parsers(subparsers: Any) -> None:
    """Register the ``groupbuy`` and ``coupons`` subcommands."""
    g = subparsers.add_parser("groupbuy", help="group buys through the HTTP API")
    g.add_argument("--groups", type=int, required=True, help="groups to open (N)")
    g.add_argument("--size", type=int, required=True, help="members per group (K)")
    g.add_argument("--joiners", type=int, required=True, help="join attempts (M)")
    c = subparsers.add_parser("coupons", help="a coupon drop claimed through the HTTP API")
    c.add_argument("--coupons", type=int, required=True, help="coupons dropped (N)")
    c.add_argument("--claimers", type=int, required=True, help="claim attempts (M)")
    for p in (g, c):
        p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
        p.add_argument("--connections", type=int, default=64, help="keep-alive connections")
        p.add_argument("--no-baseline", action="store_true", help="skip the flash-sale run")
        p.add_argument("--json", help="write the result here")


async def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parsed ``groupbuy`` or ``coupons`` subcommand."""
    baseline = not args.no_baseline
    if args.cmd == "groupbuy":
        return await run_groupbuy(args.url, args.groups, args.size, args.joiners,
                                  args.connections, baseline)  # fmt: skip
    return await run_coupons(args.url, args.coupons, args.claimers, args.connections, baseline)


def summary(result: dict[str, Any]) -> str:
    """One human line about a run."""
    base = result.get("flashsale")
    vs = f", {result['ratio_to_flashsale']}x the flash-sale rate" if base else ""
    return (
        f"{result['scenario']}: {result['rate']:.0f} decisions/s, p99 {result['p99_ms']:.1f} ms, "
        f"oversold {result['oversold']}, audit_ok {result['audit_ok']}{vs}"
    )
