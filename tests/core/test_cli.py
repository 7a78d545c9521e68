"""The ``ipwarmup`` command line: ``simulate`` output, the PNG, and one-line usage errors."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from ipwarmup.cli import main

PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
HEADER = ("day", "ips", "cap/h", "demand", "sent", "accepted", "deferred", "rejected", "inbox")


def _provider_blocks(out: str) -> dict[str, list[list[str]]]:
    """Split the day-by-day table into {provider: [row cells]} (header checked, then dropped)."""
    blocks: dict[str, list[list[str]]] = {}
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        name = lines[i].strip()
        if name in PROVIDERS and i + 1 < len(lines):
            assert name not in blocks, f"two blocks for {name}"
            assert tuple(lines[i + 1].split()) == HEADER, lines[i + 1]
            rows = []
            i += 2
            while i < len(lines) and re.match(r"^\s+\d+\s", lines[i]):
                rows.append(lines[i].split())
                i += 1
            blocks[name] = rows
        else:
            i += 1
    return blocks


@pytest.fixture
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_simulate_prints_a_block_per_provider_and_writes_the_png(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        ["simulate", "--scenario", "low_volume", "--policy", "hold", "--days", "5", "--seed", "1"]
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    assert out.splitlines()[0] == "scenario low_volume, policy hold, seed 1, 5 days"
    blocks = _provider_blocks(out)
    assert list(blocks) == list(PROVIDERS)
    for name, rows in blocks.items():
        assert [row[0] for row in rows] == ["0", "1", "2", "3", "4"], name
        for row in rows:
            assert len(row) == len(HEADER), (name, row)
    assert "total: demand" in out
    png = in_tmp / "warmup-low_volume-hold-1.png"
    assert f"warmup curves: {png.name}" in out
    assert png.read_bytes().startswith(PNG_MAGIC)
    assert [p.name for p in in_tmp.iterdir()] == [png.name]


def test_simulate_writes_the_png_where_plot_says(
    in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = in_tmp / "plots" / "curves.png"
    argv = ["simulate", "--scenario", "low_volume", "--policy", "hold", "--days", "2"]
    code = main([*argv, "--plot", str(target)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert target.read_bytes().startswith(PNG_MAGIC)
    assert f"warmup curves: {target}" in out
    # Nothing was written at the default place.
    assert sorted(p.name for p in in_tmp.iterdir()) == ["plots"]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["simulate", "--scenario", "low_volum", "--days", "1"], r"did you mean 'low_volume'"),
        (["simulate", "--policy", "no-such-policy", "--days", "1"], r"no-such-policy"),
        (["simulate", "--set", "mta.max_age=3", "--days", "1"], r"max_age_hours"),
        (["simulate", "--set", "pool.max_ips=abc", "--days", "1"], r"expected an integer"),
        (["simulate", "--days", "0"], r"--days"),
        (["frobnicate"], r"frobnicate"),
    ],
    ids=["scenario", "policy", "unknown-key", "not-an-integer", "days-0", "subcommand"],
)
def test_usage_errors_exit_2_with_one_line(
    argv: list[str], expected: str, in_tmp: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.endswith("\n")
    assert len(err.splitlines()) == 1, err
    assert err.startswith("ipwarmup: error: ")
    assert "Traceback" not in err
    assert re.search(expected, err), err
    assert list(in_tmp.iterdir()) == []  # nothing written on an error


def test_console_script_is_declared() -> None:
    scripts = entry_points(group="console_scripts", name="ipwarmup")
    assert [ep.value for ep in scripts] == ["ipwarmup.cli:console"]


def test_console_script_runs(tmp_path: Path) -> None:
    script = shutil.which("ipwarmup")
    command = [script] if script else [sys.executable, "-m", "ipwarmup.cli"]
    result = subprocess.run(
        [*command, "simulate", "--days", "2", "--policy", "hold"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "policy hold" in result.stdout
    assert "2 days" in result.stdout
    pngs = list(tmp_path.glob("warmup-*.png"))
    assert len(pngs) == 1
    assert pngs[0].read_bytes().startswith(PNG_MAGIC)
