"""What one generator process runs: its share of the viewers on the show's shared clock.

The runner makes one plan per generator process (``loadtest/show/runner.py``); a worker gets
its plan as one JSON line (``loadtest/show/workers.py``) and hands it to its ``Crowd``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from loadtest.show.scenario import Scenario


@dataclass
class CrowdPlan:
    """What one generator process runs: its viewers (index -> token) and the shared clock."""

    scenario: Scenario
    stream_id: str
    sale_id: int
    tokens: dict[int, str]
    origin_ns: int
    marker: str
    worker: int = 0
    workers: int = 1

    @property
    def open_ns(self) -> int:
        """When the host means to call open (the countdown starts then)."""
        return self.origin_ns + int(self.scenario.sale_at_s * 1e9)

    @property
    def opens_ns(self) -> int:
        """When the sale is meant to open, after its countdown: sale-open delivery runs from it."""
        return self.open_ns + int(self.scenario.countdown_s * 1e9)

    @property
    def end_ns(self) -> int:
        """When the show's schedule ends."""
        return self.origin_ns + int(self.scenario.duration_s * 1e9)


def plan_to_json(plan: CrowdPlan) -> dict[str, Any]:
    """A plan as plain data."""
    return {
        "scenario": plan.scenario.to_json(), "stream_id": plan.stream_id,
        "sale_id": plan.sale_id, "tokens": {str(k): v for k, v in plan.tokens.items()},
        "origin_ns": plan.origin_ns, "marker": plan.marker, "worker": plan.worker,
        "workers": plan.workers,
    }  # fmt: skip


def plan_from_json(data: dict[str, Any]) -> CrowdPlan:
    """The inverse of ``plan_to_json``."""
    return CrowdPlan(
        Scenario.from_json(data["scenario"]), data["stream_id"], int(data["sale_id"]),
        {int(k): v for k, v in data["tokens"].items()}, int(data["origin_ns"]), data["marker"],
        int(data["worker"]), int(data["workers"]),
    )  # fmt: skip
