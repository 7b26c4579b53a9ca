"""``livesell-loadtest auction``: bidders rush the lots of live auctions through the HTTP API.

It knows the server only through HTTP and the ``livesell`` CLI (for tokens), like the other
scenarios: N lots are opened, M bids (each bidder one, every amount a valid next bid at some
moment) are fired at once over keep-alive connections, the lots close by the server's clock,
and each lot is audited (one winner, the highest bid, no bid under the increment). A flash
sale of the same size runs on the same server (unless ``--no-baseline``) for the ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from loadtest.flashsale_load import _api, livesell_command, mint_tokens
from loadtest.social_load import _baseline, _blast, _checked

#: Refusals that are the auction working as designed (a higher bid got there first).
EXPECTED = ("bid_too_low",)


def _bid(url: str, lot_id: int, token: str, amount: int) -> bytes:
    """One pre-encoded bid."""
    body = json.dumps({"amount_cents": amount})
    return (
        f"POST /api/lots/{lot_id}/bids HTTP/1.1\r\nHost: {urlsplit(url).netloc}\r\n"
        f"Authorization: Bearer {token}\r\nIdempotency-Key: b\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
    ).encode()


async def run_auction(url: str, lots: int, bidders: int, connections: int = 64,
                      duration_s: int = 10, baseline: bool = True,
                      env: dict[str, str] | None = None) -> dict[str, Any]:  # fmt: skip
    """Open ``lots`` lots, fire ``bidders`` bids at them, wait for the close, audit each."""
    base = url.rstrip("/")
    if lots < 1 or bidders < 1:
        raise ValueError("lots and bidders must be >= 1")
    cmd, run = livesell_command(), f"au{secrets.token_hex(4)}"
    admin = (await mint_tokens(cmd, "admin", f"{run}-admin", None, env))[0]
    tokens = await mint_tokens(cmd, "viewer", f"{run}b", bidders, env)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        product = await _checked(session, "POST", f"{base}/api/products", admin,
                                 {"name": "Load-test vase", "price_cents": 1000})  # fmt: skip
        ids = []
        for _ in range(lots):
            lot = await _checked(session, "POST", f"{base}/api/lots", admin, {
                "product_id": product["id"], "start_cents": 100, "increment_cents": 10,
                "duration_s": duration_s, "window_s": 2, "extend_s": 2,
            })  # fmt: skip
            await _checked(session, "POST", f"{base}/api/lots/{lot['id']}/open", admin, want=200)
            ids.append(int(lot["id"]))
        # Bidder i bids on lot i % N the (i // N)-th step above the start: each is valid when
        # it arrives in order, so the refusals measure the race, not bad input.
        bids = [_bid(url, ids[i % lots], t, 100 + 10 * (i // lots)) for i, t in enumerate(tokens)]
        figures, tally = await _blast(url, bids, connections)
        finals = []
        for lot_id in ids:
            while True:
                status, lot = await _api(session, "GET", f"{base}/api/lots/{lot_id}", admin)
                if status != 200 or lot["state"] not in ("scheduled", "open"):
                    break
                await asyncio.sleep(0.2)
            _, audit = await _api(session, "GET", f"{base}/api/sales/{lot_id}/audit", admin)
            finals.append((lot, audit))
    unexpected = sum(n for c, n in tally.codes.items() if c not in EXPECTED)
    checks = [(lot.get("state"), audit.get("checks", {})) for lot, audit in finals]
    one_winner = sum(1 for s, c in checks if s == "won" and c.get("auction_one_winner_with_order"))
    result: dict[str, Any] = {
        "scenario": "auction", "url": url, "lots": lots, "bidders": bidders,
        "connections": connections, "bid": figures, "rate": figures["attempts_per_s"],
        "accepted": figures["ok"], "p99_ms": figures["latency_ms"]["p99"],
        "unexpected_errors": unexpected, "lots_with_one_winner": one_winner,
        "audit_ok": all(a.get("ok") for _, a in finals) and one_winner == lots,
        "problems": [p for _, a in finals for p in a.get("problems", [])][:20],
    }  # fmt: skip
    if baseline:
        await _baseline(result, bidders, lots, connections, env)
    return result


def add_parser(subparsers: Any) -> None:
    """Register the ``auction`` subcommand."""
    p = subparsers.add_parser("auction", help="live-auction bids through the HTTP API")
    p.add_argument("--lots", type=int, required=True, help="lots to open (N)")
    p.add_argument("--bidders", type=int, required=True, help="bids, one per bidder (M)")
    p.add_argument("--duration", type=int, default=10, help="each lot's duration in seconds")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    p.add_argument("--no-baseline", action="store_true", help="skip the flash-sale run")
    p.add_argument("--json", help="write the result here")


async def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parsed ``auction`` subcommand."""
    return await run_auction(args.url, args.lots, args.bidders, args.connections,
                             args.duration, not args.no_baseline)  # fmt: skip


def summary(result: dict[str, Any]) -> str:
    """One human line about a run."""
    vs = f", {result['ratio_to_flashsale']}x the flash-sale rate" if "flashsale" in result else ""
    return (
        f"auction: {result['rate']:.0f} bids/s, p99 {result['p99_ms']:.1f} ms, "
        f"{result['lots_with_one_winner']}/{result['lots']} lots with one winner, "
        f"audit_ok {result['audit_ok']}{vs}"
    )
