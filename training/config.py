"""Typed experiment configuration: algorithm, training budget, tracking, env.

Hyperparameters keep stable-baselines3's own names and live in
``configs/algorithms/<algorithm>.yaml`` by preset (a ``default`` block, as
rl-baselines3-zoo does); an experiment may override any of them under ``hyperparameters``.
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from ipwarmup.config import Config, apply_overrides, load, load_yaml, setting, setting_factory
from ipwarmup.envs.config import EnvConfig
from ipwarmup.errors import ConfigError

VALIDATION_SCENARIOS = (
    "steady_b2c_transactional",
    "bursty_b2c_marketing",
    "b2b_microsoft_heavy",
    "fast_growing_startup",
    "low_volume",
    "poor_list_quality",
    "seasonal_spike",
)


@dataclass(frozen=True)
class AlgorithmConfig(Config):
    """Which SB3 algorithm learns, with which hyperparameter preset."""

    name: Literal["PPO", "SAC", "RecurrentPPO"] = setting("PPO", "The SB3 algorithm.")
    preset: str = setting("default", "Block of configs/algorithms/<name>.yaml to start from.")
    policy: str = setting("MlpPolicy", "SB3 policy class name.")


@dataclass(frozen=True)
class TrainingConfig(Config):
    """The training budget, evaluation cadence and model selection."""

    total_timesteps: int = setting(2_000_000, "Environment steps (decisions) to train for.", ge=1)
    n_envs: int = setting(70, "Environments stepped together, spread over the scenarios.", ge=1)
    scenarios: tuple[str, ...] = setting(VALIDATION_SCENARIOS, "Scenarios trained on.")
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
    pretrain_episodes: int = setting(64, "Teacher episodes per training scenario.", ge=1)
    pretrain_epochs: int = setting(30, "Passes over the teacher's demonstrations.", ge=1)
    pretrain_action_std: float = setting(
        0.3, "Spread of the Gaussian policy's cap actions after cloning.", gt=0, le=1
    )
    pretrain_pool_action_std: float = setting(
        0.05, "Spread of the Gaussian policy's pool action after cloning.", gt=0, le=1
    )
    output_dir: str = setting("runs", "Local folder for checkpoints and models, per run.")

    def _check(self) -> list[str]:
        if not self.scenarios:
            return ["scenarios: expected at least one scenario, got none"]
        if self.n_envs < len(self.scenarios):
            return [
                f"n_envs: expected at least one env per scenario ({len(self.scenarios)}), "
                f"got {self.n_envs}"
            ]
        return []


@dataclass(frozen=True)
class TrackingConfig(Config):
    """Where runs are recorded."""

    experiment: str = setting("ipwarmup", "MLflow experiment name.")
    tracking_uri: str | None = setting(
        None, "MLflow tracking URI; default MLFLOW_TRACKING_URI, else ./mlflow.db."
    )


@dataclass(frozen=True)
class ExperimentConfig(Config):
    """One training experiment."""

    name: str = setting("ppo", "Experiment name, the prefix of run names.")
    algorithm: AlgorithmConfig = setting_factory(AlgorithmConfig, "The algorithm.")
    training: TrainingConfig = setting_factory(TrainingConfig, "The budget and evaluation.")
    tracking: TrackingConfig = setting_factory(TrackingConfig, "Run tracking.")
    env: EnvConfig = setting_factory(EnvConfig, "Env settings shared by every scenario.")


def algorithm_class(name: str) -> type[Any]:
    """Return the SB3 class of an algorithm name."""
    if name == "RecurrentPPO":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    import stable_baselines3

    algorithm: type[Any] = getattr(stable_baselines3, name)
    return algorithm


def _preset(algorithm: AlgorithmConfig) -> dict[str, Any]:
    path = Path(str(resources.files("ipwarmup.configs"))) / "algorithms"
    path = path / f"{algorithm.name.lower()}.yaml"
    presets = load_yaml(path)
    if algorithm.preset not in presets:
        close = difflib.get_close_matches(algorithm.preset, list(presets), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; expected one of {list(presets)}"
        raise ConfigError(f"experiment.algorithm.preset: unknown preset '{algorithm.preset}'{hint}")
    block = presets[algorithm.preset] or {}
    return dict(block)


def check_hyperparameters(name: str, hyperparameters: dict[str, Any]) -> list[str]:
    """Return problems with hyperparameter names and scalar types, checked against SB3."""
    signature = inspect.signature(algorithm_class(name).__init__)
    known = {p for p in signature.parameters if p not in ("self", "policy", "env")}
    problems = []
    for key, value in hyperparameters.items():
        where = f"experiment.hyperparameters.{key}"
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            problems.append(f"{where}: not a {name} parameter{hint}")
            continue
        default = signature.parameters[key].default
        if isinstance(default, bool) and not isinstance(value, bool):
            problems.append(f"{where}: expected true or false, got {value!r}")
        elif isinstance(default, (int, float)) and not isinstance(default, bool):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                hint = ""
                if isinstance(value, str) and "e" in value.lower():
                    hint = "; YAML reads 3e-4 as text, write 3.0e-4"
                problems.append(f"{where}: expected a number, got {value!r}{hint}")
            elif isinstance(default, int) and isinstance(value, float) and not value.is_integer():
                problems.append(f"{where}: expected an integer, got {value!r}")
    return problems


def load_experiment(
    path: str | Path | None, overrides: tuple[str, ...] | list[str] = ()
) -> tuple[ExperimentConfig, dict[str, Any]]:
    """Load an experiment YAML with ``--set`` overrides; return it and its hyperparameters."""
    data = load_yaml(path) if path is not None else {}
    data = apply_overrides(data, overrides)
    given = data.pop("hyperparameters", None) or {}
    if not isinstance(given, dict):
        raise ConfigError(f"experiment.hyperparameters: expected a mapping, got {given!r}")
    config = load(ExperimentConfig, data, path="experiment")
    hyperparameters = {**_preset(config.algorithm), **given}
    problems = check_hyperparameters(config.algorithm.name, hyperparameters)
    if problems:
        raise ConfigError(problems)
    return config, hyperparameters
