"""The exclusive lock a serving livesell holds on its data directory for its whole life."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


class DataDirBusy(Exception):
    """Another live process holds the data directory."""


class DataDirLock:
    """``flock`` on ``<data dir>/livesell.lock``: one server per data directory.

    The kernel drops the lock when its holder dies, however it dies, so a crash never leaves a
    stale lock behind; the pid written inside only names the holder in the error message.
    Children do not inherit it (``close_fds``), so orphans cannot keep a restart out: they are
    found through their pid files and stopped instead.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "livesell.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise ``DataDirBusy`` naming the pid that holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirBusy(
                f"data directory {self.path.parent.resolve()} is in use by another livesell "
                f"(pid {holder}); stop it or set another LIVESELL_DATA_DIR"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Give the lock up (also happens when the process dies)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
