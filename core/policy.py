"""The policy contract, declared once: what evaluation, training and serving call on a policy.

Every policy (the baselines, the oracle, a trained SB3 model, a served bundle) answers
stable-baselines3's ``predict`` on one observation or a batch, so SB3's own
``evaluate_policy`` and this project's paired evaluation take any of them. Numpy only:
serving's policy satisfies it without importing the simulator.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np

PolicyState = tuple[np.ndarray, ...]
"""Per-env memory a policy carries between calls (SB3's ``state``), one row per env."""


class Policy(Protocol):
    """A warmup policy: observations in, actions in [-1, 1] out (see ``ipwarmup.actions``)."""

    @property
    def name(self) -> str:
        """How reports name the policy."""
        ...

    def predict(
        self,
        observation: np.ndarray,
        state: PolicyState | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = True,
    ) -> tuple[np.ndarray, PolicyState | None]:
        """Return actions for one observation (1-D) or a batch (2-D), and the new state."""
        ...


@runtime_checkable
class PrivilegedPolicy(Policy, Protocol):
    """A policy that reads the simulator's hidden state (the oracle): a reference, never served.

    It must be bound to the simulator it acts in before it acts; rows of the observation
    batch are the simulator's rows.
    """

    def bind(self, view: Any) -> Any:
        """Take the simulator's privileged view (``Simulator.privileged()``)."""
        ...


def check_observation_shape(observation: np.ndarray, obs_dim: int) -> np.ndarray:
    """Return ``observation`` as a 2-D batch, or raise SB3's kind of shape error.

    Raises:
        ValueError: names the shape that came and the shapes expected.
    """
    obs = np.asarray(observation)
    if obs.ndim == 1 and obs.shape[0] == obs_dim:
        return obs.reshape(1, obs_dim)
    if obs.ndim == 2 and obs.shape[1] == obs_dim:
        return obs
    raise ValueError(
        f"Unexpected observation shape {obs.shape}: please use ({obs_dim},) or (n_env, {obs_dim})"
    )
