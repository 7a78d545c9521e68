"""Past one machine: Optuna workers and an MLflow server sharing a real PostgreSQL.

The cluster and the server come from ``conftest.py`` (started once per session, on
loopback, in temporary folders). Budgets are tiny: these tests check the plumbing, not
learning.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ipwarmup.agents.registry import BASELINES
from ipwarmup.cli import main
from ipwarmup.training.tracking import Tracker
from ipwarmup.training.tune import RUN_ID_ATTR

from .conftest import PASSWORD, TINY_HORIZON_DAYS, MlflowServer, Postgres

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
SMOKE = str(REPO / "configs/experiments/smoke.yaml")


def _sets(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def test_two_tune_workers_share_one_study_without_repeating_themselves(
    postgres: Postgres, mlflow_server: MlflowServer, tiny: list[str], tmp_path: Path
) -> None:
    import optuna

    storage = postgres.create_database("optuna")
    environment = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    environment.pop("MLFLOW_TRACKING_URI", None)
    workers = []
    for seed in (1, 2):
        folder = tmp_path / f"worker{seed}"
        folder.mkdir()
        argv = [sys.executable, "-m", "ipwarmup.cli", "tune", "--config", SMOKE,
                "--trials", "1", "--seed", str(seed), "--storage", storage,
                "--tracking-uri", mlflow_server.uri, "--out", str(folder / "best.yaml"),
                *_sets([*tiny, "tracking.experiment=pg-tune",
                        f"training.output_dir={folder}"])]  # fmt: skip
        log = (folder / "log.txt").open("w")
        workers.append(
            (subprocess.Popen(argv, cwd=folder, stdout=log, stderr=log, env=environment), log)
        )
    for worker, log in workers:
        worker.wait(timeout=600)
        log.close()
    logs = [(tmp_path / f"worker{seed}" / "log.txt").read_text() for seed in (1, 2)]
    for (worker, _), text in zip(workers, logs, strict=True):
        assert worker.returncode == 0, text[-3000:]
        assert PASSWORD not in text
    assert "sampler seed: 1" in logs[0] and "sampler seed: 2" in logs[1]

    study = optuna.load_study(study_name="smoke-ppo", storage=storage)
    # Both workers asked the empty study at once: with one fixed sampler seed they proposed
    # the same parameters; with their own seeds they do not.
    assert sorted(trial.number for trial in study.trials) == [0, 1]
    params = [tuple(sorted(trial.params.items())) for trial in study.trials]
    assert len(set(params)) == 2
    assert {trial.user_attrs["sampler_seed"] for trial in study.trials} == {1, 2}

    tracker = Tracker(mlflow_server.uri, "pg-tune", create=False)
    parents = tracker.search("tags.`ipwarmup.kind` = 'tuning'")
    assert sorted(parent["params"]["sampler_seed"] for parent in parents) == ["1", "2"]
    shown = storage.replace(PASSWORD, "***")
    assert {parent["params"]["storage"] for parent in parents} == {shown}
    runs = {run["run_id"]: run for run in tracker.search("tags.`optuna.study` = 'smoke-ppo'")}
    trial_runs = {k: v for k, v in runs.items() if "optuna.trial_number" in v["tags"]}
    assert len(trial_runs) == 2
    for trial in study.trials:
        run = trial_runs[trial.user_attrs[RUN_ID_ATTR]]
        assert run["tags"]["optuna.trial_number"] == str(trial.number)
        assert run["tags"]["mlflow.parentRunId"] in {parent["run_id"] for parent in parents}
        assert trial.state == optuna.trial.TrialState.COMPLETE  # the pruner needs 2 first
        assert run["metrics"]["eval/inbox_share"] == trial.value
        assert 0.0 < run["metrics"]["kpi/inbox_share"] < 1.0
        for key, value in run["params"].items():
            assert PASSWORD not in value, key


def test_train_compare_and_export_against_an_mlflow_server_on_postgresql(
    postgres: Postgres,
    mlflow_server: MlflowServer,
    tiny: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = mlflow_server.uri
    argv = ["train", "--config", SMOKE, "--tracking-uri", uri, "--seed", "3",
            *_sets([*tiny, "tracking.experiment=pg-train",
                    f"training.output_dir={tmp_path}/runs"])]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    run_id = out.strip().splitlines()[-1].split()[1].rstrip(":")
    tracker = Tracker(uri, "pg-train", create=False)
    run = tracker.get_run(run_id)
    assert run["status"] == "FINISHED" and run["tags"]["ipwarmup.seed"] == "3"
    assert run["metrics"]["rollout/ep_len_mean"] == TINY_HORIZON_DAYS  # one decision a day
    assert {"model/model.zip", "model/vecnormalize.pkl"} <= set(
        tracker.list_artifacts(run_id, "model")
    )

    report = tmp_path / "compare.json"
    suite = run["tags"]["ipwarmup.suite"]
    argv = ["compare", "--experiment", "pg-train", "--tracking-uri", uri, "--json", str(report),
            "--suite", suite, "--plot", str(tmp_path / "compare.png")]  # fmt: skip
    assert main(argv) == 0
    rows = json.loads(report.read_text())["runs"]
    assert {row["policy"] for row in rows} == {*BASELINES, run["tags"]["ipwarmup.policy"]}
    # The same records straight from the database, as a second reader would see them.
    direct = postgres.url("mlflow")
    argv = ["compare", "--experiment", "pg-train", "--tracking-uri", direct, "--json",
            str(tmp_path / "direct.json"), "--suite", suite,
            "--plot", str(tmp_path / "direct.png")]  # fmt: skip
    assert main(argv) == 0
    assert json.loads((tmp_path / "direct.json").read_text())["runs"] == rows
    assert PASSWORD not in capsys.readouterr().out

    bundle = tmp_path / "models" / "pg"
    argv = ["export", "--run", run_id, "--out", str(bundle), "--tracking-uri", uri,
            "--experiment", "pg-train", "--registered-model", "pg-policy",
            "--champion"]  # fmt: skip
    assert main(argv) == 0
    assert capsys.readouterr().out.splitlines() == [
        "registered pg-policy version 1 as champion",
        f"bundle: {bundle}",
    ]
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["mlflow"]["run_id"] == run_id
    after = tracker.get_run(run_id)
    assert after["end_time"] == run["end_time"]


def test_a_read_only_command_leaves_an_empty_database_empty(
    postgres: Postgres, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = postgres.create_database("empty")
    argv = ["compare", "--tracking-uri", url, "--plot", str(tmp_path / "c.png")]
    assert main(argv) == 2
    shown = url.replace(PASSWORD, "***")
    assert capsys.readouterr().err == (
        f"ipwarmup: error: experiment 'ipwarmup' at tracking URI {shown}: not found (the "
        "database has no MLflow tables); no runs to compare on suite 'validation'\n"
    )
    assert postgres.tables("empty") == set()
