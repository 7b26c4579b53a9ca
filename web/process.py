"""Child processes: started so they die with us, kept running with back-off, stopped one way.

Every child livesell starts (the private redis-server, the ``livesell persist`` child, the
workers of ``--workers N``) goes through here. Three guards keep a crash of the parent from
leaving children behind: ``PR_SET_PDEATHSIG`` (the kernel sends SIGTERM when the parent dies),
a parent-liveness check inside our own Python children (``watch_parent``), and pid files that
the next start reads to stop an orphan before starting its replacement.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from inventory.tasks import cancel_all, supervise
from web.settings import Settings

log = logging.getLogger("livesell.process")

_PR_SET_PDEATHSIG = 1
try:  # looked up before any fork: the child may not import or allocate much
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # pragma: no cover - not Linux
    _prctl = None


def free_port() -> int:
    """An unused TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with(parent: int) -> Callable[[], None]:
    """A ``preexec_fn`` that asks the kernel to SIGTERM the child when ``parent`` dies.

    The signal fires when the *thread* that forked exits, so children must be spawned from a
    thread that lives as long as the process: the main thread (where the event loop runs),
    never ``asyncio.to_thread``. If the parent died between fork and prctl, nothing would
    fire, hence the getppid check.
    """

    def preexec() -> None:
        if _prctl is not None:
            _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def spawn(
    argv: Sequence[str], env: dict[str, str] | None = None, **popen: Any
) -> subprocess.Popen[bytes]:
    """Start a child that dies with this process, in a session of its own.

    Its own session: a terminal's Ctrl-C reaches livesell only, which then stops its children
    in order (Redis last) instead of having them die under it.
    """
    return subprocess.Popen(
        argv, env=env, start_new_session=True, preexec_fn=_die_with(os.getpid()), **popen
    )


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie counts as gone: it only waits to be reaped)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False


def _stop(pid: int, wait: Callable[[float], bool], timeout_s: float) -> None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL and wait: the one way a child is stopped."""
    for sig, limit in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 10.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        if wait(limit):
            return
        if sig == signal.SIGTERM:
            log.warning("pid %d did not stop in %.0f s; killing it", pid, timeout_s)


def stop_process(proc: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Stop a child of ours and reap it."""

    def wait(limit: float) -> bool:
        try:
            proc.wait(limit)
            return True
        except subprocess.TimeoutExpired:
            return False

    if proc.poll() is None:
        _stop(proc.pid, wait, timeout_s)


def stop_pid(pid: int, timeout_s: float) -> None:
    """Stop a process that is not our child (an orphan of a crashed run)."""

    def wait(limit: float) -> bool:
        deadline = time.monotonic() + limit
        while _alive(pid):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    if _alive(pid):
        _stop(pid, wait, timeout_s)


def cmdline(pid: int) -> list[str]:
    """The command line of ``pid`` (empty when it is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode(errors="replace") for a in raw.split(b"\0") if a]


class PidFile:
    """A pid file; at start-up it names an orphan of a crashed run, which is stopped.

    ``belongs(pid)`` says whether a live pid is really ours (pids are reused), e.g. by its
    command line and working directory.
    """

    def __init__(self, path: Path, belongs: Callable[[int], bool]) -> None:
        self.path = path
        self._belongs = belongs

    def read(self) -> int | None:
        """The pid written there, if any."""
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def write(self, pid: int) -> None:
        """Record ``pid``."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid}\n")

    def remove(self) -> None:
        """Forget the pid (clean stop)."""
        self.path.unlink(missing_ok=True)

    def stop_orphan(self, timeout_s: float = 10) -> int | None:
        """Stop the process the file names if it still runs and is ours; returns its pid."""
        pid = self.read()
        if pid is None or pid == os.getpid() or not _alive(pid) or not self._belongs(pid):
            self.remove()
            return None
        log.warning("stopping orphan pid %d left by a crashed run (%s)", pid, self.path)
        stop_pid(pid, timeout_s)
        self.remove()
        return pid


