"""What a flash-sale load run concludes: its exit code and reason, its orders, one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def verdict(result: dict[str, Any]) -> tuple[int, str]:
    """The exit code and its one-line reason."""
    if result["oversold"]:
        return 1, f"oversold by {result['oversold']} units"
    if result.get("audit_error"):
        return 1, f"audit not possible: {result['audit_error']}"
    if result.get("lost"):
        return 1, f"{result['lost']} orders the server confirmed are gone"
    if result["audit_ok"] is False:
        return 1, "the audit failed"
    if result.get("server_unreachable"):
        first = min(result["first_error_s"].values(), default=0.0)
        return 1, (
            f"the server stopped answering {first} s into the rush "
            f"({result['status'].get('0', 0)} attempts unanswered, "
            f"{result['connect_failures']} connects refused); "
            f"{len(result['orders_seen'])} orders seen, {result.get('lost', '?')} lost"
        )
    return 0, "ok"


def write_orders(path: str, result: dict[str, Any]) -> None:
    """Every order the run was told about, one JSON object a line."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w") as f:
        for oid, user in result["orders_seen"].items():
            f.write(json.dumps({"id": oid, "user": user}) + "\n")


def summary(result: dict[str, Any]) -> str:
    """One human line about a run."""
    lat = result["latency_ms"]
    return (
        f"flashsale: {result['attempts']} attempts ({result['model']}, rate {result['rate']}): "
        f"sold {result['sold']}/{result['stock']}, oversold {result['oversold']}, "
        f"errors {result['errors']}, {result['buys_per_s']:.0f} buys/s, "
        f"p50 {lat['p50']:.1f} ms p99 {lat['p99']:.1f} ms max {lat['max']:.1f} ms, "
        f"audit_ok {result['audit_ok']}, client cpu {result['client_cpu_pct']}%"
    )
