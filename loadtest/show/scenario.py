"""A show's scenario: stages of audience, chat and reactions, the sale, and who buys.

From the command line (``--viewers --duration --ramp ...``) or a TOML file::

    viewers = 2000          # sockets at the peak
    stock = 500
    buy_share = 0.5         # share of viewers that tap buy in the sale's first second
    sale_at_s = 20          # the host opens the sale this long after the start
    countdown_s = 3
    [[stages]]
    name = "doors"          # 2,000 viewers join over 10 s while chat warms up
    duration_s = 10
    viewers = 2000
    chat_rate = 5
    [[stages]]
    name = "show"
    duration_s = 40
    viewers = 2000
    chat_rate = 20
    react_rate = 50

Every arrival (join, chat message, reaction, tap) has an intended time fixed by this plan
(open model), whatever the server does; the generator measures latency from it.
"""

from __future__ import annotations

import random
import tomllib
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


@dataclass
class Stage:
    """A span of the show: the audience moves linearly to ``viewers``; rates are per second."""

    name: str
    duration_s: float
    viewers: int
    chat_rate: float = 0.0
    react_rate: float = 0.0


@dataclass
class Scenario:
    """Everything that decides what the generator does, and when."""

    url: str = "http://127.0.0.1:8080"
    viewers: int = 100
    duration_s: float = 30.0
    stock: int = 50
    ramp_s: float = 5.0
    rate: float = 0.0  # joins/s during the ramp; 0 = viewers / ramp_s
    arrivals: str = "constant"  # or "poisson"
    chat_rate: float = 0.0  # messages/s; 0 = one per 500 viewers per second, at least 1
    react_rate: float = 0.0  # taps/s; 0 = one per 50 viewers per second
    churn_per_min: float = 0.05  # share of the audience that leaves and rejoins each minute
    buy_share: float = 0.5
    pay_share: float = 0.6
    cancel_share: float = 0.2  # the rest of the successful buyers let the hold expire
    per_user_limit: int = 1
    price_cents: int = 1999
    hold_s: int = 10
    sale_at_s: float = 0.0  # 0 = a third into the show
    countdown_s: int = 3
    drain_s: float = 3.0
    recover_s: float = 30.0  # how long to wait for a dead server to come back before auditing
    whep: int = 0
    workers: int = 1
    seed: int = 0
    #: The generator's event-loop lag (p99, ms) above which its figures are its own.
    max_lag_ms: float = 50.0
    #: Rehearsal: send the audience into this existing stream; its real host pins and sells.
    rehearse: str = ""
    stages: list[Stage] = field(default_factory=list)

    def resolved(self) -> Scenario:
        """A copy with defaults filled in: stages, rates and the sale's time."""
        s = Scenario(**{f.name: getattr(self, f.name) for f in fields(self)})
        if not s.chat_rate:
            s.chat_rate = max(1.0, s.viewers / 500)
        if not s.react_rate:
            s.react_rate = s.viewers / 50
        if s.rate > 0:
            s.ramp_s = s.viewers / s.rate
        if not s.stages:
            ramp = min(s.ramp_s, s.duration_s)
            s.stages = [Stage("doors", ramp, s.viewers, s.chat_rate / 2, s.react_rate / 2)]
            if s.duration_s > ramp:
                s.stages.append(
                    Stage("show", s.duration_s - ramp, s.viewers, s.chat_rate, s.react_rate)
                )
        s.duration_s = sum(st.duration_s for st in s.stages)
        s.viewers = max(st.viewers for st in s.stages)
        if not s.sale_at_s:
            s.sale_at_s = max(s.stages[0].duration_s, s.duration_s / 3)
        return s

    def to_json(self) -> dict[str, Any]:
        """Plain data (the report's ``config``, and a worker's instructions)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Scenario:
        """The inverse of ``to_json``."""
        stages = [Stage(**st) for st in data.get("stages", [])]
        return cls(**{**data, "stages": stages})

    @classmethod
    def from_toml(cls, path: Path, base: Scenario) -> Scenario:
        """``base`` with the file's keys applied (``[[stages]]`` replace the stages)."""
        data = tomllib.loads(path.read_text())
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        return cls.from_json({**base.to_json(), **data})


def arrival_times(
    count: int, start_s: float, span_s: float, kind: str, rng: random.Random
) -> list[float]:
    """``count`` arrival times in [start, start + span): evenly spaced, or a Poisson process."""
    if count <= 0:
        return []
    if kind == "poisson":
        mean = span_s / count
        out, t = [], start_s
        for _ in range(count):
            t += rng.expovariate(1 / mean) if mean > 0 else 0.0
            out.append(min(t, start_s + span_s))
        return out
    return [start_s + span_s * i / count for i in range(count)]


def rate_times(
    rate_at: list[tuple[float, float, float]], kind: str, rng: random.Random
) -> list[float]:
    """Event times for piecewise-constant rates ``(start, end, per_second)``."""
    out: list[float] = []
    for start, end, rate in rate_at:
        n = round((end - start) * rate)
        out += arrival_times(n, start, end - start, kind, rng)
    return out


def join_times(sc: Scenario, rng: random.Random) -> list[float]:
    """When each new viewer arrives: every stage moves the audience linearly to its target."""
    out: list[float] = []
    now_viewers, t = 0, 0.0
    for st in sc.stages:
        grow = st.viewers - now_viewers
        if grow > 0:
            out += arrival_times(grow, t, st.duration_s, sc.arrivals, rng)
            now_viewers = st.viewers
        t += st.duration_s
    return out
