"""``livesell-loadtest show``: options, the run, the reports, thresholds and the exit code."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from loadtest.show.api import ShowError
from loadtest.show.htmlreport import render
from loadtest.show.rehearsal import report_token, upload_report
from loadtest.show.runner import run_show, summary
from loadtest.show.scenario import Scenario
from loadtest.show.thresholds import Threshold, parse


def add_parser(subparsers: Any) -> None:
    """Register the ``show`` subcommand."""
    p = subparsers.add_parser("show", help="rehearse a whole show: audience, chat, a flash sale")
    p.add_argument("--url", default="http://127.0.0.1:8080", help="server base URL")
    p.add_argument("--viewers", type=int, default=100, help="viewer sockets at the peak")
    p.add_argument("--duration", type=float, default=30, help="seconds of show")
    p.add_argument("--stock", type=int, default=50, help="units on sale")
    p.add_argument("--ramp", type=float, default=5, help="seconds over which viewers join")
    p.add_argument("--rate", type=float, default=0, help="joins/s (overrides --ramp)")
    p.add_argument("--arrivals", choices=("constant", "poisson"), default="constant")
    p.add_argument("--chat-rate", type=float, default=0, help="chat messages/s (default N/500)")
    p.add_argument("--react-rate", type=float, default=0, help="reaction taps/s (default N/50)")
    p.add_argument("--churn", type=float, default=0.05, help="share leaving+rejoining per minute")
    p.add_argument("--buy-share", type=float, default=0.5, help="share of viewers that tap buy")
    p.add_argument("--pay-share", type=float, default=0.6, help="share of buyers that pay")
    p.add_argument("--cancel-share", type=float, default=0.2, help="share that cancel")
    p.add_argument("--hold", type=int, default=10, help="payment hold of the sale, s")
    p.add_argument("--sale-at", type=float, default=0, help="open the sale at this second")
    p.add_argument("--countdown", type=int, default=3, help="the sale's countdown, s")
    p.add_argument("--recover", type=float, default=30, help="wait this long for a dead server")
    p.add_argument(
        "--whep", type=int, default=0, help="viewers watching over WHEP (frames checked)"
    )
    p.add_argument("--workers", type=int, default=1, help="generator processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--max-lag", type=float, default=50,
        help="generator loop lag p99 (ms) above which the run is marked invalid",
    )  # fmt: skip
    p.add_argument("--scenario", type=Path, help="TOML scenario (overrides the options)")
    p.add_argument(
        "--rehearse", metavar="STREAM_ID", default="",
        help="send the audience into this rehearsal stream while its host practises (pins, "
        "sales); the report is posted to the studio",
    )  # fmt: skip
    p.add_argument(
        "--token", default="",
        help="the rehearsal host's token, to post the report as the host (default: an admin's)",
    )  # fmt: skip
    p.add_argument(
        "--threshold", action="append", default=[], metavar="EXPR",
        help="gate, e.g. 'buy.p99<50ms' or 'oversold==0' (repeatable; sets the exit code)",
    )  # fmt: skip
    p.add_argument("--json", help="write the JSON report here")
    p.add_argument("--html", help="write the HTML report here")
    p.add_argument("--orders", help="write every order seen here (default: next to --json)")


def scenario_from_args(args: argparse.Namespace) -> Scenario:
    """The scenario the options (and ``--scenario``) describe."""
    sc = Scenario(
        url=args.url, viewers=args.viewers, duration_s=args.duration, stock=args.stock,
        ramp_s=args.ramp, rate=args.rate, arrivals=args.arrivals, chat_rate=args.chat_rate,
        react_rate=args.react_rate, churn_per_min=args.churn, buy_share=args.buy_share,
        pay_share=args.pay_share, cancel_share=args.cancel_share, hold_s=args.hold,
        sale_at_s=args.sale_at, countdown_s=args.countdown, recover_s=args.recover,
        whep=args.whep, workers=args.workers, seed=args.seed, rehearse=args.rehearse,
        max_lag_ms=args.max_lag,
    )  # fmt: skip
    if args.scenario:
        sc = Scenario.from_toml(args.scenario, sc)
    return sc


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """What thresholds may name: latency metrics, audit, counts, completeness, validity."""
    audit = report.get("audit", {})
    return {
        **report["latency_ms"],
        "oversold": audit.get("oversold"),
        "lost": audit.get("lost"),
        "audit_ok": audit.get("ok"),
        "valid": report["valid"],
        "errors": sum(report["errors"].values()),
        "counts": report["counts"],
        "chat_share": report["completeness"]["chat"].get("share"),
        "completeness": report["completeness"],
    }


def gate(report: dict[str, Any], gates: list[Threshold]) -> int:
    """Check the thresholds into the report; a failed one makes a passing run exit 1."""
    report["thresholds"] = [g.check(figures(report)) for g in gates]
    failed = [t["threshold"] for t in report["thresholds"] if not t["ok"]]
    if report["exit"]["code"] == 0 and failed:
        report["exit"] = {"code": 1, "reason": "thresholds failed: " + ", ".join(failed)}
    return int(report["exit"]["code"])


def execute(args: argparse.Namespace) -> int:
    """Run ``show``; 0 when the show and every threshold passed, 1 otherwise, 2 on bad input."""
    try:
        gates = [parse(t) for t in args.threshold]
        sc = scenario_from_args(args)
    except (ValueError, OSError) as exc:
        print(f"show: {exc}", file=sys.stderr)
        return 2
    orders = args.orders or (
        str(Path(args.json).with_suffix(".orders.jsonl")) if args.json else None
    )
    try:
        report = asyncio.run(run_show(sc, orders_file=orders, host_token=args.token))
    except ShowError as exc:
        print(f"show: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("show: interrupted", file=sys.stderr)
        return 130
    gate(report, gates)
    html = render(report)
    if sc.rehearse:
        report["rehearsal_report"] = asyncio.run(_upload(sc, args.token, report, html))
        html = render(report)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + "\n")
    if args.html:
        Path(args.html).parent.mkdir(parents=True, exist_ok=True)
        Path(args.html).write_text(html)
    print(summary(report))
    posted = report.get("rehearsal_report")
    if posted:
        print(f"rehearsal report: {posted.get('html_url') or 'not posted: ' + posted['error']}")
    return int(report["exit"]["code"])


async def _upload(sc: Scenario, token: str, report: dict[str, Any], html: str) -> dict[str, Any]:
    """Post the report to the rehearsal's studio; a failure is reported, it never ends the run."""
    try:
        token = await report_token(token)
    except (RuntimeError, OSError, TimeoutError) as exc:
        return {"error": f"no token to post it with: {exc}"}
    return await upload_report(sc.url, sc.rehearse, token, report, html)
