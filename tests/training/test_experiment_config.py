"""The experiment config: zoo-format presets, hyperparameters inside it, rollout checks."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from ipwarmup.config import load, load_yaml, to_dict
from ipwarmup.errors import ConfigError
from ipwarmup.training.config import ExperimentConfig, load_experiment
from ipwarmup.training.presets import algorithm_class, preset_path, split_preset

ROOT = Path(__file__).resolve().parents[2]
ALGORITHMS = ("PPO", "SAC", "RecurrentPPO")
# What rl_zoo3's ExperimentManager pops from a block before the rest goes to the algorithm
# (read_hyperparameters, _preprocess_hyperparams, _preprocess_normalization in 2.9.2);
# policy is passed to the algorithm as its first argument.
ZOO_POPPED = {"n_timesteps", "n_envs", "normalize"}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_preset_reads_as_rl_zoo3_reads_it(algorithm: str) -> None:
    presets = load_yaml(preset_path(algorithm))
    assert "default" in presets  # the block the zoo takes for an env id it does not list
    parameters = inspect.signature(algorithm_class(algorithm).__init__).parameters
    for name, block in presets.items():
        assert isinstance(block["n_timesteps"], int), name  # the zoo does int(n_timesteps)
        assert block["policy"] in algorithm_class(algorithm).policy_aliases, name
        assert block["normalize"] is True, name
        sb3 = set(block) - ZOO_POPPED - {"policy"}
        assert sb3 <= set(parameters), (name, sb3 - set(parameters))
        assert not any(isinstance(v, str) for k, v in block.items() if k != "policy"), (
            "strings are eval'd by the zoo for some keys; write YAML values"
        )


def test_shipped_experiments_take_budget_envs_and_policy_from_their_preset() -> None:
    smoke = load_experiment(ROOT / "configs/experiments/smoke.yaml")
    assert (smoke.training.total_timesteps, smoke.training.n_envs) == (25200, 14)
    assert smoke.algorithm.policy == "MlpPolicy"
    assert smoke.hyperparameters == {
        "n_steps": 45,
        "batch_size": 630,
        "n_epochs": 4,
        "learning_rate": 3.0e-4,
        "policy_kwargs": {"net_arch": [32, 32]},
    }
    ppo = load_experiment(ROOT / "configs/experiments/ppo.yaml")
    # n_envs from the preset; ppo.yaml cuts the preset's 2M steps to 400k (DAgger first).
    assert (ppo.training.total_timesteps, ppo.training.n_envs) == (400_000, 70)
    sac = load_experiment(ROOT / "configs/experiments/sac.yaml")
    assert (sac.training.total_timesteps, sac.training.n_envs) == (200_000, 14)
    assert "n_steps" not in sac.hyperparameters
    lstm = load_experiment(ROOT / "configs/experiments/ppo.yaml", ["algorithm.name=RecurrentPPO"])
    assert lstm.algorithm.policy == "MlpLstmPolicy"  # RecurrentPPO has no MlpPolicy


def test_the_experiment_and_set_override_the_preset() -> None:
    config = load_experiment(
        ROOT / "configs/experiments/smoke.yaml",
        ["training.n_envs=28", "hyperparameters.n_epochs=2", "training.norm_reward=false"],
    )
    assert config.training.n_envs == 28
    assert config.hyperparameters["n_epochs"] == 2
    assert config.hyperparameters["batch_size"] == 630  # the preset's, kept
    assert config.training.norm_reward is False


def test_the_default_experiment_is_the_ppo_default_preset_and_round_trips() -> None:
    config = ExperimentConfig()
    assert config.hyperparameters == load_experiment(None).hyperparameters
    assert load(ExperimentConfig, to_dict(config)) == config
    shipped = load_experiment(ROOT / "configs/experiments/smoke.yaml")
    assert load(ExperimentConfig, to_dict(shipped)) == shipped


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            ["hyperparameters.n_steps=30"],
            "experiment.hyperparameters.n_steps: expected a multiple of the 45 steps of an "
            "episode (env.horizon_days 45 x 1 decision a day), got 30: every env starts its "
            "episode together, so each update would see part of the warmup only; set "
            "hyperparameters.n_steps=45",
        ),
        (
            ["env.decision_interval_hours=12"],
            "experiment.hyperparameters.n_steps: expected a multiple of the 90 steps of an "
            "episode (env.horizon_days 45 x 2 decisions a day), got 45: every env starts its "
            "episode together, so each update would see part of the warmup only; set "
            "hyperparameters.n_steps=90",
        ),
        (
            ["hyperparameters.batch_size=600"],
            "experiment.hyperparameters.batch_size: expected a divisor of the rollout's "
            "n_steps x training.n_envs = 45 x 14 = 630 transitions, got 600; set "
            "hyperparameters.batch_size=315 (2 minibatches) or "
            "hyperparameters.batch_size=630 (1 minibatch) or training.n_envs=40",
        ),
        (
            ["training.n_envs=16"],
            "experiment.hyperparameters.batch_size: expected a divisor of the rollout's "
            "n_steps x training.n_envs = 45 x 16 = 720 transitions, got 630; set "
            "hyperparameters.batch_size=360 (2 minibatches) or "
            "hyperparameters.batch_size=720 (1 minibatch) or training.n_envs=28",
        ),
        (
            ["hyperparameters.batch_size=1"],
            "experiment.hyperparameters.batch_size: expected at least 2 (SB3 normalises "
            "advantages within a minibatch), got 1",
        ),
    ],
)
def test_a_rollout_that_does_not_fit_says_the_fix(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_experiment(ROOT / "configs/experiments/smoke.yaml", overrides)
    assert str(error.value) == message


def test_the_suggested_fixes_load() -> None:
    for fix in (
        ["hyperparameters.batch_size=315"],
        ["training.n_envs=40", "hyperparameters.batch_size=600"],
        ["training.n_envs=28", "hyperparameters.batch_size=630"],
        ["env.decision_interval_hours=12", "hyperparameters.n_steps=90"],
    ):
        load_experiment(ROOT / "configs/experiments/smoke.yaml", fix)


def test_zoo_keys_ipwarmup_cannot_honour_are_refused_together() -> None:
    with pytest.raises(ConfigError) as error:
        split_preset({"normalize": {"norm_obs": False}, "frame_stack": 4}, where="x.yaml:default")
    assert error.value.problems == [
        "x.yaml:default.normalize: expected true or a mapping with norm_obs: true (observations "
        "are always normalised, the bundle carries the statistics), got {'norm_obs': False}",
        "x.yaml:default.frame_stack: an rl-baselines3-zoo key ipwarmup train does not read",
    ]
    defaults, hyperparameters = split_preset(
        {"normalize": {"norm_obs": True, "norm_reward": False}, "n_envs": 7, "gamma": 0.9},
        where="x.yaml:default",
    )
    assert defaults == {"training": {"norm_reward": False, "n_envs": 7}, "algorithm": {}}
    assert hyperparameters == {"gamma": 0.9}
