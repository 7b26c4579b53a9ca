"""The show's report as one self-contained HTML page: tables and inline SVG line charts.

No script, no network: the charts are drawn here as SVG polylines, so the file can be mailed
or attached to a ticket and opens anywhere. Every text from the report is escaped.
"""

from __future__ import annotations

import json
from html import escape
from typing import Any

W, H, PAD = 640, 200, 40
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b")


def _ticks(top: float) -> list[float]:
    if top <= 0:
        return [0.0]
    step = 10 ** len(str(int(top))) / 10
    while top / step > 5:
        step *= 2
    return [i * step for i in range(int(top / step) + 1)]


def chart(title: str, t: list[float], series: dict[str, list[Any]], unit: str = "") -> str:
    """An SVG line chart of ``series`` over ``t`` (None values break the line)."""
    values = [v for vs in series.values() for v in vs if v is not None]
    if not t or not values:
        return f"<figure><figcaption>{escape(title)}: no data</figcaption></figure>"
    top = max(values) * 1.1 or 1.0
    span = max(t[-1], 1e-9)

    def x(v: float) -> float:
        return PAD + (W - 2 * PAD) * v / span

    def y(v: float) -> float:
        return H - PAD + -(H - 2 * PAD) * v / top

    parts = [f'<svg viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img">']
    for tick in _ticks(top):
        parts.append(
            f'<line x1="{PAD}" x2="{W - PAD}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'stroke="#ddd"/><text x="{PAD - 4}" y="{y(tick) + 4:.1f}" text-anchor="end" '
            f'font-size="10">{tick:g}</text>'
        )
    parts.append(
        f'<text x="{W - PAD}" y="{H - 8}" text-anchor="end" font-size="10">seconds</text>'
        f'<text x="4" y="12" font-size="10">{escape(unit)}</text>'
    )
    for i, (name, vs) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        runs: list[list[str]] = [[]]
        for tv, v in zip(t, vs, strict=False):
            if v is None:
                runs.append([])
            else:
                runs[-1].append(f"{x(tv):.1f},{y(v):.1f}")
        for run in runs:
            if run:
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" '
                    f'points="{" ".join(run)}"/>'
                )
        parts.append(
            f'<text x="{PAD + 10 + 120 * i}" y="{PAD - 12}" fill="{colour}" font-size="11">'
            f"{escape(name)}</text>"
        )
    parts.append("</svg>")
    return f"<figure><figcaption>{escape(title)}</figcaption>{''.join(parts)}</figure>"


def _table(rows: list[list[Any]], head: list[str]) -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def _latency_table(latency: dict[str, dict[str, Any]]) -> str:
    cols = ["count", "p50", "p90", "p99", "p999", "max"]
    rows = [[m, *(s.get(c, "") for c in cols)] for m, s in latency.items() if s.get("count")]
    return _table(rows, ["metric (ms)", *cols])


def render(report: dict[str, Any]) -> str:
    """The whole page."""
    tl = report.get("timeline", {})
    t = tl.get("t", [])

    def pick(*names: str) -> dict[str, list[Any]]:
        return {n: tl[n] for n in names if n in tl}

    audit = report.get("audit", {})
    verdict = "valid" if report.get("valid") else "INVALID: " + "; ".join(report["invalid_reasons"])
    charts = [
        chart("Chat delivery latency", t, pick("chat_p50", "chat_p99"), "ms"),
        chart("Buy latency (tap to answer)", t, pick("buy_p50", "buy_p99"), "ms"),
        chart("Join to snapshot", t, pick("snapshot_p50", "snapshot_p99", "rejoin_p99"), "ms"),
        chart("Connected viewers", t, pick("connected", "server_viewers"), "sockets"),
        chart("Chat messages and reactions sent", t, pick("chats_sent", "reactions_sent"), "/s"),
        chart("Chat deliveries (messages x receivers)", t, pick("chat_deliveries"), "per s"),
        chart("Buys per second", t, pick("buys", "orders"), "per s"),
        chart("Stock remaining", t, pick("stock"), "units"),
        chart("Errors per second, generator CPU", t, pick("errors", "generator_cpu"), ""),
    ]
    thresholds = report.get("thresholds", [])
    metrics = report.get("server_metrics", {})
    comp = report.get("completeness", {})
    comp_rows = [
        [k, c.get("messages"), c.get("share"), c.get("time_to_99pct_ms", {}).get("p99"),
         c.get("time_to_100pct_ms", {}).get("max"), c.get("never_reached_100pct")]
        for k, c in comp.items()
    ]  # fmt: skip
    errors = sorted(report.get("errors", {}).items(), key=lambda kv: -kv[1])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>livesell show report</title>
<style>
body {{ font: 14px system-ui, sans-serif; margin: 2em; max-width: 1400px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
td, th {{ border: 1px solid #ccc; padding: 2px 8px; text-align: right; }}
figure {{ display: inline-block; margin: 0.5em; }}
.bad {{ color: #b00; font-weight: bold; }} .ok {{ color: #070; font-weight: bold; }}
pre {{ background: #f6f6f6; padding: 1em; max-height: 20em; overflow: auto; }}
</style></head><body>
<h1>livesell show report</h1>
<p class="{"ok" if report["exit"]["code"] == 0 else "bad"}">{escape(report["exit"]["reason"])}</p>
<p class="{"ok" if report.get("valid") else "bad"}">{escape(verdict)}</p>
<h2>Audit</h2>
{
        _table(
            [[audit.get("ok"), audit.get("oversold"), audit.get("lost"), audit.get("orders_seen")]],
            ["ok", "oversold", "lost", "orders seen"],
        )
    }
<h2>Thresholds</h2>
{
        _table(
            [[x["threshold"], x["actual"], x["ok"]] for x in thresholds],
            ["threshold", "actual", "ok"],
        )
    }
<h2>Latency</h2>
{_latency_table(report.get("latency_ms", {}))}
<h2>Delivery completeness</h2>
{
        _table(
            comp_rows,
            ["broadcast", "messages", "share", "to 99% p99 ms", "to 100% max ms", "never 100%"],
        )
    }
<h2>Over time</h2>
{"".join(charts)}
<h2>Errors</h2>
{_table([list(e) for e in errors], ["kind", "count"])}
{_table([list(e) for e in report.get("error_log", [])[:50]], ["at s", "kind", "detail"])}
<h2>Server /metrics</h2>
<h3>start</h3><pre>{escape(_text(metrics.get("start")))}</pre>
<h3>end</h3><pre>{escape(_text(metrics.get("end")))}</pre>
<h2>Scenario</h2>
<pre>{escape(json.dumps(report.get("config"), indent=1))}</pre>
</body></html>
"""


def _text(metrics: Any) -> str:
    if metrics is None:
        return "(the server exposes no /metrics, or did not answer)"
    body = metrics.get("body") if isinstance(metrics, dict) else metrics
    return body if isinstance(body, str) else json.dumps(body, indent=1)
