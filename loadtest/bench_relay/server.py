"""The relay process of the benchmark: ours or aiortc's MediaRelay, driven over a unix socket."""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription


async def request(sock: str, msg: dict[str, Any]) -> dict[str, Any]:
    """One request to the relay process."""
    reader, writer = await asyncio.open_unix_connection(sock)
    writer.write(json.dumps(msg).encode() + b"\n")
    await writer.drain()
    line = await reader.readline()
    writer.close()
    reply: dict[str, Any] = json.loads(line)
    if "error" in reply:
        raise RuntimeError(reply["error"])
    return reply


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # every thread of this process
    return usage.ru_utime + usage.ru_stime


async def _serve(mode: str, sock: str) -> None:
    from aiortc.contrib.media import MediaRelay

    from stream.archive import RecordingArchive
    from stream.relay import Relay

    # "recording": ours, also recording every broadcast (and its HLS) under a temporary folder.
    archive = RecordingArchive(Path(tempfile.mkdtemp(prefix="bench-rec-")))
    ours = None
    if mode in ("ours", "recording"):
        ours = Relay(media_timeout_s=60, archive=archive if mode == "recording" else None)
    media_relay = MediaRelay()
    sources: dict[str, MediaStreamTrack] = {}
    pcs: list[RTCPeerConnection] = []
    done = asyncio.Event()

    async def baseline(op: str, sdp: str) -> str:
        pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        pcs.append(pc)
        if op == "publish":
            pc.on("track", lambda t: sources.__setitem__(t.kind, t))
        else:
            for kind in ("video", "audio"):
                pc.addTrack(media_relay.subscribe(sources[kind]))
        await pc.setRemoteDescription(RTCSessionDescription(sdp, "offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return str(pc.localDescription.sdp)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        msg = json.loads(await reader.readline())
        try:
            reply: dict[str, Any] = {}
            if msg["op"] == "cpu":
                reply = {"cpu": _cpu(), "wall": time.monotonic()}
                if ours is not None:
                    reply["metrics"] = ours.metrics("bench") or {}
            elif msg["op"] == "hls_dir":
                reply = {"path": str(archive.hls_dir("bench"))}
            elif msg["op"] == "quit":
                done.set()
            elif ours is not None:
                call = ours.publish if msg["op"] == "publish" else ours.watch
                reply = {"sdp": (await call("bench", msg["sdp"])).sdp}
            else:
                reply = {"sdp": await baseline(msg["op"], msg["sdp"])}
        except Exception as exc:
            reply = {"error": repr(exc)}
        writer.write(json.dumps(reply).encode() + b"\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(handle, sock)
    await done.wait()
    server.close()
    if ours is not None:
        await ours.close()
    shutil.rmtree(archive.root, ignore_errors=True)
    await asyncio.gather(*(pc.close() for pc in pcs), return_exceptions=True)


def relay_main(mode: str, sock: str) -> None:  # pragma: no cover - runs in a child process
    """Entry point of the relay process."""
    asyncio.run(_serve(mode, sock))
