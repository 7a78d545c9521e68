import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils import seeding
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

from ipwarmup.agents.learned import LearnedPolicy
from ipwarmup.envs import build_config, make_vec_env
from ipwarmup.envs.simulator import Simulator
from ipwarmup.errors import BundleError, TelemetryError
from ipwarmup.serving import load_policy
from ipwarmup.training.evaluate import evaluate, load_suite
from ipwarmup.training.export import build_manifest, export_model, network_layers, write_bundle
from tests.serving.conftest import LAST_PERIOD

EXAMPLE = Path(__file__).parents[2] / "examples" / "telemetry-v1.json"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("model")
    # The last period alone (schema-1 records); tests/serving/test_memory.py holds the
    # default layout's bundle to the same parity.
    scenario, overrides = "steady_b2c_transactional", LAST_PERIOD
    env = VecNormalize(make_vec_env(scenario=scenario, overrides=overrides, n_envs=4, seed=0))
    model = PPO("MlpPolicy", env, n_steps=45, batch_size=180, seed=0, device="cpu")
    model.learn(360)
    model.save(folder / "model.zip")
    env.save(str(folder / "vecnormalize.pkl"))
    config = build_config(scenario=scenario, overrides=overrides)
    bundle = export_model(folder, folder / "bundle", config, name="test")
    return model, env, config, bundle


def _copy(bundle, tmp_path):
    target = tmp_path / "copy"
    shutil.copytree(bundle, target)
    return target


def test_bundle_matches_sb3_predict_on_random_observations(trained):
    model, env, _, bundle = trained
    policy = load_policy(bundle)
    space = env.observation_space
    obs = np.random.default_rng(0).uniform(space.low, space.high, (10_000, space.shape[0]))
    obs = obs.astype(np.float32)
    ours, _ = policy.predict(obs)
    theirs, _ = model.predict(env.normalize_obs(obs), deterministic=True)
    assert np.abs(ours - theirs).max() < 1e-5


def test_bundle_matches_sb3_predict_along_a_seeded_episode(trained):
    model, env, config, bundle = trained
    policy = load_policy(bundle)
    learned = LearnedPolicy(config, model, env, "sb3")
    sim = Simulator(config, 1)
    obs = sim.reset(np.array([0]), [seeding.np_random(5)[0]])
    worst = 0.0
    for _ in range(config.steps_per_episode):
        ours, _ = policy.predict(obs)
        theirs, _ = learned.predict(obs)
        worst = max(worst, float(np.abs(ours - theirs).max()))
        obs = sim.step(theirs).observation
    assert worst < 1e-5


def test_the_harness_scores_a_bundle_like_the_model_it_came_from(trained):
    model, env, _, bundle = trained
    suite = load_suite("validation")
    served = load_policy(bundle)
    result = evaluate(
        ["bundle", "sb3"],
        suite,
        seeds=2,
        overrides=["horizon_days=6", *LAST_PERIOD],
        factories={
            "bundle": lambda config: served,
            "sb3": lambda config: LearnedPolicy(config, model, env, "sb3"),
        },
    )
    for entry in suite.entries:
        a, b = result.scores["bundle"][entry.name], result.scores["sb3"][entry.name]
        np.testing.assert_allclose(a["inbox_share"], b["inbox_share"], rtol=1e-6)


def test_decide_returns_caps_pool_and_reasons(trained):
    policy = load_policy(trained[3])
    decision = policy.decide(json.loads(EXAMPLE.read_text()))
    assert set(decision["providers"]) == set(policy.providers)
    for entry in decision["providers"].values():
        assert entry["dedicated_cap_per_hour"] >= 0 and entry["reasons"]
    assert decision["pool"]["action"] in ("grow", "hold", "shrink")
    assert decision["fallback"] is None


