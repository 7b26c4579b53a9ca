"""Rehearsal reports on disk: what ``livesell-loadtest show --rehearse`` uploads after a run.

Each report is ``<data dir>/rehearsals/<stream id>/<report id>.{html,json,meta.json}``. A report
id is its upload time and 128 random bits: it sorts by time, and a link to it cannot be guessed
(the HTML is served without a token, so the studio can open it in a new tab). Only the newest
``keep`` reports of a stream are kept.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any

REPORT_ID_RE = re.compile(r"^\d{13}-[A-Za-z0-9_-]{22}\Z")
#: What a stream id may be (inventory.catalog.STREAM_ID_RE): safe as a directory name.
STREAM_DIR_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}\Z")
KINDS = ("html", "json")


def _summary(report: dict[str, Any]) -> dict[str, Any]:
    """The few figures the studio lists, taken defensively from an uploaded report."""

    def get(d: Any, *path: str) -> Any:
        for k in path:
            d = d.get(k) if isinstance(d, dict) else None
        return d

    def num(v: Any) -> int | None:
        return v if isinstance(v, int) and not isinstance(v, bool) else None

    def flag(v: Any) -> bool | None:
        return v if isinstance(v, bool) else None

    reason = get(report, "exit", "reason")
    return {
        "valid": flag(report.get("valid")),
        "exit_code": num(get(report, "exit", "code")),
        "reason": reason[:300] if isinstance(reason, str) else None,
        "viewers": num(get(report, "config", "viewers")),
        "orders": num(get(report, "counts", "orders")),
        "audit_ok": flag(get(report, "audit", "ok")),
        "oversold": num(get(report, "audit", "oversold")),
    }


def _write(path: Path, data: bytes) -> None:
    """Write through a temporary file, so a reader never sees half a report."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class ReportShelf:
    """Stores, lists and finds the rehearsal reports of each stream."""

    def __init__(self, root: Path, keep: int = 20) -> None:
        self._root = root
        self._keep = keep

    def _dir(self, stream_id: str) -> Path:
        if not STREAM_DIR_RE.match(stream_id):
            raise ValueError(f"bad stream id {stream_id!r}")
        return self._root / stream_id

    async def save(self, stream_id: str, report: dict[str, Any], html: str) -> dict[str, Any]:
        """Store one run's report and HTML; returns its listing entry."""
        at_ms = int(time.time() * 1000)
        rid = f"{at_ms:013d}-{secrets.token_urlsafe(16)}"
        meta = {"id": rid, "at_ms": at_ms, **_summary(report)}
        await asyncio.to_thread(self._save, stream_id, rid, meta, report, html)
        return meta

    def _save(
        self, stream_id: str, rid: str, meta: dict[str, Any], report: dict[str, Any], html: str
    ) -> None:
        d = self._dir(stream_id)
        d.mkdir(parents=True, exist_ok=True)
        _write(d / f"{rid}.json", json.dumps(report, separators=(",", ":")).encode())
        _write(d / f"{rid}.html", html.encode())
        _write(d / f"{rid}.meta.json", json.dumps(meta).encode())
        for old in self._ids(stream_id)[self._keep :]:
            for kind in (*KINDS, "meta.json"):
                (d / f"{old}.{kind}").unlink(missing_ok=True)

    def _ids(self, stream_id: str) -> list[str]:
        """Report ids of a stream, newest first."""
        d = self._dir(stream_id)
        if not d.is_dir():
            return []
        ids = (p.name.removesuffix(".meta.json") for p in d.glob("*.meta.json"))
        return sorted((i for i in ids if REPORT_ID_RE.match(i)), reverse=True)

    def list(self, stream_id: str) -> list[dict[str, Any]]:
        """The stream's reports, newest first (their listing entries)."""
        out = []
        for rid in self._ids(stream_id):
            try:
                out.append(json.loads((self._dir(stream_id) / f"{rid}.meta.json").read_text()))
            except (OSError, ValueError):
                continue  # removed meanwhile by a newer upload
        return out

    def path(self, stream_id: str, report_id: str, kind: str) -> Path | None:
        """The file of one report, or None when there is no such report."""
        if kind not in KINDS or not REPORT_ID_RE.match(report_id):
            return None
        if not STREAM_DIR_RE.match(stream_id):
            return None
        p = self._dir(stream_id) / f"{report_id}.{kind}"
        return p if p.is_file() else None
