"""A Prometheus-like scraper of ``GET /metrics``, and what one scrape costs the server."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import psutil


async def scrape_loop(url: str, period_s: float, seen: list[float]) -> None:
    """GET ``/metrics`` every ``period_s``, as Prometheus would; each scrape's ms into ``seen``."""
    async with aiohttp.ClientSession() as session:
        while True:
            started = time.perf_counter()
            async with session.get(f"{url}/metrics") as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"/metrics answered {r.status}")
            took = time.perf_counter() - started
            seen.append(round(took * 1000, 2))
            await asyncio.sleep(max(0.0, period_s - took))


async def scrape_cpu_ms(url: str, pid: int, n: int = 20) -> float:
    """The server's CPU per scrape, from ``n`` back-to-back scrapes right after a sale.

    Steadier than a throughput ratio on a busy machine: what one scrape costs the server,
    to set against the CPU its buys take.
    """
    proc = psutil.Process(pid)
    async with aiohttp.ClientSession() as session:
        before = sum(proc.cpu_times()[:2])
        for _ in range(n):
            async with session.get(f"{url}/metrics") as r:
                await r.read()
        used = sum(proc.cpu_times()[:2]) - before
    return round(used * 1000 / n, 2)
