"""Pass/fail gates over a report: ``buy.p99<50ms``, ``oversold==0``, ``chat.share>=0.99``.

A name is a dotted path into the report's ``figures`` (latency metrics in ms, counts,
completeness shares); a value may carry a unit (us, ms, s, %), converted to the figure's unit.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "<": operator.lt, ">": operator.gt,
}  # fmt: skip
UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "%": 0.01, "": 1.0}
EXPR = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*(<=|>=|==|!=|<|>)\s*([-+]?[\d.]+)\s*(us|ms|s|%)?\s*$")


@dataclass
class Threshold:
    """One parsed gate."""

    text: str
    name: str
    op: str
    value: float

    def check(self, figures: dict[str, Any]) -> dict[str, Any]:
        """The gate's outcome over ``figures``: passed, and the actual value."""
        actual = lookup(figures, self.name)
        if actual is None:
            return {"threshold": self.text, "ok": False, "actual": None, "why": "no such figure"}
        ok = OPS[self.op](float(actual), self.value)
        return {"threshold": self.text, "ok": ok, "actual": actual}


def parse(text: str) -> Threshold:
    """``name op value[unit]``; raises ValueError naming what is wrong."""
    m = EXPR.match(text)
    if m is None:
        raise ValueError(
            f"threshold {text!r}: expected NAME OP VALUE[us|ms|s|%], e.g. buy.p99<50ms"
        )
    name, op, value, unit = m.groups()
    return Threshold(text, name, op, float(value) * UNITS[unit or ""])


def lookup(figures: dict[str, Any], name: str) -> float | None:
    """The number at dotted ``name`` (``buy.p99`` -> figures["buy"]["p99"])."""
    node: Any = figures
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    if isinstance(node, bool):
        return float(node)
    return float(node) if isinstance(node, int | float) else None
