"""Typed experiment configuration: algorithm, hyperparameters, training budget, tracking, env.

Hyperparameters keep stable-baselines3's own names and live in
``configs/algorithms/<algorithm>.yaml`` by preset, in rl-baselines3-zoo's format
(:mod:`ipwarmup.training.presets` reads them). :func:`load_experiment` lays the experiment
file over its preset, then the ``--set`` overrides on top.

The experiment's ``hyperparameters`` (the preset's, then the file's) are part of the typed
config, checked against the algorithm's signature, and, for PPO and RecurrentPPO, against
the rollout: ``n_steps`` a whole number of episodes, ``batch_size`` a divisor of
``n_steps x training.n_envs``.
"""

from __future__ import annotations

import inspect
import math
from pathlib import Path
from typing import Any, Literal

from ipwarmup.actions import POOL_THRESHOLD
from ipwarmup.config import (
    Config,
    apply_overrides,
    configclass,
    load,
    load_yaml,
    setting,
    setting_factory,
)
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.errors import ConfigError
from ipwarmup.training.presets import (
    algorithm_class,
    check_hyperparameters,
    preset_path,
    read_preset,
    split_preset,
)

# The validation suite's scenarios, which training used to run on: kept for comparisons
# (benchmarks/world_throughput.py); training draws from a world by default (issue 10).
VALIDATION_SCENARIOS = (
    "steady_b2c_transactional",
    "bursty_b2c_marketing",
    "b2b_microsoft_heavy",
    "fast_growing_startup",
    "low_volume",
    "poor_list_quality",
    "seasonal_spike",
)
ON_POLICY = ("PPO", "RecurrentPPO")


@configclass
class AlgorithmConfig(Config):
    """Which SB3 algorithm learns, with which hyperparameter preset."""

    name: Literal["PPO", "SAC", "RecurrentPPO"] = setting("PPO", "The SB3 algorithm.")
    preset: str = setting("default", "Block of configs/algorithms/<name>.yaml to start from.")
    policy: str = setting("MlpPolicy", "SB3 policy class name (default: the preset's policy).")


