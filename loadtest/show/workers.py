"""Generator processes: each runs a share of the audience and hands back its exact recordings.

A worker is ``python -m loadtest.show.workers``: its ``CrowdPlan`` comes as one JSON line on
stdin; it prints a progress line (``P {...}``) every second and its result (``R {...}``)
last. Viewer ``i`` belongs to worker ``i % N`` and chat message ``n`` is sent by worker
``n % N``; the monotonic clock is shared by every process of the machine, so latencies taken
in one process from times planned in another are on one clock.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

from loadtest.show.api import ShowApi
from loadtest.show.completeness import Completeness
from loadtest.show.crowd import Crowd
from loadtest.show.guard import Guard
from loadtest.show.plan import CrowdPlan, plan_from_json, plan_to_json
from loadtest.show.recorder import Recorder


def progress(crowd: Crowd) -> dict[str, Any]:
    """The counters a live progress line needs."""
    rec = crowd.rec
    return {
        "live": crowd.live, "chats": rec.counts["chats_sent"], "buys": rec.counts["buys"],
        "orders": rec.counts["orders"], "errors": sum(rec.errors.values()),
        "chat_p99": rec.hists["chat"].get_value_at_percentile(99) / 1000,
        "buy_p99": rec.hists["buy"].get_value_at_percentile(99) / 1000,
    }  # fmt: skip


async def run_crowd(plan: CrowdPlan, report: Any = None) -> dict[str, Any]:
    """Run one process's audience; its recordings as plain data (``report`` gets progress)."""
    rec = Recorder(plan.origin_ns)
    comp = Completeness()
    guard = Guard(rec)
    async with ShowApi(plan.scenario.url) as api:
        crowd = Crowd(plan, rec, comp, api)
        guard.start()
        ticker = None
        if report is not None:
            ticker = asyncio.get_running_loop().create_task(_tick(crowd, report))
        try:
            await crowd.run()
        finally:
            if ticker is not None:
                ticker.cancel()
            await guard.stop()
    return {"recorder": rec.to_json(), "completeness": comp.to_json(), "guard": guard.figures()}


async def _tick(crowd: Crowd, report: Any) -> None:
    while True:
        await asyncio.sleep(1.0)
        report(progress(crowd))


async def spawn(plans: list[CrowdPlan], on_progress: Any) -> list[dict[str, Any]]:
    """Run each plan in its own ``python -m loadtest.show.workers``; their results in order."""

    async def one(plan: CrowdPlan) -> dict[str, Any]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "loadtest.show.workers",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            limit=1 << 30,
        )  # fmt: skip
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(plan_to_json(plan)).encode() + b"\n")
        await proc.stdin.drain()
        proc.stdin.close()
        result: dict[str, Any] | None = None
        async for line in proc.stdout:
            if line.startswith(b"P "):
                on_progress(plan.worker, json.loads(line[2:]))
            elif line.startswith(b"R "):
                result = json.loads(line[2:])
        code = await proc.wait()
        if result is None:
            raise RuntimeError(f"generator worker {plan.worker} exited {code} without a result")
        return result

    return list(await asyncio.gather(*(one(p) for p in plans)))


def _main() -> int:
    """Worker entry point: plan on stdin, progress and result on stdout."""
    from loadtest.cli import install_uvloop

    install_uvloop()
    plan = plan_from_json(json.loads(sys.stdin.readline()))

    def report(p: dict[str, Any]) -> None:
        sys.stdout.write("P " + json.dumps(p) + "\n")
        sys.stdout.flush()

    started = time.monotonic()
    result = asyncio.run(run_crowd(plan, report))
    result["wall_s"] = round(time.monotonic() - started, 2)
    sys.stdout.write("R " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
