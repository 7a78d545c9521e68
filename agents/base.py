"""The base of the baselines and the oracle: SB3-style ``predict`` over a memory of rows.

The contract itself (:class:`ipwarmup.policy.Policy`) is a protocol that trained and served
policies satisfy too; this class adds what rule-based policies share.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any

import numpy as np

from ipwarmup.actions import ActionCodec
from ipwarmup.envs.config import EnvConfig
from ipwarmup.observation import ObservationView, obs_size, read
from ipwarmup.policy import Policy, PolicyState, PrivilegedPolicy, check_observation_shape

if TYPE_CHECKING:
    from ipwarmup.envs.simulator import Simulator

__all__ = ["BasePolicy", "Policy", "PolicyState", "attach"]


def attach(policy: Policy, simulator: Simulator) -> None:
    """Bind a privileged policy (the oracle) to the simulator it acts in; others need nothing."""
    if isinstance(policy, PrivilegedPolicy):
        policy.bind(simulator.privileged())


class BasePolicy(ABC):
    """A warmup policy for one env configuration.

    ``predict`` follows stable-baselines3 (``observation, state, episode_start,
    deterministic`` in; ``actions, state`` out) on one observation or a batch, so SB3's own
    ``evaluate_policy`` accepts any policy. A policy that remembers (a schedule's stage, a
    pool size fixed at the start) keeps its memory in ``state``, one row per env, and
    starts a row afresh where ``episode_start`` is true, as SB3's recurrent policies do.

    Args:
        config: the env configuration the policy acts in (provider order, horizon, pool).
    """

    name = "policy"
    memory_size = 0
    """Columns of per-env memory carried in ``state``; 0 for a memoryless policy."""

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self.n_providers = len(config.providers)
        self.codec = config.action_codec
        self.obs_dim = obs_size(self.n_providers, config.observation.layout)

    def predict(
        self,
        observation: np.ndarray,
        state: PolicyState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, PolicyState | None]:
        """Return actions for one observation (1-D) or a batch (2-D), and the new state."""
        single = np.ndim(observation) == 1
        batch = check_observation_shape(observation, self.obs_dim).astype(np.float32)
        memory = self._memory(batch.shape[0], state, episode_start)
        actions = np.clip(self._act(batch, memory), -1.0, 1.0).astype(np.float32)
        new_state = (memory,) if self.memory_size else None
        return (actions[0] if single else actions), new_state

    def initial_memory(self, n_envs: int) -> np.ndarray:
        """Return the memory of envs that have not acted yet, (n_envs, memory_size)."""
        return np.full((n_envs, self.memory_size), np.nan)

    def _memory(
        self, n_envs: int, state: PolicyState | None, episode_start: np.ndarray | None
    ) -> np.ndarray:
        if state is None or not self.memory_size:
            return self.initial_memory(n_envs)
        memory = np.array(state[0], dtype=float).reshape(n_envs, self.memory_size)
        if episode_start is not None:
            fresh = np.asarray(episode_start, dtype=bool).reshape(-1)
            memory[fresh] = self.initial_memory(int(fresh.sum()))
        return memory

    @abstractmethod
    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        """Return actions (B, P + 1) for observations (B, obs_dim); may update ``memory``."""

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
        return self.codec.cap_action(current, target)

    @staticmethod
    def pool_action(n_ips: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Return the pool action that moves the pool one IP toward ``target`` IPs."""
        return ActionCodec.pool_action(n_ips, target)

    def describe(self) -> dict[str, Any]:
        """Return what identifies the policy in reports."""
        return {"policy": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
