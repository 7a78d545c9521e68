"""Fail fast and say which store: every fault case exits 2 with one exact line, nothing written."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import sqlite3
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before MLflow is imported

import pytest

from ipwarmup.cli import main
from ipwarmup.errors import ConfigError
from ipwarmup.training.store import (
    StoreError,
    check_tracking_store,
    database_tables,
    is_database,
    is_server,
    redact,
)
from ipwarmup.training.tracking import Tracker

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "configs/experiments/smoke.yaml")


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid MLflow SQLite store with one experiment and no runs."""
    folder = tmp_path_factory.mktemp("template")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        Tracker(f"sqlite:///{folder}/mlflow.db", "ipwarmup")
    return folder / "mlflow.db"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # Tracker sets it; undo afterwards


def _closed_port() -> int:
    """Return a loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _commands(uri: str, tmp_path: Path) -> dict[str, list[str]]:
    return {
        "train": ["train", "--config", SMOKE, "--tracking-uri", uri],
        "compare": ["compare", "--tracking-uri", uri, "--plot", str(tmp_path / "c.png")],
        "export": ["export", "--run", "0123abcd", "--out", str(tmp_path / "b"),
                   "--tracking-uri", uri],
    }  # fmt: skip


def _one_line(capsys: pytest.CaptureFixture[str]) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err and captured.out == ""
    return lines[0]


@pytest.mark.parametrize("command", ["train", "compare", "export"])
def test_an_unreachable_tracking_server_is_one_line_and_exit_2(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uri = f"http://127.0.0.1:{_closed_port()}"
    assert main(_commands(uri, tmp_path)[command]) == 2
    assert _one_line(capsys) == (
        f"ipwarmup: error: tracking URI {uri}: no tracking server answers (Connection refused)"
    )
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "b").exists()


def _write(kind: str, path: Path, template: Path) -> None:
    data = template.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(bytes(range(256)) * 20)
    elif kind == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif kind == "foreign":
        with sqlite3.connect(path) as connection:
            connection.execute("CREATE TABLE notes (text TEXT)")
        connection.close()


@pytest.mark.parametrize(
    ("kind", "problem"),
    [
        ("empty", "is empty (0 bytes), not an MLflow store; delete it or choose another "
                  "--tracking-uri"),
        ("random", "is not an SQLite database (5120 bytes)"),
        ("truncated", "is damaged (database disk image is malformed)"),
        ("foreign", "is an SQLite database without MLflow's tables"),
    ],
)  # fmt: skip
@pytest.mark.parametrize("command", ["train", "compare", "export"])
def test_a_bad_sqlite_store_is_named_refused_and_left_as_it_was(
    kind: str,
    problem: str,
    command: str,
    template: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    database = tmp_path / "mlflow.db"
    _write(kind, database, template)
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    uri = f"sqlite:///{database}"
    assert main(_commands(uri, tmp_path)[command]) == 2
    assert _one_line(capsys) == f"ipwarmup: error: tracking URI {uri}: {database} {problem}"
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_compare_never_creates_or_changes_a_store(
    template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing" / "mlflow.db"
    argv = ["compare", "--tracking-uri", f"sqlite:///{missing}", "--plot", "c.png"]
    assert main(argv) == 2
    assert _one_line(capsys) == (
        f"ipwarmup: error: experiment 'ipwarmup' at tracking URI sqlite:///{missing}: not found "
        f"(no database file {missing}); no runs to compare on suite 'validation'"
    )
    assert not missing.parent.exists()
    database = tmp_path / "mlflow.db"
    shutil.copy(template, database)
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    for experiment in ("ipwarmup", "other"):  # no runs; no such experiment
        argv = ["compare", "--experiment", experiment, "--tracking-uri", f"sqlite:///{database}"]
        assert main(argv) == 2
        capsys.readouterr()
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_a_database_url_is_checked_with_its_password_hidden(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    port = _closed_port()
    uri = f"postgresql+psycopg://warmup:s3cret@127.0.0.1:{port}/mlflow"
    assert main(_commands(uri, tmp_path)["compare"]) == 2
    line = _one_line(capsys)
    assert line.startswith(
        f"ipwarmup: error: tracking URI postgresql+psycopg://warmup:***@127.0.0.1:{port}/mlflow: "
        f'cannot connect (connection failed: connection to server at "127.0.0.1", port {port} '
        "failed: Connection refused"
    )
    assert "s3cret" not in line


def test_tune_names_a_storage_it_cannot_reach_with_its_password_hidden(
    capsys: pytest.CaptureFixture[str], template: Path, tmp_path: Path
) -> None:
    shutil.copy(template, tmp_path / "mlflow.db")
    port = _closed_port()
    storage = f"postgresql+psycopg://tuner:hunter2@127.0.0.1:{port}/optuna"
    argv = ["tune", "--config", SMOKE, "--trials", "1", "--storage", storage, "--seed", "3",
            "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]  # fmt: skip
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines()[0] == "sampler seed: 3"
    line = captured.err.splitlines()[-1]
    assert line.startswith(
        f"ipwarmup: error: --storage postgresql+psycopg://tuner:***@127.0.0.1:{port}/optuna: "
        "cannot connect (connection failed:"
    )
    assert "hunter2" not in captured.err and len(captured.err.splitlines()) == 2


def test_a_missing_driver_names_the_extra_to_install() -> None:
    with pytest.raises(StoreError) as caught:
        database_tables("postgresql+pg8000://u:pw@127.0.0.1:1/db", what="--storage X")
    expected = "--storage X: needs the pg8000 driver (pip install 'ipwarmup[postgres]')"
    assert str(caught.value) == expected


@pytest.mark.parametrize(
    ("uri", "shown"),
    [
        ("postgresql+psycopg://me:pw@db:5432/mlflow", "postgresql+psycopg://me:***@db:5432/mlflow"),
        ("https://u:p%40ss@mlflow.example/", "https://u:***@mlflow.example/"),
        ("postgresql://me@db/mlflow", "postgresql://me@db/mlflow"),  # no password
        ("sqlite:////tmp/a:b@c/mlflow.db", "sqlite:////tmp/a:b@c/mlflow.db"),  # a path, no user
        (
            "ipwarmup train --tracking-uri http://a:b@h:5000 --set x=postgresql://c:d@e/f",
            "ipwarmup train --tracking-uri http://a:***@h:5000 --set x=postgresql://c:***@e/f",
        ),
    ],
)
def test_redact_hides_only_passwords(uri: str, shown: str) -> None:
    assert redact(uri) == shown


def test_kinds_of_uri() -> None:
    assert is_server("HTTP://x") and is_server("https://x") and not is_server("sqlite:///x")
    assert is_database("postgresql+psycopg://h/d") and is_database("sqlite:///x")
    assert not is_database("http://x") and not is_database("file:///x")


def test_a_new_sqlite_store_may_be_created_but_not_read(tmp_path: Path) -> None:
    check_tracking_store(f"sqlite:///{tmp_path}/new.db", create=True)  # nothing raised
    with pytest.raises(ConfigError, match="not found") as caught:
        check_tracking_store(f"sqlite:///{tmp_path}/new.db", create=False)
    assert not isinstance(caught.value, StoreError)
    assert list(tmp_path.iterdir()) == []
