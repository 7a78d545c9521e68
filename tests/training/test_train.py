"""A real (short) training run into a temporary SQLite MLflow store."""

import json

import pytest

import ipwarmup.training.model_registry  # noqa: F401  # imports mlflow.pyfunc without its warning
from ipwarmup.agents.registry import BASELINES
from ipwarmup.cli import main
from ipwarmup.training.config import load_experiment
from ipwarmup.training.evaluate import load_suite, suite_inputs
from ipwarmup.training.kpis import kpi_names
from ipwarmup.training.provenance import evaluation_fingerprint
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


def _smoke(store, request, *more, seed=11):
    folder, uri = store
    overrides = [
        f"tracking.tracking_uri={uri}",
        "tracking.experiment=test-train",
        f"training.output_dir={folder}/runs",
        *([f"training.seed={seed}"] if seed is not None else []),
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
    # VecMonitor: every episode is horizon_days (45) daily decisions; returns are raw.
    assert metrics["rollout/ep_len_mean"] == 45.0
    assert -1.0e3 < metrics["rollout/ep_rew_mean"] < 1.0e3
    rollouts = tracker.metric_history(result.run_id, "rollout/ep_rew_mean")
    assert len(rollouts) >= 2
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


def test_baselines_are_logged_as_runs_of_the_same_experiment_tagged_like_it(trained):
    result, tracker = trained
    learned = tracker.get_run(result.run_id)["tags"]
    runs = tracker.search("tags.`ipwarmup.policy_kind` = 'baseline'")
    code = evaluation_fingerprint(suite_inputs(load_suite("validation")))
    assert {r["tags"]["ipwarmup.policy"] for r in runs} == set(BASELINES)
    assert len(runs) == len(BASELINES)
    for run in runs:
        tags = run["tags"]
        for key in ("ipwarmup.env_id", "ipwarmup.env_version", "ipwarmup.git_commit",
                    "ipwarmup.git_dirty", "ipwarmup.version", "ipwarmup.suite"):  # fmt: skip
            assert tags[key] == learned[key]
        assert tags["ipwarmup.seeds"] == "4" and tags["ipwarmup.eval_seed"] == "20000"
        assert tags["ipwarmup.eval_code"] == code
    # The learned run says which evaluation it had, so compare ranks it with its peers.
    assert learned["ipwarmup.seeds"] == "4" and learned["ipwarmup.eval_seed"] == "20000"


def test_the_commit_tag_comes_from_the_package_not_the_working_directory(tmp_path, monkeypatch):
    import subprocess

    from ipwarmup.training.provenance import code_version

    root = request_root()
    head = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    expected = head.stdout.strip() if head.returncode == 0 else "unknown"
    monkeypatch.chdir(tmp_path)  # not a git checkout
    assert code_version()["ipwarmup.git_commit"] == expected


def test_resume_refuses_another_seed_before_touching_the_run(store, trained, request, capsys):
    result, tracker = trained
    argv = ["train", "--config", str(request.config.rootpath / SMOKE), "--resume", result.run_id,
            "--tracking-uri", store[1], "--set", "tracking.experiment=test-train",
            "--seed", "12"]  # fmt: skip
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"ipwarmup: error: training.seed: run '{result.run_id}' was trained with seed 11, got 12;"
        " a resumed run keeps its seed (leave --seed out)\n"
    )
    assert tracker.get_run(result.run_id)["tags"]["ipwarmup.seed"] == "11"


def test_resume_continues_the_same_run_with_its_seed_from_its_checkpoint(store, trained, request):
    result, tracker = trained
    config = _smoke(store, request, "training.total_timesteps=37800", seed=None)
    assert config.training.seed is None
    resumed = train(config, resume_run_id=result.run_id)
    assert resumed.run_id == result.run_id and resumed.seed == 11
    history = tracker.metric_history(result.run_id, "eval/inbox_share")
    assert [step for step, _ in history][-1] == 37800
    run = tracker.get_run(result.run_id)
    assert run["status"] == "FINISHED"
    assert run["tags"]["ipwarmup.seed"] == "11" and run["params"]["seed"] == "11"
    # The final evaluation ran again on the same evaluation code, suite and seeds: its
    # baseline runs are reused, committed tree or not.
    baselines = tracker.search("tags.`ipwarmup.policy_kind` = 'baseline'")
    assert len(baselines) == len(BASELINES)


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
        assert set(row) == {"run_id", "name", "policy", "seeds", "eval_seed", "kpis"}
        assert (row["seeds"], row["eval_seed"]) == (4, 20000)
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
        (["training.scenarios=[low_volume]"], "training.world: expected either a world or"),
        (["training.world=defualt"], "unknown world 'defualt'; did you mean 'default'"),
    ],
)
def test_config_errors_exit_2_with_one_line(overrides, message, capsys, request):
    argv = ["train", "--config", str(request.config.rootpath / SMOKE)]
    for item in overrides:
        argv += ["--set", item]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_export_from_a_run_logs_registers_and_crowns_a_pyfunc(store, trained, tmp_path, capfd):
    import mlflow
    import pandas as pd
    from fastapi.testclient import TestClient
    from mlflow.exceptions import MlflowException
    from mlflow.pyfunc import scoring_server

    from ipwarmup.serving import load_policy

    _, uri = store
    result, tracker = trained
    before = tracker.get_run(result.run_id)
    out = tmp_path / "models" / "exported"
    argv = [
        "export", "--run", result.run_id, "--out", str(out), "--tracking-uri", uri,
        "--experiment", "test-train", "--registered-model", "test-policy", "--champion",
    ]  # fmt: skip
    capfd.readouterr()
    assert main(argv) == 0
    printed = capfd.readouterr()
    # Quiet: no download bars, no cloudpickle advice; just what export made.
    assert printed.err == ""
    assert printed.out.splitlines() == [
        "registered test-policy version 1 as champion",
        f"bundle: {out}",
    ]
    after = tracker.get_run(result.run_id)
    assert (after["start_time"], after["end_time"]) == (before["start_time"], before["end_time"])
    policy = load_policy(out)
    manifest = policy.manifest
    assert manifest["mlflow"]["run_id"] == result.run_id
    assert set(manifest["mlflow"]["kpis"]) == set(kpi_names())
    assert "## Against every baseline" in (out / "README.md").read_text()
    version = tracker.client.get_model_version_by_alias("test-policy", "champion")
    assert version.run_id == result.run_id
    model = mlflow.pyfunc.load_model("models:/test-policy@champion")
    record = (request_root() / "examples" / "telemetry.json").read_text()
    decisions = model.predict(pd.DataFrame({"telemetry": [record]}))["decision"]
    assert json.loads(decisions[0]) == policy.decide(json.loads(record))
    with pytest.raises(MlflowException, match=r"telemetry row 1: invalid telemetry: ") as caught:
        model.predict(pd.DataFrame({"telemetry": [record, "{}"]}))
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert tracker.get_run(result.run_id)["status"] == "FINISHED"
    # MLflow's own scoring server (what `mlflow models serve` runs) answers 400, then 200.
    with TestClient(scoring_server.init(model)) as client:
        bad = client.post("/invocations", json={"dataframe_records": [{"telemetry": "{}"}]})
        good = client.post("/invocations", json={"dataframe_records": [{"telemetry": record}]})
    assert bad.status_code == 400
    assert bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "telemetry row 0: invalid telemetry: telemetry." in bad.json()["message"]
    assert good.status_code == 200
    assert json.loads(good.json()["predictions"][0]["decision"]) == json.loads(decisions[0])


def request_root():
    from pathlib import Path

    return Path(__file__).resolve().parents[2]
