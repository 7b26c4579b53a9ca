"""``livesell-loadtest memberprice``: a flash sale with a member price, against one without.

Two sales in one show are rushed, one of a product with a member price and one of a product
without (the baseline, where no buy asks who is a member), each by its own crowd of which the
same share joined the host's store first. Each is measured like ``livesell-loadtest
flashsale`` and audited, and every order is read back: a member's must be at the member
price, everyone else's at the sale's price. Each round has a new store and two new crowds (so
no membership is cached yet and both sales meet the same server state) and alternates which
sale goes first; the member sale's attempt rate is reported as a ratio of the baseline's, the
median over rounds of each round's pair.
"""

from __future__ import annotations

import argparse
import json
import secrets
from statistics import median
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from loadtest.flashsale_load import (
    FlashsaleConfig,
    _audit_after_faults,
    _fire,
    livesell_command,
    mint_tokens,
)
from loadtest.social_load import _blast, _checked, _post

SALE_PRICE = 1999
MEMBER_PRICE = 1500
#: Figures of each sale kept in the result (the per-order map stays out of the JSON).
KEPT = ("sale_id", "attempts_per_s", "buys_per_s", "orders", "codes", "errors", "latency_ms",
        "duration_s", "server_cpu_pct", "machine_cpu_pct", "oversold", "audit_ok", "lost",
        "member_orders", "other_orders", "price_mismatches", "mismatches")  # fmt: skip


def is_member(i: int, share: float) -> bool:
    """Whether buyer ``i`` joins the store: spread evenly, so members and others interleave."""
    return int((i + 1) * share) > int(i * share)


def _get(url: str, path: str, token: str) -> bytes:
    """One pre-encoded GET."""
    host = urlsplit(url).netloc
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n".encode()


async def _show_sale(session: aiohttp.ClientSession, base: str, admin: str, stream_id: str,
                     stock: int, member_price: int | None) -> int:  # fmt: skip
    """An open sale in the show of a product at SALE_PRICE (with ``member_price`` if given)."""
    product: dict[str, Any] = {"name": "Load-test scarf", "price_cents": SALE_PRICE}
    if member_price is not None:
        product["member_price_cents"] = member_price
    made = await _checked(session, "POST", f"{base}/api/products", admin, product)
    sale = await _checked(session, "POST", f"{base}/api/sales", admin, {
        "product_id": made["id"], "quantity": stock, "per_user_limit": 1, "duration_s": 3600,
        "hold_s": 3600, "stream_id": stream_id,
    })  # fmt: skip
    await _checked(session, "POST", f"{base}/api/sales/{sale['id']}/open", admin, want=200)
    return int(sale["id"])


async def _prices(url: str, admin: str, orders: dict[str, str], connections: int
                  ) -> dict[str, tuple[str, int]]:  # fmt: skip
    """Each order's buyer and unit price, read back from the server."""
    ids = list(orders)
    if not ids:
        return {}
    _, tally = await _blast(url, [_get(url, f"/api/orders/{o}", admin) for o in ids],
                            connections, keep_bodies=True)  # fmt: skip
    got: dict[str, tuple[str, int]] = {}
    for i, body in (tally.bodies or {}).items():
        try:
            order = json.loads(body)
            got[ids[i]] = (str(order["user_id"]), int(order["unit_price_cents"]))
        except (ValueError, KeyError, TypeError):
            continue
    return got


async def _rush(session: aiohttp.ClientSession, cfg: FlashsaleConfig, admin: str,
                stream_id: str, tokens: list[str], run: str, member_price: int | None
                ) -> tuple[dict[str, Any], dict[str, str]]:  # fmt: skip
    """One sale rushed by every buyer and audited; its figures and the orders seen."""
    base = cfg.url.rstrip("/")
    sale_id = await _show_sale(session, base, admin, stream_id, cfg.stock, member_price)
    result: dict[str, Any] = {"sale_id": sale_id, **await _fire(cfg, sale_id, tokens, run)}
    result["sold"] = result["orders"]
    result["oversold"] = max(0, result["sold"] - cfg.stock)
    await _audit_after_faults(session, cfg, sale_id, admin, result)
    return result, result.pop("orders_seen")