def test_guardrails_cut_on_blocks_and_complaints_and_keep_low_volume_shared(trained):
    policy = load_policy(trained[3])
    record = json.loads(EXAMPLE.read_text())
    yahoo = record["providers"]["yahoo"]
    yahoo["rejected"] = 10.0
    yahoo["sent_dedicated"] = yahoo["accepted"] + yahoo["deferred"] + 10.0
    gmail = record["providers"]["gmail"]
    gmail["complaints"] = gmail["accepted"] * 0.01
    decision = policy.decide(record)
    assert "block:yahoo" in decision["guardrails"]
    assert decision["providers"]["yahoo"]["change"] <= 0.5 + 1e-9
    assert "complaints:gmail" in decision["guardrails"]
    assert decision["providers"]["gmail"]["change"] <= 0.5 + 1e-9
    small = json.loads(EXAMPLE.read_text())
    for entry in small["providers"].values():
        for key in ("demand", "sent_shared", "sent_dedicated", "accepted", "deferred"):
            entry[key] = 0.0
        entry["bounced"] = entry["complaints"] = entry["rejected"] = 0.0
    small["providers"]["gmail"]["demand"] = 100.0
    decision = policy.decide(small)
    assert "low_volume" in decision["guardrails"]
    assert decision["pool"]["action"] == "shrink"


def test_a_broken_network_falls_back_to_aimd(trained, tmp_path):
    model, env, config, _ = trained
    layers, arrays = network_layers(model)
    # Finite weights (NaN ones are refused at load) whose output overflows to infinity.
    arrays["layer2.weight"] = np.full_like(arrays["layer2.weight"], 1e308)
    manifest = build_manifest("broken", config, env, layers)
    bundle = write_bundle(tmp_path / "broken", manifest, arrays)
    decision = load_policy(bundle).decide(json.loads(EXAMPLE.read_text()))
    assert decision["fallback"] and "not finite" in decision["fallback"]
    assert all(e["reasons"][0].startswith("aimd") for e in decision["providers"].values())


def test_bad_telemetry_is_refused_with_every_field_named(trained):
    policy = load_policy(trained[3])
    record = json.loads(EXAMPLE.read_text())
    record["providers"]["gmail"]["deferred"] = -3
    del record["providers"]["apple"]
    with pytest.raises(TelemetryError) as error:
        policy.decide(record)
    assert (
        "telemetry.providers.gmail.deferred: expected a count >= 0, got -3" in error.value.problems
    )
    assert "telemetry.providers.apple: missing" in error.value.problems


def test_tampered_truncated_and_incompatible_bundles_are_refused(trained, tmp_path):
    bundle = trained[3]
    tampered = _copy(bundle, tmp_path / "a")
    with np.load(tampered / "weights.npz") as archive:
        arrays = dict(archive)
    arrays["layer0.bias"] = arrays["layer0.bias"] + 1.0
    np.savez(tampered / "weights.npz", **arrays)
    with pytest.raises(BundleError, match=r"SHA-256 .* does not match"):
        load_policy(tampered)
    truncated = _copy(bundle, tmp_path / "b")
    data = (truncated / "weights.npz").read_bytes()
    (truncated / "weights.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match="changed or truncated"):
        load_policy(truncated)
    incompatible = _copy(bundle, tmp_path / "c")
    manifest = json.loads((incompatible / "manifest.json").read_text())
    manifest["env"]["version"] = 0
    (incompatible / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="trained on ipwarmup/IPWarmup-v0 v0"):
        load_policy(incompatible)
    future = _copy(bundle, tmp_path / "d")
    manifest = json.loads((future / "manifest.json").read_text())
    manifest["format_version"] = 3
    (future / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BundleError, match="format 3 is not supported"):
        load_policy(future)
    with pytest.raises(BundleError, match=r"manifest\.json: missing"):
        load_policy(tmp_path / "nowhere")


def test_the_bundle_holds_no_pickle(trained):
    bundle = trained[3]
    with np.load(bundle / "weights.npz", allow_pickle=False) as archive:
        assert all(archive[name].dtype.kind == "f" for name in archive.files)
    manifest = json.loads((bundle / "manifest.json").read_text())
    listed = set(manifest["files"]) | {"manifest.json", "bundle.sha256"}
    assert listed == {p.name for p in bundle.iterdir()}


def test_serving_imports_neither_torch_sb3_mlflow_nor_gymnasium():
    code = (
        "import sys, ipwarmup.serving; "
        "print([m for m in ('torch', 'stable_baselines3', 'mlflow', 'gymnasium') "
        "if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