@configclass
class TrainingConfig(Config):
    """The training budget, evaluation cadence and model selection."""

    total_timesteps: int = setting(
        2_000_000, "Environment steps (decisions) to train for (default: the preset's).", ge=1
    )
    n_envs: int = setting(
        70,
        "Environments stepped together, over the world or the scenarios (default: the preset's).",
        ge=1,
    )
    world: str | None = setting(
        "default",
        "World (configs/worlds/<name>.yaml or a path) each env draws a new sender from at "
        "every episode; null to train on scenarios instead.",
    )
    scenarios: tuple[str, ...] = setting(
        (), "Scenarios trained on instead of a world (set world: null); none by default."
    )
    seed: int | None = setting(None, "Training seed; drawn and printed when not given.", ge=0)
    suite: str = setting("validation", "Suite of the periodic and final evaluations.")
    eval_freq: int = setting(400_000, "Timesteps between two evaluations on the suite.", ge=1)
    eval_seeds: int = setting(8, "Seeds per scenario in periodic evaluations.", ge=2)
    final_eval_seeds: int = setting(32, "Seeds per scenario in the final evaluation.", ge=2)
    checkpoint_freq: int = setting(400_000, "Timesteps between two checkpoints.", ge=1)
    lost_share_margin: float = setting(
        0.0,
        "A candidate best model may lose at most fixed-sendgrid's lost_share plus this.",
        ge=0,
    )
    norm_reward: bool = setting(True, "Normalise rewards with VecNormalize.")
    pretrain_teacher: str | None = setting(
        "oracle",
        "Behaviour-clone this policy before RL (oracle: the reward-planning oracle); null: off.",
    )
    pretrain_episodes: int = setting(
        64, "Teacher episodes per training scenario, or senders drawn from the world.", ge=1
    )
    pretrain_epochs: int = setting(30, "Passes over the teacher's demonstrations.", ge=1)
    dagger_epochs: int | None = setting(
        None,
        "Passes over all demonstrations at each DAgger refit; null: pretrain_epochs / "
        "(round + 1), as many gradient steps a round as the first cloning.",
        ge=1,
    )
    freeze_normalization: bool = setting(
        True,
        "After cloning a teacher, keep VecNormalize's observation and return statistics "
        "those of the demonstrations during RL (and after a resume).",
    )
    dagger_rounds: int = setting(
        0,
        "DAgger rounds after cloning (world training only): the clone drives "
        "pretrain_episodes new senders, the teacher labels the states it reaches, and the "
        "clone is refitted on every demonstration so far (see dagger_epochs). Cloning "
        "alone never sees the states its own mistakes lead to.",
        ge=0,
    )
    action_std: float = setting(
        0.3,
        "Spread of the Gaussian policy's cap actions when RL starts, after cloning or from "
        "scratch (SB3 starts at 1.0: its sampled caps random-walk).",
        gt=0,
        le=1,
    )
    pool_action_std: float = setting(
        0.05,
        "Spread of the Gaussian policy's pool action when RL starts, after cloning or from "
        "scratch (at 1.0 the +-1/3 threshold adds and drops IPs at random).",
        gt=0,
        le=1,
    )
    pool_label_scale: float = setting(
        1.0,
        "Scale of the teacher's pool actions (-1, 0, +1) in cloning and DAgger: the "
        "student's mean crosses the +-1/3 threshold where a share 1/(3 x scale) of similar "
        "states move the pool (1.0: a third; 0.5: two thirds), so lower changes the pool "
        "only where the teacher mostly would.",
        gt=POOL_THRESHOLD,
        le=1,
    )
    output_dir: str = setting("runs", "Local folder for checkpoints and models, per run.")

    def _check(self) -> list[str]:
        if self.world is not None and self.scenarios:
            return [
                f"world: expected either a world or scenarios, got world '{self.world}' and "
                f"scenarios {list(self.scenarios)}; set training.world=null to train on the "
                "scenarios, or leave training.scenarios out to train on the world"
            ]
        if self.world is not None:
            return []
        if self.dagger_rounds:
            return [
                f"dagger_rounds: expected 0 when training on scenarios (training.world is "
                f"null), got {self.dagger_rounds}; DAgger draws new senders from a world"
            ]
        if not self.scenarios:
            return [
                "scenarios: expected at least one scenario when training.world is null, got "
                "none; name scenarios or a world (training.world=default)"
            ]
        if self.n_envs < len(self.scenarios):
            return [
                f"n_envs: expected at least one env per scenario ({len(self.scenarios)}), "
                f"got {self.n_envs}"
            ]
        return []


@configclass
class TrackingConfig(Config):
    """Where runs are recorded."""

    experiment: str = setting("ipwarmup", "MLflow experiment name.")
    tracking_uri: str | None = setting(
        None, "MLflow tracking URI; default MLFLOW_TRACKING_URI, else ./mlflow.db."
    )


def _default_hyperparameters() -> dict[str, Any]:
    return split_preset(read_preset("PPO", "default"), where="ppo.yaml:default")[1]


@configclass
class ExperimentConfig(Config):
    """One training experiment."""

    name: str = setting("ppo", "Experiment name, the prefix of run names.")
    algorithm: AlgorithmConfig = setting_factory(AlgorithmConfig, "The algorithm.")
    hyperparameters: dict[str, Any] = setting_factory(
        _default_hyperparameters,
        "SB3 keyword arguments of the algorithm: its preset's, then the experiment's.",
    )
    training: TrainingConfig = setting_factory(TrainingConfig, "The budget and evaluation.")
    tracking: TrackingConfig = setting_factory(TrackingConfig, "Run tracking.")
    env: EnvConfig = setting_factory(EnvConfig, "Env settings shared by every scenario.")

    def _check(self) -> list[str]:
        problems = check_hyperparameters(self.algorithm.name, self.hyperparameters)
        if not problems and self.algorithm.name in ON_POLICY:
            problems = check_rollout(self)
        return problems + check_world(self)


def check_world(config: ExperimentConfig) -> list[str]:
    """Return problems of the training world: its file, and its mixes against the env.

    Checked with the experiment, so that a bad world stops ``train`` before a run starts.
    """
    world = config.training.world
    if world is None:
        return []
    from ipwarmup.envs.world import WorldSampler, load_world

    try:
        WorldSampler(world=load_world(world), config=config.env)
    except ConfigError as error:
        return [f"training.{problem}" for problem in error.problems]
    return []


