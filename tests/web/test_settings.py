"""Settings are declared once: the README's table and the children's environment come from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from web.errors import ConfigError
from web.settings import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_configuration_table_is_the_generated_one() -> None:
    table = Settings.markdown_table()
    assert table in README.read_text(), "README is stale: paste the output of `livesell settings`"
    assert table.count("\n| `LIVESELL_") == len(Settings.__dataclass_fields__)


def test_livesell_settings_prints_the_table() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "web.cli", "settings"], capture_output=True, check=True, text=True
    )
    assert out.stdout == Settings.markdown_table()


def test_to_env_round_trips_every_setting(tmp_path: Path) -> None:
    s = Settings.from_env(
        {
            "LIVESELL_PORT": "9001",
            "LIVESELL_ROOM_BATCH_WINDOW_S": "0.01",
            "LIVESELL_PERSISTER": "off",
            "LIVESELL_DATA_DIR": str(tmp_path),
            "LIVESELL_ICE_SERVERS": "stun:x",
        }
    )
    back = Settings.from_env(s.to_env())
    assert back == s
    child = Settings.from_env(s.to_env(redis_url="redis://h:1/0", workers=1))
    assert (child.redis_url, child.port, child.workers) == ("redis://h:1/0", 9001, 1)


def test_bad_choice_is_refused_with_its_variable() -> None:
    with pytest.raises(ConfigError, match="LIVESELL_PERSISTER must be one of"):
        Settings.from_env({"LIVESELL_PERSISTER": "sometimes"})
    with pytest.raises(ConfigError, match="LIVESELL_ROOM_CHAT_PER_S must be a number"):
        Settings.from_env({"LIVESELL_ROOM_CHAT_PER_S": "fast"})
