"""``livesell migrate``: a deploy's one-off migration step, safe to repeat."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from inventory.database import MIGRATIONS


def test_migrate_brings_an_empty_database_to_head_and_repeats_harmlessly(tmp_path: Path) -> None:
    env = {**os.environ, "LIVESELL_DATA_DIR": str(tmp_path), "LIVESELL_DATABASE_URL": ""}
    argv = [sys.executable, "-m", "web.cli", "migrate"]
    heads = sorted(p.name.split("_")[0] for p in (MIGRATIONS / "versions").glob("0*.py"))
    for _ in range(2):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        with sqlite3.connect(tmp_path / "livesell.db") as db:
            assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [
                (heads[-1],)
            ]
    # It only migrates: no server state (lock, secret, Redis) is left behind.
    assert {p.name.split("-")[0] for p in tmp_path.iterdir()} == {"livesell.db"}  # and -wal
