"""What a generator saw: HDR latency histograms, counters, a per-second timeline; mergeable.

Every latency is in microseconds from an *intended* time (the join's, the message's, the
tap's slot in the schedule), so a server that falls behind cannot hide its queue. The totals
and every timeline interval are HDR histograms (``hdrhistogram``), serialised with its own
compressed encoding, so the recorders of several generator processes merge exactly.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from hdrh.histogram import HdrHistogram

#: Latency metrics, in the report's order.
METRICS = (
    "connect", "snapshot", "rejoin", "chat", "buy", "sale_open", "open_call", "pay", "loop_lag",
)  # fmt: skip
#: Per-second counters shown over time.
RATES = ("joins", "leaves", "chats_sent", "chat_deliveries", "reactions_sent", "buys", "orders")
HIGHEST_US = 600_000_000  # ten minutes


def new_histogram(digits: int = 3) -> HdrHistogram:
    """A histogram of 1 us .. 10 min at ``digits`` significant digits."""
    return HdrHistogram(1, HIGHEST_US, digits)


def summary_ms(h: HdrHistogram) -> dict[str, float]:
    """count, p50, p90, p99, p99.9, max and mean of ``h``, in ms."""
    if h.get_total_count() == 0:
        return {"count": 0}
    pcts = h.get_percentile_to_value_dict([50, 90, 99, 99.9])
    return {
        "count": h.get_total_count(),
        "p50": pcts[50] / 1000,
        "p90": pcts[90] / 1000,
        "p99": pcts[99] / 1000,
        "p999": pcts[99.9] / 1000,
        "max": h.get_max_value() / 1000,
        "mean": round(h.get_mean_value() / 1000, 3),
    }


class Interval:
    """One timeline slot: counters, gauges and coarse (2-digit) histograms."""

    __slots__ = ("counts", "gauges", "hists")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.gauges: dict[str, float] = {}
        self.hists: dict[str, HdrHistogram] = {}


class Recorder:
    """Everything one generator process measured; ``to_json``/``merge`` carry it across."""

    def __init__(self, origin_ns: int, interval_s: float = 1.0) -> None:
        self.origin_ns = origin_ns
        self.interval_ns = int(interval_s * 1e9)
        self.hists = {m: new_histogram() for m in METRICS}
        self.counts: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        #: (seconds since origin, kind, detail) of the first errors of each kind.
        self.error_log: list[tuple[float, str, str]] = []
        self.slots: list[Interval] = []
        #: Orders the server confirmed, as the generator saw them (id -> user, key, state).
        self.orders: dict[str, dict[str, Any]] = {}

    def _slot(self, now_ns: int) -> Interval:
        i = max(0, (now_ns - self.origin_ns) // self.interval_ns)
        slots = self.slots
        while len(slots) <= i:
            slots.append(Interval())
        return slots[i]

    def latency(self, metric: str, start_ns: int, now_ns: int | None = None) -> None:
        """Record ``now - start`` for ``metric`` (totals and its timeline slot)."""
        now = time.monotonic_ns() if now_ns is None else now_ns
        us = min(HIGHEST_US, max(1, (now - start_ns) // 1000))
        self.hists[metric].record_value(us)
        slot = self._slot(now)
        h = slot.hists.get(metric)
        if h is None:
            h = slot.hists[metric] = new_histogram(2)
        h.record_value(us)

    def latency_many(self, metric: str, groups: dict[int, int], unit_ns: int, at_ns: int) -> None:
        """Record grouped samples (latency in ``unit_ns`` units -> how many) at once."""
        slot = self._slot(at_ns)
        h = slot.hists.get(metric)
        if h is None:
            h = slot.hists[metric] = new_histogram(2)
        total = self.hists[metric]
        for units, n in groups.items():
            us = min(HIGHEST_US, max(1, (units * unit_ns + unit_ns // 2) // 1000))
            total.record_value(us, n)
            h.record_value(us, n)

    def count(self, name: str, n: int = 1, now_ns: int | None = None) -> None:
        """Add ``n`` to a counter, in total and in the current timeline slot."""
        self.counts[name] += n
        self._slot(time.monotonic_ns() if now_ns is None else now_ns).counts[name] += n

    def gauge(self, name: str, value: float, now_ns: int | None = None) -> None:
        """Set a gauge's value for the current timeline slot (the last one set wins)."""
        self._slot(time.monotonic_ns() if now_ns is None else now_ns).gauges[name] = value

    def error(self, kind: str, detail: str = "") -> None:
        """Count an error by kind; the first few of each kind keep their time and detail."""
        self.errors[kind] += 1
        now = time.monotonic_ns()
        self._slot(now).counts["errors"] += 1
        if self.errors[kind] <= 5:
            self.error_log.append((round((now - self.origin_ns) / 1e9, 3), kind, detail[:200]))

    # -- carrying across processes ----------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """Plain data, histograms in HdrHistogram's compressed encoding."""
        return {
            "origin_ns": self.origin_ns,
            "interval_ns": self.interval_ns,
            "hists": {m: h.encode().decode() for m, h in self.hists.items()},
            "counts": dict(self.counts),
            "errors": dict(self.errors),
            "error_log": self.error_log,
            "orders": self.orders,
            "slots": [
                {
                    "counts": dict(s.counts),
                    "gauges": s.gauges,
                    "hists": {m: h.encode().decode() for m, h in s.hists.items()},
                }
                for s in self.slots
            ],
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add another recorder's ``to_json`` (same origin) into this one, exactly."""
        for m, enc in data["hists"].items():
            self.hists[m].decode_and_add(enc)
        self.counts.update(data["counts"])
        self.errors.update(data["errors"])
        self.error_log = sorted([*self.error_log, *map(tuple, data["error_log"])])
        self.orders.update(data["orders"])
        shift = (data["origin_ns"] - self.origin_ns) // self.interval_ns
        for i, s in enumerate(data["slots"]):
            slot = self._slot(self.origin_ns + (i + shift) * self.interval_ns)
            slot.counts.update(s["counts"])
            for g, v in s["gauges"].items():
                # Gauges of several generators add up (connected viewers); stock is shared.
                slot.gauges[g] = v if g == "stock" else slot.gauges.get(g, 0) + v
            for m, enc in s["hists"].items():
                h = slot.hists.get(m)
                if h is None:
                    h = slot.hists[m] = new_histogram(2)
                h.decode_and_add(enc)

    def timeline(self) -> dict[str, list[Any]]:
        """Per-slot series for plots: rates, gauges, and p50/p99 of each latency metric."""
        out: dict[str, list[Any]] = {"t": []}
        step = self.interval_ns / 1e9
        names = sorted({k for s in self.slots for k in s.counts} | set(RATES) | {"errors"})
        gauges = sorted({k for s in self.slots for k in s.gauges})
        last: dict[str, float | None] = dict.fromkeys(gauges)
        for i, s in enumerate(self.slots):
            out["t"].append(round(i * step, 3))
            for n in names:
                out.setdefault(n, []).append(round(s.counts.get(n, 0) / step, 2))
            for g in gauges:
                last[g] = s.gauges.get(g, last[g])  # a quiet second keeps the last value
                out.setdefault(g, []).append(last[g])
            for m in METRICS:
                h = s.hists.get(m)
                for q in (50, 99):
                    val = h.get_value_at_percentile(q) / 1000 if h is not None else None
                    out.setdefault(f"{m}_p{q}", []).append(val)
        return out

    def latency_summary(self) -> dict[str, dict[str, float]]:
        """Totals per metric in ms."""
        return {m: summary_ms(h) for m, h in self.hists.items()}

    def encoded(self) -> dict[str, str]:
        """The total histograms, encoded (for the JSON report)."""
        return {m: h.encode().decode() for m, h in self.hists.items() if h.get_total_count()}
