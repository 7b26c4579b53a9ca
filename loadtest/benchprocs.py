"""Processes the flash-sale benchmark starts: a private redis-server and ``livesell serve``."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path

import aiohttp
import psutil

from loadtest.flashsale_load import livesell_command


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_redis(data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A private redis-server configured like livesell's embedded one (AOF, fsync every second)."""
    exe = shutil.which("redis-server")
    if exe is None:
        raise SystemExit("the benchmark needs redis-server on PATH")
    port = free_port()
    argv = [
        exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(data_dir), "--save", "",
        "--appendonly", "yes", "--appendfsync", "everysec", "--protected-mode", "yes",
        "--logfile", str(data_dir / "redis.log"),
    ]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(16).startswith(b"+PONG"):
                    return proc, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise SystemExit("redis-server did not start")


def stop_process(proc: subprocess.Popen[bytes]) -> None:
    """Terminate ``proc`` and wait for it (kill after 10 s)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Server:
    """``livesell serve`` as a child process on a free port, with its own data dir and prefix."""

    def __init__(
        self, redis_url: str, data_dir: Path, extra_env: dict[str, str], persist: bool = False
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("LIVESELL_")}
        self.env.update(
            LIVESELL_PORT=str(self.port), LIVESELL_HOST="127.0.0.1",
            LIVESELL_DATA_DIR=str(data_dir), LIVESELL_REDIS_URL=redis_url,
            LIVESELL_REDIS_PREFIX=f"bench{secrets.token_hex(3)}",
            LIVESELL_SECRET=secrets.token_urlsafe(32), LIVESELL_LOG_LEVEL="WARNING",
        )  # fmt: skip
        self.env.update(extra_env)
        if persist:
            # The persister in its own process (`livesell persist`), off the request path.
            self.env["LIVESELL_PERSISTER"] = "off"
        self.persist = persist
        self.persister: subprocess.Popen[bytes] | None = None
        self._log = data_dir / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def _spawn(self, cmd: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
        with self._log.open("ab") as log:
            return subprocess.Popen([*livesell_command(), cmd], env=env, stdout=log, stderr=log)

    async def start(self) -> None:
        """Start it and wait for /healthz."""
        self.proc = self._spawn("serve", self.env)
        deadline = time.monotonic() + 60
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise SystemExit(f"livesell serve exited: {self._log.read_text()[-2000:]}")
                try:
                    async with session.get(f"{self.url}/healthz") as r:
                        if r.status == 200:
                            if self.persist:  # after the server has migrated the database
                                env = {**self.env, "LIVESELL_PERSISTER": "inprocess"}
                                self.persister = self._spawn("persist", env)
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        raise SystemExit("livesell serve did not become healthy in 60 s")

    def persister_child(self) -> int | None:
        """The pid of the persister child that ``livesell serve`` starts by default, if any."""
        if self.proc is None:
            return None
        for child in psutil.Process(self.proc.pid).children():
            if "persist" in child.cmdline():
                return int(child.pid)
        return None

    def stop(self) -> None:
        """Stop it."""
        for proc in (self.persister, self.proc):
            if proc is not None:
                stop_process(proc)
