"""One show, start to end: set-up, audience (here or in worker processes), host, faults, audit.

The result is plain data (the JSON report). Whatever happens to the server, the run ends
with a report: what it saw, the errors by kind with their times, every order it was told
about, and whether each of those still exists once the server answers again.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from loadtest.flashsale_load import livesell_command, mint_tokens
from loadtest.show.api import ShowApi, ShowError
from loadtest.show.completeness import Completeness
from loadtest.show.guard import invalid_reasons
from loadtest.show.host import Host
from loadtest.show.plan import CrowdPlan
from loadtest.show.recorder import Recorder
from loadtest.show.rehearsal import check_rehearsal
from loadtest.show.scenario import Scenario
from loadtest.show.workers import run_crowd, spawn

#: Time between the end of set-up and the first join (tokens minted, workers started).
LEAD_S = 1.0


class Progress:
    """The live line: stage, connected viewers, rates, current p99, errors (on a terminal)."""

    def __init__(self, sc: Scenario, origin_ns: int, out: TextIO | None) -> None:
        self.sc = sc
        self.origin_ns = origin_ns
        self.out = out
        self.latest: dict[int, dict[str, Any]] = {}
        self._last: dict[str, Any] = {}
        self._shown_at = 0.0

    def update(self, worker: int, p: dict[str, Any]) -> None:
        """A worker's latest counters (the line is printed at most once a second)."""
        self.latest[worker] = p
        now = time.monotonic()
        if now - self._shown_at >= 0.9:
            self._shown_at = now
            self.show()

    def stage(self, t: float) -> str:
        """The stage at ``t`` seconds into the show."""
        for st in self.sc.stages:
            if t < st.duration_s:
                return st.name
            t -= st.duration_s
        return "drain"

    def show(self) -> None:
        """Print the line (overwriting the last one)."""
        if self.out is None or not self.latest:
            return
        tot = {
            k: sum(p[k] for p in self.latest.values()) for k in ("live", "chats", "buys", "errors")
        }
        worst = {k: max(p[k] for p in self.latest.values()) for k in ("chat_p99", "buy_p99")}
        t = (time.monotonic_ns() - self.origin_ns) / 1e9
        rate = {k: tot[k] - self._last.get(k, 0) for k in ("chats", "buys")}
        self._last = tot
        line = (
            f"[{self.stage(t):>6} {t:6.1f}s] viewers {tot['live']:>5}/{self.sc.viewers} "
            f"chat {rate['chats']:>4}/s buys {tot['buys']:>5} "
            f"p99 chat {worst['chat_p99']:.0f} ms buy {worst['buy_p99']:.0f} ms "
            f"errors {tot['errors']}"
        )
        end = "\r" if self.out.isatty() else "\n"
        self.out.write(line + end)
        self.out.flush()


async def _tokens(
    sc: Scenario, run: str, admin: str, env: dict[str, str] | None
) -> tuple[str, list[str]]:
    cmd = livesell_command()
    if not admin:
        admin = (await mint_tokens(cmd, "admin", f"{run}-host", None, env))[0]
    viewers = await mint_tokens(cmd, "viewer", f"{run}v", sc.viewers, env)
    return admin, viewers


