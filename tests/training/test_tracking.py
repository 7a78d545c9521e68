"""MLflow tracking through ipwarmup.training.tracking, against a real SQLite store."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")  # before MLflow is imported

import numpy as np
import pytest
from stable_baselines3.common.logger import Logger

from ipwarmup.errors import ConfigError
from ipwarmup.training.run_logging import SB3MLflowOutput
from ipwarmup.training.tracking import (
    DEFAULT_EXPERIMENT,
    Tracker,
    artifact_root,
    tracking_uri,
)

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One SQLite store for the module: creating its tables takes about a second."""
    return tmp_path_factory.mktemp("store")


@pytest.fixture
def tracker(
    store: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tracker]:
    monkeypatch.chdir(store)
    # Tracker sets MLFLOW_TRACKING_URI (MLflow does, for subprocesses); undo it afterwards.
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    yield Tracker(f"sqlite:///{store}/mlflow.db", experiment=request.node.name)


def test_params_metrics_tags_and_artifacts_round_trip(tracker: Tracker, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    folder = tmp_path / "model"
    (folder / "sub").mkdir(parents=True)
    (folder / "weights.bin").write_bytes(b"\x00\x01")
    (folder / "sub" / "meta.json").write_text("{}")
    params = {f"group.p{i:03d}": i for i in range(250)}  # three log_batch requests
    params["long"] = "x" * 7000
    params["flag"] = True
    with tracker.start("round-trip", tags={"ipwarmup.suite": "validation"}) as run:
        run.log_params(params)
        run.log_metrics({"train/loss": 0.5, "time/fps": 120}, step=7)
        run.set_tags({"stage": "done"})
        run.log_artifact(tmp_path / "notes.txt")
        run.log_artifacts(folder, "model")
        run.log_dict({"a": [1, 2]}, "config/data.json")
        run.log_text("line\n", "config/command.txt")
    got = tracker.get_run(run.run_id)
    assert got["status"] == "FINISHED" and got["run_name"] == "round-trip"
    assert got["params"]["group.p249"] == "249" and got["params"]["flag"] == "True"
    assert got["params"]["long"] == "x" * 6000  # MLflow's limit on a param value
    assert len(got["params"]) == 252
    assert got["metrics"] == {"train/loss": 0.5, "time/fps": 120.0}
    assert got["tags"]["stage"] == "done" and got["tags"]["ipwarmup.suite"] == "validation"
    assert tracker.list_artifacts(run.run_id) == [
        "config/command.txt",
        "config/data.json",
        "model/sub/meta.json",
        "model/weights.bin",
        "notes.txt",
    ]
    assert tracker.list_artifacts(run.run_id, "model/sub") == ["model/sub/meta.json"]
    assert got["artifact_uri"] == run.artifact_uri
    assert run.artifact_uri.startswith(artifact_root(tracker.uri))
    back = run.download_artifacts("model", tmp_path / "down")
    assert (back / "weights.bin").read_bytes() == b"\x00\x01"
    data = json.loads(run.download_artifacts("config/data.json", tmp_path / "d2").read_text())
    assert data == {"a": [1, 2]}
    text = tracker.download_artifacts(run.run_id, "config/command.txt", tmp_path / "d3")
    assert text.read_text() == "line\n"


def test_a_param_cannot_silently_change_value(tracker: Tracker) -> None:
    with tracker.start("params") as run:
        run.log_params({"a": 1, "b": "x"})
        run.log_params({"a": 1})  # the same value again is fine
        with pytest.raises(ConfigError, match=r"param a: .* has '1', got '2'"):
            run.log_params({"a": 2, "c": 3})
    assert tracker.get_run(run.run_id)["params"] == {"a": "1", "b": "x"}


def test_metrics_are_buffered_flushed_in_chunks_and_all_there_at_the_end(
    tracker: Tracker,
) -> None:
    with tracker.start("buffered") as run:
        assert run.flush_every == 500
        run.log_metrics({f"m/{i}": float(i) for i in range(300)}, step=0)
        assert tracker.metric_history(run.run_id, "m/0") == []  # still buffered
        run.log_metrics({f"m/{i}": float(i) + 1 for i in range(300)}, step=1)  # 600 > 500
        assert tracker.metric_history(run.run_id, "m/0") == [(0, 0.0), (1, 1.0)]
        # 1,200 at once: more than MLflow takes in one request, so it goes in two.
        run.log_metrics({f"m/{i}": float(i) + 2 for i in range(1200)}, step=2)
        run.log_metrics({f"m/{i}": float(i) + 3 for i in range(10)}, step=3)
    assert tracker.metric_history(run.run_id, "m/0") == [(0, 0.0), (1, 1.0), (2, 2.0), (3, 3.0)]
    assert tracker.metric_history(run.run_id, "m/299") == [(0, 299.0), (1, 300.0), (2, 301.0)]
    assert tracker.metric_history(run.run_id, "m/1199") == [(2, 1201.0)]
    assert len(tracker.get_run(run.run_id)["metrics"]) == 1200


def test_nan_and_infinite_values_are_skipped(tracker: Tracker) -> None:
    with tracker.start("nan") as run:
        values = {"a": math.nan, "b": math.inf, "c": -math.inf, "d": 1.5, "e": np.float32(2)}
        run.log_metrics(values, step=0)
    assert tracker.get_run(run.run_id)["metrics"] == {"d": 1.5, "e": 2.0}


@pytest.mark.parametrize("error", [ValueError, KeyboardInterrupt])
def test_a_run_whose_body_raises_ends_failed_with_its_metrics(
    tracker: Tracker, error: type[BaseException]
) -> None:
    with pytest.raises(error, match="boom"), tracker.start("crash") as run:
        run.log_metrics({"train/loss": 0.25}, step=10)  # buffered, not yet written
        raise error("boom")
    got = tracker.get_run(run.run_id)
    assert got["status"] == "FAILED"
    assert tracker.metric_history(run.run_id, "train/loss") == [(10, 0.25)]


def test_resume_reopens_the_same_run_and_ends_it_finished(tracker: Tracker) -> None:
    with pytest.raises(ValueError), tracker.start("resumable", tags={"k": "v"}) as run:
        run.log_params({"lr": 0.001})
        run.log_metrics({"train/loss": 1.0}, step=0)
        raise ValueError("crash")
    assert tracker.get_run(run.run_id)["status"] == "FAILED"
    with tracker.start("ignored", resume_run_id=run.run_id, tags={"resumed": "yes"}) as again:
        assert again.run_id == run.run_id
        assert tracker.get_run(run.run_id)["status"] == "RUNNING"
        again.log_params({"lr": 0.001})  # the config again, unchanged
        again.log_metrics({"train/loss": 0.5}, step=1)
    got = tracker.get_run(run.run_id)
    assert got["status"] == "FINISHED" and got["run_name"] == "resumable"
    assert got["tags"]["k"] == "v" and got["tags"]["resumed"] == "yes"
    assert tracker.metric_history(run.run_id, "train/loss") == [(0, 1.0), (1, 0.5)]
    assert len(tracker.search()) == 1  # no second run


def test_unknown_run_ids_are_config_errors_naming_them(tracker: Tracker) -> None:
    with pytest.raises(ConfigError, match="resume_run_id: no run 'deadbeef0123'"):
        tracker.start("x", resume_run_id="deadbeef0123")
    with pytest.raises(ConfigError, match="parent_run_id: no run 'cafe0123'"):
        tracker.start("x", parent_run_id="cafe0123")
    with pytest.raises(ConfigError, match="run_id: no run 'abc'"):
        tracker.get_run("abc")
    assert tracker.search() == []


def test_a_nested_run_carries_its_parent_tag(tracker: Tracker) -> None:
    with (
        tracker.start("study") as parent,
        tracker.start("trial", parent_run_id=parent.run_id) as child,
    ):
        pass
    tags = tracker.get_run(child.run_id)["tags"]
    assert tags["mlflow.parentRunId"] == parent.run_id
    found = tracker.search(f"tags.`mlflow.parentRunId` = '{parent.run_id}'")
    assert [r["run_id"] for r in found] == [child.run_id]


def test_sb3_output_logs_numeric_scalars_not_excluded_for_mlflow(tracker: Tracker) -> None:
    with tracker.start("sb3") as run:
        logger = Logger(folder=None, output_formats=[SB3MLflowOutput(run)])
        logger.record("rollout/ep_rew_mean", np.float32(1.5))
        logger.record("train/loss", 0.25)
        logger.record("time/fps", 321)
        logger.record("train/tb_only", 7.0, exclude=("stdout", "tensorboard"))
        logger.record("train/hidden", 3.0, exclude="mlflow")
        logger.record("train/also_hidden", 4.0, exclude=("csv", "mlflow"))
        logger.record("info/label", "a string")
        logger.record("train/histogram", np.arange(3.0))
        logger.record("train/flag", True)
        logger.dump(step=3)
        logger.close()
        assert tracker.metric_history(run.run_id, "train/loss") == [(3, 0.25)]  # close flushed
    metrics = tracker.get_run(run.run_id)["metrics"]
    assert metrics == {
        "rollout/ep_rew_mean": 1.5,
        "train/loss": 0.25,
        "time/fps": 321.0,
        "train/tb_only": 7.0,
    }
    for key in metrics:
        assert [step for step, _ in tracker.metric_history(run.run_id, key)] == [3]


def test_tracking_uri_explicit_beats_env_beats_cwd_sqlite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    default = f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    assert default.startswith("sqlite:////")  # an absolute path
    assert tracking_uri() == default
    assert tracking_uri("") == default
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert tracking_uri() == "http://tracking.example:5000"
    assert tracking_uri("sqlite:///other.db") == "sqlite:///other.db"
    assert artifact_root() == (Path.cwd() / "mlartifacts").as_uri()
    assert artifact_root("sqlite:////data/x/mlflow.db") == "file:///data/x/mlartifacts"


def test_the_default_store_and_artifacts_land_in_the_working_directory(
    store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tracker_in_store = Tracker(f"sqlite:///{store}/mlflow.db", "unused")  # tables made once
    shutil.copy(Path(tracker_in_store.uri.removeprefix("sqlite:///")), tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    tracker = Tracker()
    assert tracker.uri == f"sqlite:///{Path.cwd() / 'mlflow.db'}"
    assert tracker.experiment == DEFAULT_EXPERIMENT
    assert tracker.artifact_location == (Path.cwd() / "mlartifacts").as_uri()
    with tracker.start("artifacts") as run:
        run.log_text("x", "a.txt")
    assert run.artifact_uri.startswith((Path.cwd() / "mlartifacts").as_uri() + "/")
    assert list((tmp_path / "mlartifacts").rglob("a.txt"))
    assert not (tmp_path / "mlruns").exists()
    again = Tracker(f"sqlite:///{tmp_path}/mlflow.db", DEFAULT_EXPERIMENT)
    assert again.experiment_id == tracker.experiment_id
    assert again.get_run(run.run_id)["status"] == "FINISHED"


def test_a_missing_experiment_or_store_is_not_created_when_asked_not_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(ConfigError, match=r"experiment 'nope' at tracking URI sqlite:.*not found"):
        Tracker(experiment="nope", create=False)
    assert not (tmp_path / "mlflow.db").exists()


def test_only_the_tracking_modules_import_mlflow() -> None:
    pattern = re.compile(r"^\s*(import mlflow|from mlflow[\s.])", re.MULTILINE)
    importers = sorted(
        path.relative_to(REPO).as_posix()
        for folder in ("core", "envs", "agents", "training", "serving")
        for path in (REPO / folder).rglob("*.py")
        if pattern.search(path.read_text())
    )
    assert importers == [
        "training/model_registry.py",
        "training/tracked_run.py",
        "training/tracking.py",
    ]