class Backoff:
    """Restart delays: doubling from ``first_s`` up to ``max_s``, reset after a healthy run."""

    def __init__(self, first_s: float = 0.5, max_s: float = 30.0, healthy_s: float = 10.0) -> None:
        self.first_s = first_s
        self.max_s = max_s
        self.healthy_s = healthy_s
        self._next = first_s

    def delay(self, ran_s: float) -> float:
        """The pause before the next start, after a run that lasted ``ran_s``."""
        if ran_s >= self.healthy_s:
            self._next = self.first_s
        delay = self._next
        self._next = min(self._next * 2, self.max_s)
        return delay


def _environ(pid: int, name: str) -> str | None:
    """The value of ``name`` in the environment ``pid`` was started with."""
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    for item in raw.split(b"\0"):
        key, _, value = item.partition(b"=")
        if key.decode(errors="replace") == name:
            return value.decode(errors="replace")
    return None


class ChildProcess:
    """``livesell <args>`` as a child kept running until ``close``, restarted with back-off.

    The child gets ``--parent-pid`` so that it can watch us (``watch_parent``). Must be started
    from the event loop's (main) thread; see ``_die_with``.
    """

    def __init__(
        self,
        name: str,
        args: Sequence[str],
        env: dict[str, str],
        pid_file: Path,
        stop_timeout_s: float = 10,
        backoff: Backoff | None = None,
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        self.name = name
        #: Told each child pid once that child has exited (web/metrics.py drops its gauges).
        self._on_exit = on_exit
        self._argv = python_command(*args, "--parent-pid", str(os.getpid()))
        self._env = env
        self._pid_file = PidFile(pid_file, self._is_like_ours)
        self._stop_timeout_s = stop_timeout_s
        self._backoff = backoff or Backoff()
        self._proc: subprocess.Popen[bytes] | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    @property
    def pid(self) -> int | None:
        """The running child's pid, if any."""
        return self._proc.pid if self._proc and self._proc.poll() is None else None

    def _is_like_ours(self, pid: int) -> bool:
        """The same ``livesell`` subcommand on the same data directory.

        Whatever its other arguments (an old port, an old parent pid): we hold the directory's
        lock, so any such process is an orphan of a crashed run.
        """
        key = Settings.variable("data_dir")
        same_dir = _environ(pid, key) == self._env.get(key)
        return same_dir and cmdline(pid)[1:4] == self._argv[1:4]

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            self._proc = spawn(self._argv, self._env)
            self._pid_file.write(self._proc.pid)
            while True:  # polled: a pidfd or SIGCHLD watcher would tie this to one loop kind
                code = self._proc.poll()
                if code is not None:
                    break
                await asyncio.sleep(0.2)
            if self._on_exit is not None:
                self._on_exit(self._proc.pid)
            delay = self._backoff.delay(time.monotonic() - started)
            log.error("%s exited with %s; restarting in %.1f s", self.name, code, delay)
            await asyncio.sleep(delay)

    def start(self) -> None:
        """Stop an orphan of a crashed run, then start the child and its supervisor."""
        self._pid_file.stop_orphan(self._stop_timeout_s)
        self._tasks.append(supervise(self._run(), self.name))

    async def close(self) -> None:
        """Stop supervising, then stop the child (SIGTERM, then SIGKILL)."""
        await cancel_all(self._tasks)
        if self._proc is None:
            return  # never started: the pid file (if any) is someone else's
        await asyncio.to_thread(stop_process, self._proc, self._stop_timeout_s)
        self._pid_file.remove()
        if self._on_exit is not None:
            self._on_exit(self._proc.pid)


def python_command(*args: str) -> list[str]:
    """The argv that runs ``livesell <args>`` with this interpreter."""
    return [sys.executable, "-m", "web.cli", *args]


async def watch_parent(parent: int, on_orphaned: Callable[[], None]) -> None:
    """In a child: call ``on_orphaned`` once the parent that started us is gone.

    Backs up PR_SET_PDEATHSIG, which a child misses when it was started some other way or
    when the parent thread that forked it exited while the parent process lives on.
    """
    while True:
        if os.getppid() != parent:
            break
        await asyncio.sleep(1.0)
    log.error("parent pid %d is gone; stopping", parent)
    on_orphaned()
