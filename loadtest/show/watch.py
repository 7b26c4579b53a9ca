"""``--whep K``: a few viewers watch the show over WHEP, to check that frames arrive.

In a synthetic show the host also publishes (stamped VP8 video over WHIP, the relay
benchmark's publisher); in a rehearsal the real host's camera is watched. The viewers tap
frames as they arrive without decoding them (``LightViewer``), so watching costs the
generator little. aiortc is imported only when asked for.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

SDP = {"Content-Type": "application/sdp"}


async def _negotiate(s: aiohttp.ClientSession, url: str, peer: Any, token: str) -> tuple[bool, str]:
    try:
        headers = {**SDP, "Authorization": f"Bearer {token}"} if token else SDP
        async with s.post(url, data=await peer.offer(), headers=headers) as r:
            if r.status != 201:
                return False, f"{r.status} {(await r.text())[:100]}"
            await peer.accept(await r.text())
            return True, ""
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        return False, type(exc).__name__


async def watch(
    base: str, stream_id: str, token: str, k: int, seconds: float, publish: bool
) -> dict[str, Any]:
    """Publish (when ``publish``), have ``k`` viewers watch for ``seconds``; what they got."""
    from loadtest.bench_relay.media import LightViewer, Publisher

    publisher = Publisher() if publish else None
    viewers = [LightViewer() for _ in range(k)]
    errors: list[str] = []
    start = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as s:
        try:
            if publisher is not None:
                ok, why = await _negotiate(s, f"{base}/whip/{stream_id}", publisher, token)
                if not ok:
                    errors.append(f"whip: {why}")
            start = time.monotonic()
            for v in viewers:
                ok, why = await _negotiate(s, f"{base}/whep/{stream_id}", v, "")
                if not ok:
                    errors.append(f"whep: {why}")
            await asyncio.sleep(max(0.0, seconds - (time.monotonic() - start)))
        finally:
            for peer in [*viewers, *([publisher] if publisher else [])]:
                await peer.close()
    got = [v.arrivals for v in viewers]
    fps = [
        round((len(a) - 1) / (a[-1] - a[0]), 1) if len(a) > 1 and a[-1] > a[0] else 0.0 for a in got
    ]
    return {
        "viewers": k,
        "watching": sum(1 for a in got if a),
        "frames": [len(a) for a in got],
        "fps": fps,
        "first_frame_s": [round(a[0] - start, 2) if a else None for a in got],
        "errors": errors,
        "ok": bool(got) and all(got) and not errors,
    }