def check_rollout(config: ExperimentConfig) -> list[str]:
    """Return problems of an on-policy rollout: episode alignment and minibatch size.

    Every env of the batch starts its episode together (one horizon, reset together), so a
    rollout of ``n_steps`` that is not a whole number of episodes trains each update on one
    phase of the warmup only. SB3 cuts the rollout of ``n_steps x n_envs`` transitions into
    minibatches of ``batch_size``; one that does not divide it leaves a short minibatch.
    """
    parameters = inspect.signature(algorithm_class(config.algorithm.name).__init__).parameters
    hp = config.hyperparameters
    n_steps = int(hp.get("n_steps", parameters["n_steps"].default))
    batch_size = int(hp.get("batch_size", parameters["batch_size"].default))
    n_envs = config.training.n_envs
    env = config.env
    episode = env.steps_per_episode
    decisions = HOURS_PER_DAY // env.decision_interval_hours
    if n_steps % episode:
        fix = max(1, round(n_steps / episode)) * episode
        return [
            f"hyperparameters.n_steps: expected a multiple of the {episode} steps of an episode "
            f"(env.horizon_days {env.horizon_days} x {_count(decisions, 'decision')} a day), got "
            f"{n_steps}: every env starts its episode together, so each update would see part "
            f"of the warmup only; set hyperparameters.n_steps={fix}"
        ]
    rollout = n_steps * n_envs
    if batch_size < 2:
        return [
            "hyperparameters.batch_size: expected at least 2 (SB3 normalises advantages "
            f"within a minibatch), got {batch_size}"
        ]
    if rollout % batch_size:
        divisors = [d for d in range(2, rollout + 1) if rollout % d == 0]
        below = [d for d in divisors if d < batch_size][-1:]
        above = [d for d in divisors if d > batch_size][:1]
        fixes = [
            f"hyperparameters.batch_size={d} ({_count(rollout // d, 'minibatch')})"
            for d in below + above
        ]
        step = batch_size // math.gcd(batch_size, n_steps)
        fixes.append(f"training.n_envs={-(-n_envs // step) * step}")
        return [
            f"hyperparameters.batch_size: expected a divisor of the rollout's n_steps x "
            f"training.n_envs = {n_steps} x {n_envs} = {rollout} transitions, got "
            f"{batch_size}; set {' or '.join(fixes)}"
        ]
    return []


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "es" if noun.endswith("ch") else "s")


def load_experiment(
    path: str | Path | None, overrides: tuple[str, ...] | list[str] = ()
) -> ExperimentConfig:
    """Load an experiment YAML over its algorithm preset, with ``--set`` overrides on top.

    The preset (``algorithm.name`` and ``algorithm.preset`` of the file, PPO and default if
    absent) gives the defaults of the fields its zoo keys name and the hyperparameters; the
    file's ``hyperparameters`` override them key by key.

    Raises:
        ConfigError: a bad file, preset, override or value, every problem at once.
    """
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    given = data.pop("hyperparameters", None) or {}
    if not isinstance(given, dict):
        raise ConfigError(f"experiment.hyperparameters: expected a mapping, got {given!r}")
    algorithm = data.get("algorithm") or {}
    name = algorithm.get("name", "PPO") if isinstance(algorithm, dict) else "PPO"
    preset = algorithm.get("preset", "default") if isinstance(algorithm, dict) else "default"
    if name not in ("PPO", "SAC", "RecurrentPPO") or not isinstance(preset, str):
        return load(ExperimentConfig, data, path="experiment")  # reports the bad algorithm
    defaults, hyperparameters = split_preset(
        read_preset(name, preset), where=f"{preset_path(name).name}:{preset}"
    )
    merged = _lay_over(defaults, data)
    merged["hyperparameters"] = {**hyperparameters, **given}
    return load(ExperimentConfig, merged, path="experiment")


def _lay_over(base: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """Return ``data`` laid over ``base``: nested mappings merge, other values replace."""
    result = dict(base)
    for key, value in data.items():
        old = result.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            result[key] = _lay_over(old, value)
        else:
            result[key] = value
    return result
