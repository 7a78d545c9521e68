"""An SB3 ``VecEnv`` whose every env meets a new sender from a world at each episode.

Every env of the batch starts and ends its episode together (one horizon, one clock), so at
each episode boundary the batch draws one env config per env from the world
(:class:`~ipwarmup.envs.world.WorldSampler`), then runs the envs in one batched
:class:`~ipwarmup.envs.simulator.Simulator` per MTA overflow mode (the one setting of a draw
that the compiled period reads batch-wide); each row draws its episode from its own config.
Env ``i`` seeded ``seed + i`` draws its senders from the world stream of that seed and its
episodes as a single env of the drawn config seeded ``seed + i`` would: the run's seed fixes
every draw.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvObs, VecEnvStepReturn

from ipwarmup.envs.config import EnvConfig
from ipwarmup.envs.env import build_config
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.vector import AccountingRow, WarmupVecEnv, accounting_table
from ipwarmup.envs.world import WORLD_STREAM, WorldSampler, load_world
from ipwarmup.envs.world_config import WorldConfig
from ipwarmup.observation import feature_bounds


class WorldVecEnv(WarmupVecEnv):
    """Batched warmups whose senders are drawn from a world at every episode.

    Args:
        world: the distribution of senders.
        config: the env settings every draw keeps (see :class:`WorldSampler`).
        n_envs: number of environments.
    """

    def __init__(self, *, world: WorldConfig, config: EnvConfig, n_envs: int) -> None:
        if n_envs < 1:
            raise ValueError(f"n_envs: expected at least 1, got {n_envs}")
        self.config = config
        self.sampler = WorldSampler(world=world, config=config)
        n_providers = len(config.providers)
        low, high = feature_bounds(n_providers, config.observation.layout)
        observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        self._obs_dim = len(low)
        action_space = gym.spaces.Box(-1.0, 1.0, (n_providers + 1,), dtype=np.float32)
        VecEnv.__init__(self, n_envs, observation_space, action_space)
        self._generators: list[np.random.Generator | None] = [None] * n_envs
        self._world_generators: list[np.random.Generator] = [
            np.random.default_rng() for _ in range(n_envs)
        ]
        self._actions = np.zeros((n_envs, n_providers + 1))
        self.episode_configs: list[EnvConfig] = []  # env i's drawn config this episode
        self._groups: list[tuple[Simulator, np.ndarray]] = []  # simulator, its envs in row order

    def reset(self) -> VecEnvObs:
        """Reset every env with a new sender, using the seeds given to :meth:`seed` once."""
        for i, seed in enumerate(self._seeds):
            if seed is not None:
                sequence = np.random.SeedSequence([seed, WORLD_STREAM])
                self._world_generators[i] = np.random.default_rng(sequence)
        generators = [self._generator(i, self._seeds[i]) for i in range(self.num_envs)]
        obs = self._new_episode(generators)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = self._infos()
        return obs

    def _new_episode(self, generators: list[np.random.Generator]) -> np.ndarray:
        """Draw every env's config, group the envs by overflow mode and reset them."""
        self.episode_configs = [self.sampler.draw(rng) for rng in self._world_generators]
        modes = [config.mta.overflow for config in self.episode_configs]
        obs = np.empty((self.num_envs, self._obs_dim), dtype=np.float32)
        self._groups = []
        for mode in sorted(set(modes)):
            members = np.array([i for i, m in enumerate(modes) if m == mode])
            configs = [self.episode_configs[i] for i in members]
            simulator = Simulator(configs[0], len(members))
            rows = np.arange(len(members))
            obs[members] = simulator.reset(rows, [generators[i] for i in members], configs)
            self._groups.append((simulator, members))
        return obs

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env; at the horizon all end, report ``terminal_observation`` and redraw."""
        obs = np.empty((self.num_envs, self._obs_dim), dtype=np.float32)
        reward = np.empty(self.num_envs, dtype=np.float32)
        done = np.empty(self.num_envs, dtype=bool)
        results = []
        for simulator, members in self._groups:
            result = simulator.step(self._actions[members])
            obs[members], reward[members], done[members] = (
                result.observation,
                result.reward,
                result.truncated,
            )
            results.append(result)
        infos = self._infos()
        if done.any():
            # Every row shares the horizon and the clock, so all end at once.
            for (simulator, members), result in zip(self._groups, results, strict=True):
                continuations = simulator.continuation_infos(np.arange(len(members)), result)
                for i, continuation in zip(members, continuations, strict=True):
                    infos[i]["terminal_observation"] = obs[i].copy()
                    infos[i]["TimeLimit.truncated"] = True
                    infos[i]["continuation"] = continuation
            generators = [self._generator(i, None) for i in range(self.num_envs)]
            obs = self._new_episode(generators)
            self.reset_infos = self._infos()
        return obs, reward, done, infos

    def _infos(self) -> list[dict[str, Any]]:
        """Return every env's info: its accounting, in env order, read as the batch's is."""
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for simulator, members in self._groups:
            rows = AccountingRow.infos(accounting_table(simulator), range(len(members)))
            for i, info in zip(members, rows, strict=True):
                infos[int(i)] = info
        return infos


def make_world_vec_env(
    *,
    world: str | Path | WorldConfig,
    config: EnvConfig | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    n_envs: int = 1,
    seed: int | None = None,
) -> WorldVecEnv:
    """Build a batched VecEnv of ``n_envs`` warmups drawing senders from a world.

    Args:
        world: a shipped world name, a YAML path or a :class:`WorldConfig`.
        config: an :class:`EnvConfig` or plain data for one: what every draw keeps.
        overrides: ``dotted.key=value`` strings applied to the env config.
        n_envs: number of environments in the batch.
        seed: base seed; env ``i`` is seeded ``seed + i``; None draws fresh entropy.
    """
    chosen = world if isinstance(world, WorldConfig) else load_world(world)
    env = WorldVecEnv(
        world=chosen, config=build_config(config=config, overrides=overrides), n_envs=n_envs
    )
    if seed is not None:
        env.seed(seed)
    return env