def _check_prices(prices: dict[str, tuple[str, int]], seen: dict[str, str],
                  members: set[str] | None) -> dict[str, Any]:  # fmt: skip
    """Every order at the price its buyer should pay (``members`` None: nobody's is lower)."""
    wrong = []
    counts = {"member": 0, "other": 0}
    for oid, user in seen.items():
        member = members is not None and user in members
        counts["member" if member else "other"] += 1
        want = MEMBER_PRICE if member else SALE_PRICE
        got = prices.get(oid)
        if got is None or got != (user, want):
            wrong.append({"order": oid, "user": user, "want": want, "got": got})
    return {"member_orders": counts["member"], "other_orders": counts["other"],
            "price_mismatches": len(wrong), "mismatches": wrong[:20]}  # fmt: skip


async def _round(url: str, buyers: int, share: float, stock: int, connections: int,
                 env: dict[str, str] | None, member_first: bool,
                 watch: dict[str, int] | None) -> dict[str, Any]:  # fmt: skip
    """One round: a new store and two crowds alike (the same share joined), one per sale.

    Each sale gets its own buyers, so both meet the server in the same state: members' tokens
    seen at their join, everyone else's new (the server caches verified tokens, and a crowd
    reused for the second sale made whichever sale went second look faster).
    """
    base = url.rstrip("/")
    cmd, run = livesell_command(), f"mp{secrets.token_hex(4)}"
    admin = (await mint_tokens(cmd, "admin", f"{run}-admin", None, env))[0]
    tokens = await mint_tokens(cmd, "viewer", run, 2 * buyers, env)
    crowds = {"member": tokens[:buyers], "flash": tokens[buyers:]}
    member_ids = {f"{run}-{i}" for i in range(2 * buyers) if is_member(i % buyers, share)}
    host = f"{run}-host"
    cfg = FlashsaleConfig(url=url, attempts=buyers, stock=stock, connections=connections,
                          watch=watch or {})  # fmt: skip
    rushed: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        await _checked(session, "POST", f"{base}/api/streams", admin,
                       {"id": run, "host_id": host, "title": "Member-price bench"})  # fmt: skip
        joins = [_post(url, f"/api/stores/{host}/join", t)
                 for i, t in enumerate(tokens) if is_member(i % buyers, share)]  # fmt: skip
        joined = (await _blast(url, joins, connections))[0]["ok"] if joins else 0
        if joined != len(member_ids):
            raise RuntimeError(f"only {joined} of {len(member_ids)} members joined")
        for kind in ("member", "flash") if member_first else ("flash", "member"):
            price = MEMBER_PRICE if kind == "member" else None
            rushed[kind] = await _rush(session, cfg, admin, run, crowds[kind], f"{run}{kind}",
                                       price)  # fmt: skip
    (sale, seen), (flash, flash_seen) = rushed["member"], rushed["flash"]
    sale.update(_check_prices(await _prices(url, admin, seen, connections), seen, member_ids))
    flash.update(_check_prices(await _prices(url, admin, flash_seen, connections), flash_seen,
                               None))  # fmt: skip
    return {"members": len(member_ids) // 2, "member_sale": sale, "flashsale": flash,
            "ratio": sale["attempts_per_s"] / max(flash["attempts_per_s"], 1e-9)}  # fmt: skip


