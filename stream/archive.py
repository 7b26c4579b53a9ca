"""Where recordings live on disk: one folder per stream, one file per broadcast, and retention.

Layout under the recordings directory::

    <stream_id>/<started_at_ms>.mp4|.webm   one file per broadcast (a publisher session)
    <stream_id>/hls/index.m3u8              the live HLS playlist of the current H.264 broadcast
    <stream_id>/hls/<started_at_ms>-*.m4s   its segments (and <started_at_ms>-init.mp4)

A publisher that reconnects starts a new broadcast and so a new file (its codec may even
differ); a show's recording is the list of its files in time order, each named by the epoch
millisecond of its first frame, which places every file on the show's wall-clock timeline.
"""

from __future__ import annotations

import asyncio
import logging
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("livesell.stream")

_STREAM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FILE = re.compile(r"^(\d{10,16})\.(mp4|webm)$")
_HLS_FILE = re.compile(r"^(index\.m3u8|\d{10,16}-(init\.mp4|\d{5}\.m4s))$")


@dataclass(frozen=True, slots=True)
class RecordingFile:
    """One broadcast's recording: its file name, its start (epoch ms) and its size in bytes."""

    name: str
    started_at_ms: int
    size: int

    @property
    def media_type(self) -> str:
        """The file's MIME type."""
        return "video/webm" if self.name.endswith(".webm") else "video/mp4"


class RecordingArchive:
    """Names, lists and prunes the recordings of every stream under one directory."""

    def __init__(self, root: Path, retention_days: float = 0.0) -> None:
        self.root = root
        self.retention_days = retention_days

    @staticmethod
    def valid_id(stream_id: str) -> bool:
        """Whether ``stream_id`` can name a folder (anything else is never recorded)."""
        return bool(_STREAM_ID.match(stream_id))

    def folder(self, stream_id: str) -> Path:
        """The stream's folder (ValueError for an id that cannot name one)."""
        if not self.valid_id(stream_id):
            raise ValueError(f"stream id {stream_id!r} cannot name a recording folder")
        return self.root / stream_id

    def new_file(self, stream_id: str, started_at_ms: int, extension: str) -> Path:
        """The path for a broadcast of ``stream_id`` starting at ``started_at_ms``."""
        folder = self.folder(stream_id)
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{started_at_ms}.{extension}"

    def hls_dir(self, stream_id: str) -> Path:
        """The folder of the stream's live HLS playlist and segments."""
        return self.folder(stream_id) / "hls"

    def files(self, stream_id: str) -> list[RecordingFile]:
        """The stream's recordings, oldest first (none for an unknown or invalid id)."""
        if not self.valid_id(stream_id):
            return []
        folder = self.root / stream_id
        found: list[RecordingFile] = []
        if folder.is_dir():
            for path in folder.iterdir():
                match = _FILE.match(path.name)
                if match and path.is_file():
                    found.append(RecordingFile(path.name, int(match[1]), path.stat().st_size))
        return sorted(found, key=lambda f: f.started_at_ms)

    def file_path(self, stream_id: str, name: str) -> Path | None:
        """The path of recording ``name`` of ``stream_id``, None unless it is one of them."""
        if not self.valid_id(stream_id) or not _FILE.match(name):
            return None
        path = self.root / stream_id / name
        return path if path.is_file() else None

    def hls_path(self, stream_id: str, name: str) -> Path | None:
        """The path of HLS file ``name`` (playlist, init or segment), None when there is none."""
        if not self.valid_id(stream_id) or not _HLS_FILE.match(name):
            return None
        path = self.root / stream_id / "hls" / name
        return path if path.is_file() else None

    def streams(self) -> list[str]:
        """Ids of the streams with at least one recording."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and self.files(p.name))

    def prune(self, now_s: float | None = None) -> int:
        """Delete recordings older than the retention (0 keeps them all); return how many."""
        if self.retention_days <= 0 or not self.root.is_dir():
            return 0
        cutoff_ms = (
            (now_s if now_s is not None else time.time()) - self.retention_days * 86400
        ) * 1000
        removed = 0
        for stream_id in self.streams():
            files = self.files(stream_id)
            for f in files:
                if f.started_at_ms < cutoff_ms:
                    (self.root / stream_id / f.name).unlink(missing_ok=True)
                    removed += 1
            if files and all(f.started_at_ms < cutoff_ms for f in files):
                shutil.rmtree(self.root / stream_id, ignore_errors=True)
        return removed

    async def keep_pruning(self, interval_s: float = 3600.0) -> None:
        """Prune now and then every ``interval_s`` (run it supervised; it never returns)."""
        while True:
            removed = await asyncio.to_thread(self.prune)
            if removed:
                log.info("recordings: %d past retention deleted", removed)
            await asyncio.sleep(interval_s)
