"""One interface for every policy, baseline or learned: SB3-style ``predict``."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from ipwarmup.envs.config import EnvConfig
from ipwarmup.observation import ObservationView, read


class Policy(ABC):
    """A warmup policy for one env configuration.

    ``predict`` follows stable-baselines3 (``observation, state, episode_start,
    deterministic`` in; ``actions, state`` out) on one observation or a batch, so SB3's own
    ``evaluate_policy`` accepts any policy.

    Args:
        config: the env configuration the policy acts in (provider order, horizon, pool).
    """

    name = "policy"

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self.n_providers = len(config.providers)
        self._log_step = float(np.log(config.pool.max_cap_change_per_day)) * (
            config.decision_interval_hours / 24
        )

    def predict(
        self,
        observation: np.ndarray,
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, tuple[np.ndarray, ...] | None]:
        """Return actions for one observation (1-D) or a batch (2-D), and the state."""
        obs = np.asarray(observation, dtype=np.float32)
        single = obs.ndim == 1
        batch = obs.reshape(1, -1) if single else obs
        actions = np.clip(self._act(batch), -1.0, 1.0).astype(np.float32)
        return (actions[0] if single else actions), state

    @abstractmethod
    def _act(self, observation: np.ndarray) -> np.ndarray:
        """Return actions of shape (B, P + 1) for observations of shape (B, obs_dim)."""

    def view(self, observation: np.ndarray) -> ObservationView:
        """Read the plain quantities back from a batch of observations."""
        c = self.config
        return read(
            observation,
            n_providers=self.n_providers,
            horizon_days=c.horizon_days,
            max_ips=c.pool.max_ips,
        )

    def cap_action(self, current: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Return the cap action that moves ``current`` caps toward ``target`` caps."""
        ratio = np.maximum(target, 1e-9) / np.maximum(current, 1e-9)
        action: np.ndarray = np.clip(np.log(ratio) / self._log_step, -1.0, 1.0)
        return action

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def describe(self) -> dict[str, Any]:
        """Return what identifies the policy in reports."""
        return {"policy": self.name}
