"""Delivery completeness: which share of the viewers got each broadcast, and how soon.

A message is expected by every viewer that was live (had its snapshot) when it was sent.
Each arrival is kept as its delay in 0.1 ms units, so generator processes merge exactly and
the time until 99% and 100% of the expected viewers had it is computed after the merge.
"""

from __future__ import annotations

import base64
from array import array
from typing import Any

from hdrh.histogram import HdrHistogram

from loadtest.show.recorder import new_histogram, summary_ms

UNIT_NS = 100_000


class Broadcast:
    """One message: when it was meant to go out, how many viewers should get it, arrivals."""

    __slots__ = ("arrivals", "expected", "sent_ns")

    def __init__(self, sent_ns: int, expected: int) -> None:
        self.sent_ns = sent_ns
        self.expected = expected
        self.arrivals = array("I")


class Completeness:
    """Broadcasts by id (chat messages ``c<n>``, the sale's opening ``open``)."""

    def __init__(self) -> None:
        self.messages: dict[str, Broadcast] = {}

    def sent(self, msg_id: str, sent_ns: int, expected: int) -> None:
        """A message went out (or was meant to) while ``expected`` viewers were live here."""
        b = self.messages.get(msg_id)
        if b is None:
            self.messages[msg_id] = Broadcast(sent_ns, expected)
        else:
            b.expected += expected

    def arrived(self, msg_id: str, sent_ns: int, now_ns: int) -> None:
        """One viewer got the message."""
        b = self.messages.get(msg_id)
        if b is None:  # sent by another generator process: its expectation comes at the merge
            b = self.messages[msg_id] = Broadcast(sent_ns, 0)
        b.arrivals.append(min(0xFFFFFFFF, max(0, (now_ns - sent_ns) // UNIT_NS)))

    def arrived_many(self, msg_id: str, sent_ns: int, nows: list[int]) -> None:
        """Several viewers got the message (at ``nows``)."""
        b = self.messages.get(msg_id)
        if b is None:
            b = self.messages[msg_id] = Broadcast(sent_ns, 0)
        b.arrivals.extend([min(0xFFFFFFFF, max(0, (n - sent_ns) // UNIT_NS)) for n in nows])

    def to_json(self) -> dict[str, Any]:
        """Plain data for another process."""
        return {
            k: [b.sent_ns, b.expected, base64.b64encode(b.arrivals.tobytes()).decode()]
            for k, b in self.messages.items()
        }

    def merge(self, data: dict[str, Any]) -> None:
        """Add another process's ``to_json``."""
        for k, (sent_ns, expected, arr) in data.items():
            b = self.messages.get(k)
            if b is None:
                b = self.messages[k] = Broadcast(int(sent_ns), 0)
            b.expected += int(expected)
            b.arrivals.frombytes(base64.b64decode(arr))

    def summary(self, prefix: str) -> dict[str, Any]:
        """Share delivered, and time to 99% / 100% of the expected viewers (ms percentiles)."""
        chosen = [b for k, b in self.messages.items() if k.startswith(prefix) and b.expected]
        if not chosen:
            return {"messages": 0}
        expected = sum(b.expected for b in chosen)
        got = sum(min(len(b.arrivals), b.expected) for b in chosen)
        t99, t100 = new_histogram(), new_histogram()
        incomplete99 = incomplete100 = 0
        for b in chosen:
            times = sorted(b.arrivals)
            _record_rank(t99, times, -(-b.expected * 99 // 100)) or None
            if len(times) < -(-b.expected * 99 // 100):
                incomplete99 += 1
            if len(times) >= b.expected:
                t100.record_value(max(1, times[b.expected - 1] * UNIT_NS // 1000))
            else:
                incomplete100 += 1
        return {
            "messages": len(chosen),
            "expected": expected,
            "delivered": got,
            "share": round(got / expected, 5),
            "never_reached_99pct": incomplete99,
            "never_reached_100pct": incomplete100,
            "time_to_99pct_ms": summary_ms(t99),
            "time_to_100pct_ms": summary_ms(t100),
        }


def _record_rank(h: HdrHistogram, times: list[int], rank: int) -> bool:
    """Record the ``rank``-th arrival's delay (us) when there were that many arrivals."""
    if rank < 1 or len(times) < rank:
        return False
    h.record_value(max(1, times[rank - 1] * UNIT_NS // 1000))
    return True
