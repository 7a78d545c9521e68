"""The simulator: provider throttling and reputation during IP warmup.

Importing this package registers ``ipwarmup/IPWarmup-v0`` with Gymnasium.
``make_vec_env`` builds the batched SB3 VecEnv; it is imported on first use so that
``import ipwarmup.envs`` does not pull in stable-baselines3 and torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym

# First: numba's cache of every kernel here must check the whole package (see compiled).
import ipwarmup.envs.compiled  # noqa: F401  # isort: skip
from ipwarmup.envs.config import EnvConfig, ScenarioConfig
from ipwarmup.envs.env import ENV_ID, ENV_VERSION, IPWarmupEnv, build_config
from ipwarmup.envs.scenarios import load_scenario, scenario_names

if TYPE_CHECKING:
    from ipwarmup.envs.vector import WarmupVecEnv, make_vec_env

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="ipwarmup.envs.env:IPWarmupEnv")

__all__ = [
    "ENV_ID",
    "ENV_VERSION",
    "EnvConfig",
    "IPWarmupEnv",
    "ScenarioConfig",
    "WarmupVecEnv",
    "build_config",
    "load_scenario",
    "make_vec_env",
    "scenario_names",
]


def __getattr__(name: str) -> Any:
    if name in ("make_vec_env", "WarmupVecEnv"):
        from ipwarmup.envs import vector

        return getattr(vector, name)
    raise AttributeError(f"module 'ipwarmup.envs' has no attribute '{name}'")
