"""A real (short) training run into a temporary SQLite MLflow store."""

import json

import pytest

from ipwarmup.agents.registry import BASELINES
from ipwarmup.cli import main
from ipwarmup.training.config import load_experiment
from ipwarmup.training.kpis import kpi_names
from ipwarmup.training.tracking import Tracker
from ipwarmup.training.train import train

pytestmark = pytest.mark.slow

SMOKE = "configs/experiments/smoke.yaml"


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    return folder, f"sqlite:///{folder}/mlflow.db"


@pytest.fixture(scope="module")
def trained(store, request):
    return train(_smoke(store, request), command="pytest smoke"), Tracker(store[1], "test-train")


def _smoke(store, request, *more):
    folder, uri = store
    overrides = [
        f"tracking.tracking_uri={uri}",
        "tracking.experiment=test-train",
        f"training.output_dir={folder}/runs",
        "training.seed=11",
        *more,
    ]
    return load_experiment(request.config.rootpath / SMOKE, overrides)


def test_run_logs_params_tags_metrics_and_artifacts(trained):
    result, tracker = trained
    run = tracker.get_run(result.run_id)
    assert run["status"] == "FINISHED"
    assert run["params"]["algorithm.name"] == "PPO"
    assert run["params"]["training.total_timesteps"] == "25200"
    assert run["params"]["hp.n_steps"] == "45"
    assert run["params"]["seed"] == "11"
    for tag in ("ipwarmup.git_commit", "ipwarmup.version", "ipwarmup.env_id", "ipwarmup.algorithm"):
        assert run["tags"][tag]
    assert run["tags"]["ipwarmup.env_id"] == "ipwarmup/IPWarmup-v0"
    metrics = run["metrics"]
    assert any(key.startswith("train/") for key in metrics)  # SB3's own logger output
    assert any(key.startswith("rollout/") or key.startswith("time/") for key in metrics)
    for kpi in kpi_names():
        assert f"kpi/{kpi}" in metrics
        assert (
            metrics[f"kpi/{kpi}/ci_low"] <= metrics[f"kpi/{kpi}"] <= metrics[f"kpi/{kpi}/ci_high"]
        )
    assert "eval/inbox_share" in metrics
    history = tracker.metric_history(result.run_id, "eval/inbox_share")
    assert [step for step, _ in history] == [0, 12600, 25200]  # 0: the behaviour clone
    artifacts = set(tracker.list_artifacts(result.run_id))
    assert {"config", "evaluation", "model", "checkpoints"} <= {a.split("/")[0] for a in artifacts}
    assert {"model/model.zip", "model/vecnormalize.pkl"} <= set(
        tracker.list_artifacts(result.run_id, "model")
    )
    assert "config/resolved.yaml" in tracker.list_artifacts(result.run_id, "config")
    report = result.report
    assert set(BASELINES) <= set(report["overall"])
    assert json.dumps(report)


def test_baselines_are_logged_as_runs_of_the_same_experiment(trained):
    _, tracker = trained
    runs = tracker.search("tags.`ipwarmup.policy_kind` = 'baseline'")
    assert {r["tags"]["ipwarmup.policy"] for r in runs} == set(BASELINES)


def test_resume_continues_the_same_run_from_its_checkpoint(store, trained, request):
    result, tracker = trained
    config = _smoke(store, request, "training.total_timesteps=37800")
    resumed = train(config, resume_run_id=result.run_id)
    assert resumed.run_id == result.run_id
    history = tracker.metric_history(result.run_id, "eval/inbox_share")
    assert [step for step, _ in history][-1] == 37800
    assert tracker.get_run(result.run_id)["status"] == "FINISHED"


def test_compare_reads_learned_and_baseline_runs(store, trained, tmp_path, capsys):
    _, uri = store
    out = tmp_path / "compare.json"
    code = main(
        ["compare", "--experiment", "test-train", "--tracking-uri", uri, "--json", str(out),
         "--plot", str(tmp_path / "compare.png")]
    )  # fmt: skip
    assert code == 0
    data = json.loads(out.read_text())
    kinds = {row["policy"] for row in data["runs"]}
    assert set(BASELINES) <= kinds
    assert len(data["runs"]) == len(BASELINES) + 1
    for row in data["runs"]:
        assert set(row) == {"run_id", "name", "policy", "kpis"}
        assert set(row["kpis"]["inbox_share"]) == {"mean", "ci_low", "ci_high"}
    means = [row["kpis"]["inbox_share"]["mean"] for row in data["runs"]]
    assert means == sorted(means, reverse=True)
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["training.n_env=3"], "did you mean 'n_envs'"),
        (["hyperparameters.learnin_rate=1.0e-3"], "did you mean 'learning_rate'"),
        (["hyperparameters.learning_rate=3e-4"], "write 3.0e-4"),
        (["algorithm.name=DQN"], "algorithm.name"),
    ],
)
def test_config_errors_exit_2_with_one_line(overrides, message, capsys, request):
    argv = ["train", "--config", str(request.config.rootpath / SMOKE)]
    for item in overrides:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_export_from_a_run_logs_registers_and_crowns_a_pyfunc(store, trained, tmp_path, capsys):
    import mlflow
    import pandas as pd

    from ipwarmup.serving import load_policy

    _, uri = store
    result, tracker = trained
    out = tmp_path / "models" / "exported"
    argv = [
        "export", "--run", result.run_id, "--out", str(out), "--tracking-uri", uri,
        "--experiment", "test-train", "--registered-model", "test-policy", "--champion",
    ]  # fmt: skip
    assert main(argv) == 0
    policy = load_policy(out)
    manifest = policy.manifest
    assert manifest["mlflow"]["run_id"] == result.run_id
    assert set(manifest["mlflow"]["kpis"]) == set(kpi_names())
    assert "## Against every baseline" in (out / "README.md").read_text()
    version = tracker.client.get_model_version_by_alias("test-policy", "champion")
    assert version.run_id == result.run_id
    model = mlflow.pyfunc.load_model("models:/test-policy@champion")
    record = (request_root() / "examples" / "telemetry.json").read_text()
    decisions = model.predict(pd.DataFrame({"telemetry": [record, "{}"]}))["decision"]
    assert json.loads(decisions[0]) == policy.decide(json.loads(record))
    assert json.loads(decisions[1])["error"] == "invalid telemetry"
    assert tracker.get_run(result.run_id)["status"] == "FINISHED"


def request_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
