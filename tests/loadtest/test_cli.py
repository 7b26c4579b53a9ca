"""The load-test command lines, without a server."""

from __future__ import annotations

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
