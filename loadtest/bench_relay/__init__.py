"""Relay benchmark: aiortc's MediaRelay (decode once, encode per viewer) versus livesell's relay.

``python -m loadtest.bench relay --viewers N --seconds S --json FILE`` (or
``python -m loadtest.bench_relay ...``). The relay runs in its own process and only its CPU is
measured; the publisher (640x480 VP8 + Opus) runs in this process and the viewers, which decode
every frame and read a counter stamped in its pixels, in viewer processes. Latency is end to end:
from the publisher's capture of a frame to a viewer decoding it (CLOCK_MONOTONIC is shared by
every process). ``cpu_per_viewer_pct`` is the slope of relay CPU between 1 viewer and the
largest count measured at full frame rate.

Recording: the same publisher in H.264 with one viewer, without and then with recording (the
MP4 file plus live HLS); the difference in relay CPU is what recording and HLS cost per stream,
also given as a ratio to the relay's own CPU for ``--viewers`` viewers. In the run with recording
an HLS viewer follows the live playlist like a player and decodes every frame, so its
glass-to-glass comes from the frame counter too, beside the WHEP viewer's in the same run
(``loadtest/bench_relay/hls.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from loadtest.bench_relay import hls
from loadtest.bench_relay.media import FPS, LightViewer, Publisher, Viewer
from loadtest.bench_relay.server import relay_main, request

Run = dict[str, Any]


def _viewer_proc(
    sock: str, count: int, until: float, out: mp.Queue, light: bool
) -> None:  # pragma: no cover - runs in a child process
    async def go() -> list[dict[str, Any]]:
        viewers: list[Viewer | LightViewer] = [
            LightViewer() if light else Viewer() for _ in range(count)
        ]
        try:
            for v in viewers:
                answer = await request(sock, {"op": "watch", "sdp": await v.offer()})
                await v.accept(answer["sdp"])
            await asyncio.sleep(max(0.0, until - time.monotonic()))
            return [{"arrivals": v.arrivals, "counters": v.counters} for v in viewers]
        finally:
            await asyncio.gather(*(v.close() for v in viewers), return_exceptions=True)

    out.put(asyncio.run(go()))


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _measure(
    mode: str,
    viewers: int,
    seconds: float,
    warmup: float,
    viewer_procs: int,
    light: bool,
    codec: str = "video/vp8",
) -> Run:
    ctx = mp.get_context("spawn")
    sock = os.path.join(tempfile.mkdtemp(prefix="bench-relay-"), "relay.sock")
    relay = ctx.Process(target=relay_main, args=(mode, sock), daemon=True)
    relay.start()
    publisher = Publisher(codec)
    hls_figures: asyncio.Task[dict[str, Any]] | None = None
    out: mp.Queue = ctx.Queue()
    procs: list[Any] = []
    try:
        for _ in range(100):
            try:
                await request(sock, {"op": "cpu"})
                break
            except OSError:
                await asyncio.sleep(0.05)
        answer = await request(sock, {"op": "publish", "sdp": await publisher.offer()})
        await publisher.accept(answer["sdp"])
        await asyncio.sleep(1.0)
        window_start = (
            time.monotonic() + warmup + 0.15 * viewers / max(1, min(viewer_procs, viewers))
        )
        window_end = window_start + seconds
        nprocs = max(1, min(viewer_procs, viewers))
        share = [viewers // nprocs + (1 if i < viewers % nprocs else 0) for i in range(nprocs)]
        for n in share:
            p = ctx.Process(target=_viewer_proc, args=(sock, n, window_end + 0.3, out, light))
            p.start()
            procs.append(p)
        await asyncio.sleep(max(0.0, window_start - time.monotonic()))
        if mode == "recording":
            folder = Path((await request(sock, {"op": "hls_dir"}))["path"])
            hls_figures = asyncio.ensure_future(
                hls.watch(folder, window_end, publisher.video.sent_at)
            )
        outside = psutil.Process(relay.pid)  # a cross-check of the relay's own getrusage
        times0 = outside.cpu_times()
        cpu0 = await request(sock, {"op": "cpu"})
        await asyncio.sleep(max(0.0, window_end - time.monotonic()))
        cpu1 = await request(sock, {"op": "cpu"})
        times1 = outside.cpu_times()
        results: list[dict[str, Any]] = []
        loop = asyncio.get_running_loop()
        for _ in procs:
            got = await loop.run_in_executor(None, out.get, True, 120)
            results.extend(got)
    finally:
        for p in procs:
            p.join(10)
        try:
            await request(sock, {"op": "quit"})
        except OSError:
            pass
        kbps = round(await publisher.kbps())
        await publisher.close()
        relay.join(10)
        if relay.is_alive():
            relay.kill()
    sent_at = publisher.video.sent_at
    fps_each: list[float] = []
    latencies: list[float] = []
    for r in results:
        in_window = [
            (c, a)
            for c, a in zip(r["counters"], r["arrivals"], strict=True)
            if window_start <= a < window_end
        ]
        fps_each.append(len(in_window) / seconds)
        latencies += [(a - sent_at[c]) * 1000 for c, a in in_window if c in sent_at]
    wall = cpu1["wall"] - cpu0["wall"]
    cpu = 100 * (cpu1["cpu"] - cpu0["cpu"]) / wall
    seen = (times1.user + times1.system - times0.user - times0.system) / wall
    run: Run = {
        "viewers": viewers,
        "codec": codec,
        "relay_cpu_pct": round(cpu, 1),
        "relay_cpu_pct_psutil": round(100 * seen, 1),
        "fps": round(statistics.fmean(fps_each), 1) if fps_each else 0.0,
        "fps_min": round(min(fps_each), 1) if fps_each else 0.0,
        "latency_ms": {
            "p50": round(_percentile(latencies, 0.5), 1),
            "p95": round(_percentile(latencies, 0.95), 1),
        },
        "publisher_kbps": kbps,
        "relay_queue_delay_ms": cpu1.get("metrics", {}).get("queue_delay_ms"),
        "relay_dropped_frames": cpu1.get("metrics", {}).get("dropped_frames"),
    }
    if hls_figures is not None:
        run["hls"] = await hls_figures
        run["recording"] = cpu1.get("metrics", {}).get("recording")
    return run


async def _recording_cost(
    args: argparse.Namespace, ours: dict[str, Any], log: Callable[[str], None]
) -> dict[str, Any]:
    """Relay CPU for one H.264 stream and viewer, without then with recording and HLS."""
    runs = {}
    for mode in ("ours", "recording"):
        run = await _measure(mode, 1, args.seconds, args.warmup, 1, False, "video/h264")
        log(f"{mode:9} h264 viewers=1 {json.dumps(run)}")
        runs[mode] = run
    cost = runs["recording"]["relay_cpu_pct"] - runs["ours"]["relay_cpu_pct"]
    relay_cost = ours.get("relay_cpu_pct") if ours.get("viewers") == args.viewers else None
    return {
        "stream": f"640x480 {FPS} fps H.264 + Opus, {runs['recording']['publisher_kbps']} kbps",
        "relay_cpu_pct_without": runs["ours"]["relay_cpu_pct"],
        "relay_cpu_pct_with": runs["recording"]["relay_cpu_pct"],
        "recording_hls_cpu_pct_of_core": round(cost, 1),
        "ratio_to_relay_cpu_for_viewers": (round(cost / relay_cost, 2) if relay_cost else None),
        "relay_viewers_compared": args.viewers,
        "hls": runs["recording"].get("hls"),
        "whep_latency_ms_same_run": runs["recording"]["latency_ms"],
        "recorder": runs["recording"].get("recording"),
    }


def _summary(runs: list[Run]) -> dict[str, Any]:
    """Slope between 1 viewer and the largest count still at full frame rate."""
    full = [r for r in runs if r["fps"] >= 0.9 * FPS] or runs[:1]
    one = runs[0]
    top = max(full, key=lambda r: r["viewers"])
    slope = (
        (top["relay_cpu_pct"] - one["relay_cpu_pct"]) / (top["viewers"] - one["viewers"])
        if top["viewers"] > one["viewers"]
        else one["relay_cpu_pct"]
    )
    last = runs[-1]
    return {
        "relay_cpu_pct": last["relay_cpu_pct"],
        "cpu_per_viewer_pct": round(slope, 2),
        "fps": last["fps"],
        "latency_ms": last["latency_ms"],
        "viewers": last["viewers"],
        "full_rate_up_to": top["viewers"],
        "runs": runs,
    }


async def bench(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    """Run every configuration and build the report."""
    out: dict[str, Any] = {
        "config": {
            "viewers": args.viewers,
            "seconds": args.seconds,
            "video": "640x480 30 fps VP8 + Opus",
            "cpus": os.cpu_count(),
            "viewer_kind": args.viewer_kind,
        }
    }
    plan = [("baseline", n) for n in args.baseline_viewers] + [
        ("ours", n) for n in sorted({1, args.viewers})
    ]
    runs: dict[str, list[Run]] = {"baseline": [], "ours": []}
    for mode, n in plan:
        if mode == "baseline" and args.skip_baseline:
            continue
        light = args.viewer_kind == "light"
        run = await _measure(mode, n, args.seconds, args.warmup, args.viewer_procs, light)
        log(f"{mode:8} viewers={n:3} {json.dumps(run)}")
        runs[mode].append(run)
    for mode, mruns in runs.items():
        if mruns:
            out[mode] = _summary(mruns)
    if not args.skip_recording:
        out["recording"] = await _recording_cost(args, out.get("ours", {}), log)
    if "baseline" in out and "ours" in out and out["ours"]["cpu_per_viewer_pct"] > 0:
        out["cpu_ratio"] = round(
            out["baseline"]["cpu_per_viewer_pct"] / out["ours"]["cpu_per_viewer_pct"], 1
        )
        out["viewers_per_core_ours"] = round(100 / out["ours"]["cpu_per_viewer_pct"])
    return out


def main(argv: list[str]) -> int:
    """CLI entry: ``relay --viewers N --seconds S --json FILE``."""
    p = argparse.ArgumentParser(prog="loadtest.bench relay", description=__doc__)
    p.add_argument("--viewers", type=int, default=16)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--json", default="")
    p.add_argument("--baseline-viewers", type=int, nargs="*", default=[1, 2])
    p.add_argument("--skip-baseline", action="store_true")
    p.add_argument(
        "--skip-recording", action="store_true", help="leave out the recording + HLS cost runs"
    )
    p.add_argument("--viewer-procs", type=int, default=2)
    p.add_argument(
        "--viewer-kind",
        choices=["decode", "light"],
        default="decode",
        help="light viewers decode only their first keyframe (for 100+ viewers)",
    )
    args = p.parse_args(argv)

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = asyncio.run(bench(args, log))
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
