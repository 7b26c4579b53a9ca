"""The load-test command lines, without a server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loadtest import bench, cli


def test_bench_rejects_an_unknown_benchmark(capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m loadtest.bench nope`` prints the choices and exits 2."""
    assert bench.main(["nope"]) == 2
    assert "flashsale" in capsys.readouterr().err


def test_loadtest_help_lists_flashsale(capsys: pytest.CaptureFixture[str]) -> None:
    """``livesell-loadtest flashsale --help`` documents the issue's options."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["flashsale", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in ("--url", "--buyers", "--stock", "--limit", "--rate", "--json", "--connections"):
        assert option in out


def test_show_help_lists_the_issue_options(capsys: pytest.CaptureFixture[str]) -> None:
    """``livesell-loadtest show --help`` documents the rehearsal's options."""
    with pytest.raises(SystemExit) as exc:
        cli.main(["show", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--viewers",
        "--duration",
        "--stock",
        "--json",
        "--html",
        "--threshold",
        "--scenario",
        "--workers",
        "--buy-share",
        "--rate",
        "--ramp",
        "--whep",
    ):
        assert option in out


def test_show_rejects_a_bad_threshold_without_a_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A malformed threshold exits 2 with one line naming the expected form."""
    assert cli.main(["show", "--threshold", "buy.p99 about 50"]) == 2
    assert "expected NAME OP VALUE" in capsys.readouterr().err


def test_show_against_no_server_exits_1_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Nothing listening: one line on stderr and exit 1, never a traceback."""
    from web.process import free_port

    # In a process of its own, as ops run it: the CLI installs uvloop and runs its own loop,
    # which must not share a process with the rest of the suite's loops.
    url = f"http://127.0.0.1:{free_port()}"
    done = subprocess.run(
        [sys.executable, "-m", "loadtest.cli", "show", "--url", url, "--viewers", "2"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    err = done.stderr
    assert done.returncode == 1 and "Traceback" not in err and err.startswith("show: "), err
