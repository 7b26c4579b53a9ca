"""Watches the generator itself: its CPU and its event loop's lag, and says when it was the limit.

A load generator that is out of CPU sends late and reads late; its latencies then describe
itself, not the server. The run is marked invalid, with the reasons, when that happened.
"""

from __future__ import annotations

import asyncio
import time

from loadtest.show.recorder import Recorder

TICK_S = 0.1
#: Event-loop lag at the 99th percentile above which the figures are the generator's own.
MAX_LAG_P99_MS = 50.0
#: CPU of the generator process (100 = one core) above which it is out of breath.
MAX_CPU_PCT = 90.0
#: Share of one-second windows over MAX_CPU_PCT that makes the run invalid.
MAX_BUSY_SHARE = 0.2


class Guard:
    """Samples loop lag every 100 ms and CPU every second into the recorder."""

    def __init__(self, rec: Recorder) -> None:
        self.rec = rec
        self.cpu_windows: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._cpu0 = time.process_time()
        self._wall0 = time.monotonic()

    def start(self) -> None:
        """Begin sampling (owned by this object; ``stop`` cancels it)."""
        self._task = asyncio.get_running_loop().create_task(self._sample(), name="show-guard")

    async def stop(self) -> None:
        """Stop sampling."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def _sample(self) -> None:
        cpu_at, wall_at = time.process_time(), time.monotonic()
        while True:
            due = time.monotonic_ns() + int(TICK_S * 1e9)
            await asyncio.sleep(TICK_S)
            self.rec.latency("loop_lag", due)
            wall = time.monotonic()
            if wall - wall_at >= 1.0:
                cpu = time.process_time()
                pct = 100 * (cpu - cpu_at) / (wall - wall_at)
                self.cpu_windows.append(pct)
                self.rec.gauge("generator_cpu", round(pct, 1))
                cpu_at, wall_at = cpu, wall

    def figures(self) -> dict[str, float]:
        """Average CPU, its busiest second, and how many seconds were over the limit."""
        wall = max(1e-9, time.monotonic() - self._wall0)
        busy = [w for w in self.cpu_windows if w > MAX_CPU_PCT]
        return {
            "cpu_pct": round(100 * (time.process_time() - self._cpu0) / wall, 1),
            "cpu_max_pct": round(max(self.cpu_windows, default=0.0), 1),
            "seconds": len(self.cpu_windows),
            "seconds_over_limit": len(busy),
        }


def invalid_reasons(
    figures: list[dict[str, float]], lag_p99_ms: float, max_lag_ms: float = MAX_LAG_P99_MS
) -> list[str]:
    """Why the run does not measure the server (empty when it does), over every worker."""
    reasons = []
    if lag_p99_ms > max_lag_ms:
        reasons.append(f"generator event-loop lag p99 {lag_p99_ms:.0f} ms > {max_lag_ms:.0f} ms")
    for i, f in enumerate(figures):
        if f["seconds"] and f["seconds_over_limit"] / f["seconds"] > MAX_BUSY_SHARE:
            reasons.append(
                f"generator process {i} was over {MAX_CPU_PCT:.0f}% CPU for "
                f"{f['seconds_over_limit']} of {f['seconds']} s"
            )
    return reasons