async def run_show(
    sc: Scenario,
    admin_token: str = "",
    env: dict[str, str] | None = None,
    out: TextIO | None = sys.stderr,
    orders_file: str | None = None,
    host_token: str = "",
) -> dict[str, Any]:
    """Rehearse the show; returns the report (``exit``: 0, or 1 with a one-line reason).

    With ``sc.rehearse`` the stream must be a rehearsal that ``host_token`` (default: the
    admin's) may report on; the run refuses (``ShowError``) before any viewer joins otherwise.
    """
    sc = sc.resolved()
    run = secrets.token_hex(4)
    if sc.rehearse:  # refuse a real show before minting a single viewer
        async with ShowApi(sc.url) as api:
            await check_rehearsal(api, sc.rehearse, host_token)
    try:
        admin, tokens = await _tokens(
            sc, run, admin_token or os.environ.get("LIVESELL_ADMIN_TOKEN", ""), env
        )
    except (RuntimeError, OSError, TimeoutError) as exc:
        raise ShowError(f"could not mint tokens: {exc}") from exc
    # The host's calls wait longer than a viewer's: under a join storm an open takes seconds.
    async with ShowApi(sc.url, timeout_s=60) as api:
        host_rec = Recorder(time.monotonic_ns())
        host = Host(api, admin, host_rec)
        if sc.rehearse:  # the real host runs the show; only the audience is synthetic
            setup = await host.existing(sc.rehearse)
        else:
            setup = await host.setup(sc, run)
            await host.pin(setup)
        metrics_start = await host.metrics()
        workers = max(1, sc.workers)
        # Worker processes need a moment to start (imports) before the first planned join.
        origin = time.monotonic_ns() + int(LEAD_S * (1 if workers == 1 else 3) * 1e9)
        host_rec.origin_ns = origin
        plans = [
            CrowdPlan(
                sc, setup.stream_id, setup.sale_id,
                {i: t for i, t in enumerate(tokens) if i % workers == w}, origin, f"s{run}", w,
                workers,
            )
            for w in range(workers)
        ]  # fmt: skip
        progress = Progress(sc, origin, out)
        opener = asyncio.get_running_loop().create_task(
            host.open_at(setup, plans[0].open_ns, sc.countdown_s)
            if setup.sale_id
            else asyncio.sleep(0)
        )
        watcher = None
        if sc.whep:
            from loadtest.show.watch import watch

            watcher = asyncio.get_running_loop().create_task(
                watch(api.base, setup.stream_id, admin, sc.whep, sc.duration_s, not sc.rehearse)
            )
        started = time.monotonic()
        try:
            if workers == 1:
                results = [await run_crowd(plans[0], lambda p: progress.update(0, p))]
            else:
                results = await spawn(plans, progress.update)
        finally:
            await opener
            whep = await watcher if watcher is not None else None
        if out is not None and out.isatty():
            out.write("\n")
        report = _merge(sc, host_rec, results, origin)
        report["wall_s"] = round(time.monotonic() - started, 2)
        if whep is not None:
            report["whep"] = whep
        report["ids"] = {"stream": setup.stream_id, "sale": setup.sale_id, "run": run}
        if orders_file:
            _write_orders(orders_file, report["orders"])
            report["orders_file"] = orders_file
        await _after(sc, api, host, setup.sale_id, report)
        report["server_metrics"] = {"start": metrics_start, "end": await host.metrics()}
    return report


def _merge(
    sc: Scenario, host_rec: Recorder, results: list[dict[str, Any]], origin: int
) -> dict[str, Any]:
    rec = Recorder(origin)
    comp = Completeness()
    rec.merge(host_rec.to_json())
    for r in results:
        rec.merge(r["recorder"])
        comp.merge(r["completeness"])
    guards = [r["guard"] for r in results]
    lag_p99 = rec.hists["loop_lag"].get_value_at_percentile(99) / 1000
    reasons = invalid_reasons(guards, lag_p99, sc.max_lag_ms)
    latency = rec.latency_summary()
    return {
        "valid": not reasons,
        "invalid_reasons": reasons,
        "config": sc.to_json(),
        "latency_ms": latency,
        "histograms": rec.encoded(),
        "completeness": {"chat": comp.summary("c"), "sale_open": comp.summary("open")},
        "counts": dict(rec.counts),
        "errors": dict(rec.errors),
        "error_log": rec.error_log,
        "generator": {"workers": guards, "loop_lag_p99_ms": lag_p99},
        "per_worker": [
            {"counts": r["recorder"]["counts"], "wall_s": r.get("wall_s")} for r in results
        ],
        "timeline": rec.timeline(),
        "orders": rec.orders,
    }