async def run_memberprice(url: str, buyers: int, share: float, stock: int = 0,
                          connections: int = 64, rounds: int = 3,
                          env: dict[str, str] | None = None, server_pid: int = 0
                          ) -> dict[str, Any]:  # fmt: skip
    """Rounds of both sales, in alternating order; medians of the rates and of the ratios."""
    if buyers < 1 or not 0.0 <= share <= 1.0 or connections < 1 or stock < 0 or rounds < 1:
        raise ValueError("buyers, connections, rounds >= 1; members share in 0..1; stock >= 0")
    stock = stock or buyers
    watch = {"server": server_pid} if server_pid else None
    done = [await _round(url, buyers, share, stock, connections, env, k % 2 == 0, watch)
            for k in range(rounds)]  # fmt: skip
    sales, flashes = [r["member_sale"] for r in done], [r["flashsale"] for r in done]
    every = sales + flashes
    return {
        "scenario": "memberprice", "url": url, "buyers": buyers, "members": done[0]["members"],
        "members_share": share, "stock": stock, "connections": connections, "rounds": rounds,
        "sale_price_cents": SALE_PRICE, "member_price_cents": MEMBER_PRICE,
        "rate": median(s["attempts_per_s"] for s in sales),
        "p99_ms": median(s["latency_ms"]["p99"] for s in sales),
        "flashsale_rate": median(f["attempts_per_s"] for f in flashes),
        "flashsale_p99_ms": median(f["latency_ms"]["p99"] for f in flashes),
        # Each round's two sales ran back to back: their ratio is paired against the machine's
        # drift, and the median of the pairs is what is reported.
        "ratio_to_flashsale": round(median(r["ratio"] for r in done), 3),
        **_cpu(sales, flashes, buyers),
        "oversold": max(s["oversold"] for s in every),
        "audit_ok": all(s["audit_ok"] is True for s in every),
        "member_orders": sum(s["member_orders"] for s in sales),
        "other_orders": sum(s["other_orders"] for s in sales),
        "price_mismatches": sum(s["price_mismatches"] for s in every),
        "prices_ok": all(s["price_mismatches"] == 0 for s in every),
        "rounds_detail": [{
            "ratio": round(r["ratio"], 3),
            "member_sale": {k: r["member_sale"].get(k) for k in KEPT},
            "flashsale": {k: r["flashsale"].get(k) for k in KEPT},
        } for r in done],
    }  # fmt: skip


def _cpu(sales: list[dict[str, Any]], flashes: list[dict[str, Any]], attempts: int
         ) -> dict[str, float]:  # fmt: skip
    """The server's CPU per attempt of each sale (median, µs) when its pid was given.

    Less bent than the rate by other work on a shared machine: the server's own CPU time.
    """
    if "server_cpu_pct" not in sales[0]:
        return {}

    def per(run: dict[str, Any]) -> float:
        return float(run["server_cpu_pct"]) * 1e4 * float(run["duration_s"]) / attempts

    ours, base = median(per(s) for s in sales), median(per(f) for f in flashes)
    return {"server_cpu_us_per_attempt": round(ours, 1),
            "flashsale_server_cpu_us_per_attempt": round(base, 1),
            "cpu_ratio_to_flashsale": round(ours / max(base, 1e-9), 3)}  # fmt: skip


def add_parser(subparsers: Any) -> None:
    """Register the ``memberprice`` subcommand."""
    p = subparsers.add_parser("memberprice", help="a member-price flash sale against a plain one")
    p.add_argument("--buyers", type=int, required=True, help="buy attempts, one per buyer (N)")
    p.add_argument("--members-share", type=float, default=0.5,
                   help="share of the buyers who join the store first (0..1)")  # fmt: skip
    p.add_argument("--stock", type=int, default=0, help="units of each sale (default N)")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("--connections", type=int, default=64, help="keep-alive connections")
    p.add_argument("--rounds", type=int, default=3, help="rounds of both sales (medians)")
    p.add_argument("--server-pid", type=int, default=0,
                   help="also report this server process's CPU per attempt")  # fmt: skip
    p.add_argument("--json", help="write the result here")


async def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run the parsed ``memberprice`` subcommand."""
    return await run_memberprice(
        args.url,
        args.buyers,
        args.members_share,
        args.stock,
        args.connections,
        args.rounds,
        server_pid=args.server_pid,
    )


def summary(result: dict[str, Any]) -> str:
    """One human line about a run."""
    return (
        f"memberprice: {result['rate']:.0f} attempts/s, p99 {result['p99_ms']:.1f} ms, "
        f"{result['ratio_to_flashsale']}x the flash-sale rate, oversold {result['oversold']}, "
        f"audit_ok {result['audit_ok']}, prices_ok {result['prices_ok']} "
        f"({result['member_orders']} member and {result['other_orders']} other orders)"
    )


def ok(result: dict[str, Any]) -> bool:
    """Whether the run sold nothing twice, audited clean and charged everyone right."""
    return result["oversold"] == 0 and result["audit_ok"] and result["prices_ok"]
