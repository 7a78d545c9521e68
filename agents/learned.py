"""A trained stable-baselines3 model behind the common policy interface."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ipwarmup.agents.base import BasePolicy
from ipwarmup.envs.config import EnvConfig
from ipwarmup.errors import ConfigError
from ipwarmup.observation import feature_names
from ipwarmup.policy import PolicyState, check_observation_shape

if TYPE_CHECKING:
    from ipwarmup.serving.policy import ServedPolicy

VECNORMALIZE_FILE = "vecnormalize.pkl"


class LearnedPolicy(BasePolicy):
    """An SB3 model, with the VecNormalize statistics it was trained with, if any.

    Observations are normalised exactly as VecNormalize does at evaluation time
    (``clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs)``), then the model's
    deterministic ``predict`` acts.

    Args:
        config: the env configuration.
        model: a loaded SB3 model.
        normalizer: the unpickled VecNormalize, or None.
        name: the policy's name in reports.
    """

    def __init__(self, config: EnvConfig, model: Any, normalizer: Any, name: str) -> None:
        super().__init__(config)
        self.model = model
        self.normalizer = normalizer
        self.name = name

    def normalize(self, observation: np.ndarray) -> np.ndarray:
        """Return observations normalised with the training statistics."""
        norm = self.normalizer
        if norm is None or not norm.norm_obs:
            return observation
        scaled = (observation - norm.obs_rms.mean) / np.sqrt(norm.obs_rms.var + norm.epsilon)
        clipped: np.ndarray = np.clip(scaled, -norm.clip_obs, norm.clip_obs).astype(np.float32)
        return clipped

    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        actions, _ = self.model.predict(self.normalize(observation), deterministic=True)
        result: np.ndarray = np.asarray(actions, dtype=np.float64)
        return result


def load_learned(path: str | Path, config: EnvConfig) -> LearnedPolicy:
    """Load an SB3 model zip (and ``vecnormalize.pkl`` beside it, if present)."""
    from stable_baselines3 import A2C, PPO, SAC, TD3

    model_path = Path(path)
    if model_path.is_dir():
        model_path = model_path / "model.zip"
    if not model_path.is_file():
        raise ConfigError(f"policy: no model file at '{model_path}'")
    errors = []
    model = None
    for algorithm in (PPO, SAC, A2C, TD3):
        try:
            model = algorithm.load(model_path, device="cpu")
            break
        except (KeyError, TypeError, ValueError, AttributeError, RuntimeError) as error:
            errors.append(f"{algorithm.__name__}: {error}")
    if model is None:
        raise ConfigError(f"policy: '{model_path}' is not an SB3 model ({'; '.join(errors)})")
    stats = model_path.parent / VECNORMALIZE_FILE
    normalizer = None
    if stats.is_file():
        with stats.open("rb") as handle:
            # Our own training output; serving never unpickles (its bundles are plain arrays).
            normalizer = pickle.load(handle)
    return LearnedPolicy(config, model, normalizer, name=str(path))


class BundleInEnv:
    """A served bundle acting in an env whose observation carries more than it reads.

    Every layout is a prefix-compatible selection of the fullest (``ipwarmup.observation``):
    each feature is computed alike whatever else the observation holds, so the bundle's
    inputs are the env's columns of the same names, bit for bit.

    Args:
        served: the loaded bundle.
        columns: the env observation's index of each feature the bundle reads, in order.
        obs_dim: the env's observation length.
    """

    def __init__(self, served: ServedPolicy, columns: list[int], obs_dim: int) -> None:
        self.served = served
        self.columns = np.asarray(columns, dtype=np.int64)
        self.obs_dim = obs_dim

    @property
    def name(self) -> str:
        """The bundle's name."""
        return self.served.name

    def predict(
        self,
        observation: np.ndarray,
        state: PolicyState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, PolicyState | None]:
        """Act on the env's observations through the bundle's own columns of them."""
        batch = check_observation_shape(observation, self.obs_dim)
        actions, _ = self.served.predict(batch[:, self.columns], state, episode_start)
        return (actions[0] if np.ndim(observation) == 1 else actions), state


def load_bundle(path: str | Path, config: EnvConfig) -> ServedPolicy | BundleInEnv:
    """Load an exported serving bundle to act in ``config``.

    The bundle declares its observation layout (``observation.history_periods``,
    ``observation.mta_inputs``); where the env's observation carries more (a bundle of the
    last period alone in an env with history), the bundle reads its own columns of it.

    Raises:
        ConfigError: the bundle decides for other providers, or at another interval, or
            reads a feature the env's observation does not carry.
    """
    from ipwarmup.serving import load_policy

    served = load_policy(path)
    if served.providers != config.provider_names:
        raise ConfigError(
            f"policy: bundle '{path}' decides for providers {list(served.providers)}, "
            f"the env has {list(config.provider_names)}"
        )
    if served.period_hours != config.decision_interval_hours:
        raise ConfigError(
            f"policy: bundle '{path}' decides every {served.period_hours} h, the env every "
            f"{config.decision_interval_hours} h"
        )
    env_names = feature_names(config.provider_names, config.observation.layout)
    wanted = served.spec.observation.names
    if wanted == env_names:
        return served
    index = {name: i for i, name in enumerate(env_names)}
    missing = [name for name in wanted if name not in index]
    if missing:
        layout = served.layout
        raise ConfigError(
            f"policy: bundle '{path}' reads {missing[0]} ({len(missing)} features the env "
            f"lacks); set observation.history_periods >= {layout.history_periods}"
            + (" and observation.mta_inputs=true" if layout.mta_inputs else "")
        )
    return BundleInEnv(served, [index[name] for name in wanted], len(env_names))
