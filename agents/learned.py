"""A trained stable-baselines3 model behind the common policy interface."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from ipwarmup.agents.base import Policy
from ipwarmup.envs.config import EnvConfig
from ipwarmup.errors import ConfigError

VECNORMALIZE_FILE = "vecnormalize.pkl"


class LearnedPolicy(Policy):
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


class BundlePolicy(Policy):
    """An exported serving bundle behind the common policy interface (numpy forward pass).

    Args:
        config: the env configuration.
        path: the bundle folder.
    """

    def __init__(self, config: EnvConfig, path: str | Path) -> None:
        from ipwarmup.serving import load_policy

        super().__init__(config)
        self.served = load_policy(path)
        self.name = str(path)
        if self.served.providers != config.provider_names:
            raise ConfigError(
                f"policy: bundle '{path}' decides for providers {list(self.served.providers)}, "
                f"the env has {list(config.provider_names)}"
            )

    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        return self.served.forward(observation)