async def _after(
    sc: Scenario, api: ShowApi, host: Host, sale_id: int, report: dict[str, Any]
) -> None:
    """Faults, the wait for holds to lapse, the audit, and the exit reason."""
    report["outage"] = outage(report)
    down = not await api.healthy()
    report["server_down_at_end"] = down
    if down:
        waited = await api.wait_healthy(sc.recover_s)
        report["server_back_after_s"] = waited
        if waited is None:
            report["audit"] = {"ok": None, "oversold": None, "lost": None, "why": "server down"}
            report["exit"] = {
                "code": 1,
                "reason": f"server did not answer within {sc.recover_s:.0f} s after the run; "
                f"{len(report['orders'])} orders seen were not audited",
            }
            return
    # Holds left to lapse: give the server's reaper time, so the audit sees them expired.
    if report["counts"].get("holds_left_to_expire") and sc.hold_s <= 30:
        await asyncio.sleep(sc.hold_s + 1)
    sales = sorted({int(o["sale"]) for o in report["orders"].values() if o.get("sale")})
    if sale_id:
        sales = sorted({sale_id, *sales})
    report["audit"] = await host.audit_all(sales, report["orders"])
    report["exit"] = exit_reason(report)


#: Error kinds that mean the server did not answer at all (not that it said no).
TRANSPORT = ("connect_failed", "socket_closed_1006", "socket_closed_1001")
TRANSPORT_SUFFIXES = ("_refused", "_disconnected", "_timeout")


def outage(report: dict[str, Any]) -> dict[str, Any] | None:
    """When the server stopped answering during the run (first and last such error), if it did."""
    kinds = [k for k in report["errors"] if k in TRANSPORT or k.endswith(TRANSPORT_SUFFIXES)]
    if not kinds:
        return None
    times = [t for t, k, _ in report["error_log"] if k in kinds]
    return {
        "kinds": {k: report["errors"][k] for k in kinds},
        "first_s": min(times, default=None),
    }


def exit_reason(report: dict[str, Any]) -> dict[str, Any]:
    """0 when the sale is correct, every seen order exists and the server always answered."""
    audit = report.get("audit", {})
    if audit.get("ok") is None:
        return {"code": 1, "reason": f"audit not possible: {audit.get('why')}"}
    if audit.get("oversold"):
        return {"code": 1, "reason": f"oversold by {audit['oversold']} units"}
    if audit.get("lost"):
        return {"code": 1, "reason": f"{audit['lost']} orders the server confirmed are gone"}
    if not audit.get("ok"):
        return {"code": 1, "reason": f"audit failed: {audit.get('problems')}"[:300]}
    if not report["config"]["rehearse"] and not report["counts"].get("sale_opened"):
        opens = {k: n for k, n in report["errors"].items() if k.startswith("open_")}
        return {"code": 1, "reason": f"the host could not open the sale: {opens}"}
    if report.get("whep") and not report["whep"]["ok"]:
        return {"code": 1, "reason": f"WHEP viewers did not all get frames: {report['whep']}"[:300]}
    if not report.get("valid", True):
        return {
            "code": 1,
            "reason": "invalid run, the generator was the bottleneck: "
            + "; ".join(report["invalid_reasons"]),
        }
    out = report.get("outage")
    if out:
        return {
            "code": 1,
            "reason": f"the server stopped answering at {out['first_s']} s "
            f"({sum(out['kinds'].values())} transport errors); afterwards the audit passed and "
            f"all {audit.get('orders_seen')} orders seen exist",
        }
    return {"code": 0, "reason": "ok"}


def _write_orders(path: str, orders: dict[str, dict[str, Any]]) -> None:
    """Every order the run was told about, one JSON object a line (id, user, viewer, state)."""
    import json
    from pathlib import Path

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("w") as f:
        for oid, o in orders.items():
            f.write(json.dumps({"id": oid, **o}) + "\n")


SummaryFn = Callable[[dict[str, Any]], str]


def summary(report: dict[str, Any]) -> str:
    """One line about a show."""
    lat = report["latency_ms"]
    audit = report.get("audit", {})

    def p99(m: str) -> str:
        return f"{lat[m]['p99']:.0f}" if lat.get(m, {}).get("count") else "-"

    return (
        f"show: {report['config']['viewers']} viewers, valid {report['valid']}, "
        f"p99 ms snapshot {p99('snapshot')} chat {p99('chat')} sale-open {p99('sale_open')} "
        f"buy {p99('buy')}; orders {report['counts'].get('orders', 0)}, "
        f"audit ok {audit.get('ok')} oversold {audit.get('oversold')} lost {audit.get('lost')}; "
        f"errors {sum(report['errors'].values())}; {report['exit']['reason']}"
    )
