"""``python -m loadtest.bench pages``: the viewer room in headless Chromium, timed.

(a) join: from opening /live/{id} to the first decoded video frame (requestVideoFrameCallback,
    measured from the page's navigation start), with a browser publishing its fake camera over
    WHIP from another tab of the same Chromium;
(b) sale open: from the host's open call (no countdown) to the viewer's buy button showing
    "Buy now" (wall clock on both sides; one machine).
Each of ``--joins`` rounds opens a fresh viewer context and then opens a fresh sale in it.
A client of the server only: it signs in with the one-time link `livesell serve` prints.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.benchprocs import Server, start_redis, stop_process

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
]  # fmt: skip
GOALS_MS = {"join_to_first_frame": 1500, "start_sale_to_card_open": 300}

#: Runs in the viewer page before its own scripts: note when the first frame is decoded and
#: when the buy button first says the sale is open.
PROBE = """
window.__probe = {};
document.addEventListener("DOMContentLoaded", () => {
  const v = document.getElementById("video");
  const onFrame = () => { window.__probe.frame = performance.now(); };
  if (v && v.requestVideoFrameCallback) v.requestVideoFrameCallback(onFrame);
  const buy = document.getElementById("buy");
  new MutationObserver(() => {
    if (buy.dataset.state === "open" && !window.__probe.open) window.__probe.open = Date.now();
  }).observe(buy, { attributes: true, attributeFilter: ["data-state"] });
});
"""

#: Where a join's time went: page scripts ready, the WHEP offer sent, its answer back.
WHEP_TIMING = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const whep = performance.getEntriesByType("resource").find((e) => e.name.includes("/whep/"));
  return {
    dom_content_loaded: nav ? nav.domContentLoadedEventEnd : 0,
    whep_sent: whep ? whep.startTime : 0,
    whep_answered: whep ? whep.responseEnd : 0,
  };
}
"""

#: Runs in the publisher tab: the fake camera, published over WHIP with the admin token.
PUBLISH = """
async ([streamId, token]) => {
  const media = await navigator.mediaDevices.getUserMedia({
    video: { width: 720, height: 1280, frameRate: 30 }, audio: true });
  const pc = new RTCPeerConnection();
  for (const track of media.getTracks()) pc.addTransceiver(track, { direction: "sendonly" });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => {
    if (pc.iceGatheringState === "complete") ok();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === "complete" && ok();
    setTimeout(ok, 1000);
  });
  const resp = await fetch(`/whip/${streamId}`, { method: "POST", body: pc.localDescription.sdp,
    headers: { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` } });
  if (resp.status !== 201) throw new Error(`WHIP ${resp.status}: ${await resp.text()}`);
  await pc.setRemoteDescription({ type: "answer", sdp: await resp.text() });
  window.__publisher = pc;
  return resp.status;
}
"""


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "median_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(p95, 1),
        "min_ms": round(ordered[0], 1),
        "max_ms": round(ordered[-1], 1),
    }


class Host:
    """The host's HTTP calls, signed in through the printed one-time link."""

    def __init__(self, server: Server, session: aiohttp.ClientSession) -> None:
        self.url = server.url
        self.session = session
        self.token = ""

    async def sign_in(self, log: Path) -> None:
        """Exchange the studio link's code for a token."""
        deadline = time.monotonic() + 10
        while not (m := re.search(r"studio\?code=(\S+)", await asyncio.to_thread(_read, log))):
            if time.monotonic() > deadline:
                raise SystemExit("livesell serve printed no sign-in link")
            await asyncio.sleep(0.1)
        self.token = (await self.call("POST", "/api/login", {"code": m.group(1)}))["token"]

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One JSON call; any error stops the benchmark."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with self.session.request(method, self.url + path, json=body, headers=headers) as r:
            if r.status >= 300:
                raise SystemExit(f"{method} {path}: {r.status} {await r.text()}")
            return await r.json()


def _read(path: Path) -> str:
    return path.read_text(errors="replace")


async def bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    """Start Redis, the server and Chromium; time the joins and the sale openings."""
    from playwright.async_api import async_playwright

    redis_proc, redis_url = start_redis(tmp)
    server = Server(redis_url, tmp, {"LIVESELL_LOG_LEVEL": "WARNING"})
    try:
        await server.start()
        async with aiohttp.ClientSession() as session, async_playwright() as pw:
            host = Host(server, session)
            await host.sign_in(tmp / "serve.log")
            stream_id = f"bench{int(time.time())}"
            await host.call("POST", "/api/streams", {"id": stream_id, "title": "Bench"})
            product = await host.call(
                "POST", "/api/products", {"name": "Bench scarf", "price_cents": 1990}
            )
            browser = await pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            publisher = await (await browser.new_context()).new_page()
            await publisher.goto(f"{server.url}/healthz")
            await publisher.evaluate(PUBLISH, [stream_id, host.token])
            await asyncio.sleep(1.0)  # the relay has media before the first viewer comes
            joins: list[float] = []
            parts: dict[str, list[float]] = {}
            opens: list[float] = []
            for _ in range(args.joins):
                context = await browser.new_context(viewport={"width": 390, "height": 844})
                await context.add_init_script(PROBE)
                page = await context.new_page()
                await page.goto(f"{server.url}/live/{stream_id}")
                probe = await _wait(page, "frame", 15)
                joins.append(probe["frame"])
                whep = await page.evaluate(WHEP_TIMING)
                for key, value in whep.items():
                    parts.setdefault(key, []).append(value)
                await page.wait_for_selector("#product-card", state="attached")
                sale = await host.call(
                    "POST", "/api/sales",
                    {"product_id": product["id"], "stream_id": stream_id, "quantity": 100},
                )  # fmt: skip
                await asyncio.sleep(0.3)  # the viewer has settled; nothing else in flight
                started = time.time() * 1000
                await host.call("POST", f"/api/sales/{sale['id']}/open", {"countdown_s": 0})
                probe = await _wait(page, "open", 10)
                opens.append(probe["open"] - started)
                await host.call("POST", f"/api/sales/{sale['id']}/close")
                await context.close()
            await browser.close()
    finally:
        server.stop()
        stop_process(redis_proc)
    result = {
        "joins": args.joins,
        "join_to_first_frame": _summary(joins),
        "start_sale_to_card_open": _summary(opens),
        "join_breakdown_median_ms": {k: round(statistics.median(v), 1) for k, v in parts.items()},
        "goals_ms": GOALS_MS,
        "raw_ms": {"join": [round(v, 1) for v in joins], "open": [round(v, 1) for v in opens]},
    }
    for key, goal in GOALS_MS.items():
        result[key]["meets_goal"] = result[key]["median_ms"] < goal
    return result


async def _wait(page: Any, key: str, within_s: float) -> dict[str, float]:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        probe = await page.evaluate("() => window.__probe")
        if probe and probe.get(key):
            return dict(probe)
        await asyncio.sleep(0.01)
    raise SystemExit(f"the viewer page never recorded {key!r} within {within_s} s")


def main(argv: list[str] | None = None) -> int:
    """Entry point: ``pages [--joins N] [--json FILE]``."""
    p = argparse.ArgumentParser(prog="python -m loadtest.bench pages")
    p.add_argument("--joins", type=int, default=10, help="viewer joins (and sale openings)")
    p.add_argument("--chromium", default=CHROMIUM, help="the Chromium binary")
    p.add_argument("--json", help="write the report here")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="livesell-bench-pages-") as tmp:
        result = asyncio.run(bench(args, Path(tmp)))
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0
