"""The locustfile drives a show headless for a few seconds (skipped without the [locust] extra)."""

from __future__ import annotations

import asyncio
import importlib.util
import re
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient

from tests.loadtest.test_flashsale_load import _env
from web.settings import Settings

# Only looked up, never imported here: importing locust monkey-patches the whole process with
# gevent, which recursed in ssl once other tests' libraries had configured it (collection
# error in a clean clone). Locust runs in its own process below.
if importlib.util.find_spec("locust") is None:
    pytest.skip("pip install -e '.[locust]' to run the locustfile test", allow_module_level=True)

LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtest" / "locustfile.py"


async def test_locust_runs_the_show_headless(client: TestClient, settings: Settings) -> None:
    """10 Locust viewers for 10 s: snapshots, chat deliveries and buys reported, audit ok.

    The sale opens at 1 s and counts down 2 s, and the taps come within the next second: 10 s
    leaves room for a slow start on a loaded machine (6 s did not, now and then).
    """
    argv = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "-u", "10",
        "-r", "10", "-t", "10s", "--host", str(client.make_url("")).rstrip("/"),
        "--show-viewers", "10", "--show-stock", "5", "--show-sale-at", "1", "--only-summary",
    ]  # fmt: skip
    env = {**_env(settings), "PYTHONPATH": str(LOCUSTFILE.parents[1])}
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 90)
    text = out.decode()
    assert proc.returncode == 0, text[-3000:]
    assert "show audit: ok=True" in text, text[-3000:]
    for name in ("snapshot", "chat delivery", "buy"):
        assert re.search(rf"WS\s+{name}\s+[1-9]", text), (name, text[-3000:])
