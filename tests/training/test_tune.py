"""A real (tiny) Optuna study: trials are nested MLflow runs; the best config trains."""

import pytest
import yaml

from ipwarmup.cli import main
from ipwarmup.training.config import load_experiment
from ipwarmup.training.tracking import Tracker

pytestmark = pytest.mark.slow


def test_tune_runs_nested_trials_and_writes_a_config_train_takes(tmp_path, request, monkeypatch):
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    out = tmp_path / "best.yaml"
    argv = [
        "tune",
        "--config", str(request.config.rootpath / "configs/experiments/smoke.yaml"),
        "--trials", "2",
        "--storage", f"sqlite:///{tmp_path}/optuna.db",
        "--out", str(out),
        "--tracking-uri", uri,
        "--set", "training.total_timesteps=1260",
        "--set", "training.eval_freq=630",
        "--set", "training.checkpoint_freq=630",
        "--set", "training.pretrain_episodes=2",
        "--set", "training.pretrain_epochs=1",
        "--set", f"training.output_dir={tmp_path}/runs",
    ]  # fmt: skip
    assert main(argv) == 0
    config = load_experiment(out)
    hyperparameters = config.hyperparameters
    assert config.name == "smoke-tuned"
    assert {"learning_rate", "gamma", "policy_kwargs"} <= set(hyperparameters)
    header = out.read_text().splitlines()[0]
    assert header.startswith("# Best of 2 Optuna trials")
    tracker = Tracker(uri, "ipwarmup")
    parents = tracker.search("tags.`ipwarmup.kind` = 'tuning'")
    assert len(parents) == 1
    children = tracker.search(f"tags.`mlflow.parentRunId` = '{parents[0]['run_id']}'")
    assert len(children) == 2
    assert all("eval/inbox_share" in child["metrics"] for child in children)
    assert yaml.safe_load(out.read_text())["hyperparameters"] == hyperparameters


def test_tune_rejects_zero_trials(capsys, request):
    argv = ["tune", "--config", str(request.config.rootpath / "configs/experiments/smoke.yaml"),
            "--trials", "0"]  # fmt: skip
    assert main(argv) == 2
    assert "--trials: expected at least 1, got 0" in capsys.readouterr().err
