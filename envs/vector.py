"""An SB3 ``VecEnv`` over the batched simulator: N warmups stepped in numpy at once.

Not N Python envs in a loop: one :class:`~ipwarmup.envs.simulator.Simulator` holds every
row. Env ``i`` seeded ``seed + i`` follows exactly the trajectory of a single
``IPWarmupEnv`` reset with that seed (SB3's ``VecEnv.seed`` convention).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env.base_vec_env import (
    VecEnv,
    VecEnvIndices,
    VecEnvObs,
    VecEnvStepReturn,
)

from ipwarmup.envs.config import EnvConfig, ScenarioConfig
from ipwarmup.envs.env import build_config, check_no_options
from ipwarmup.envs.simulator import ACCOUNTING_KEYS, EXTRA_ACCOUNTING_KEYS, Simulator
from ipwarmup.envs.state import accounting_block
from ipwarmup.observation import feature_bounds

_INFO_KEYS = ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS
_INFO_INDEX = {key: index for index, key in enumerate(_INFO_KEYS)}


def accounting_table(simulator: Simulator) -> np.ndarray:
    """Return a copy of the batch's accounting, (keys, B) in ``AccountingRow``'s key order."""
    state = simulator.state
    if tuple(state.accounting) == _INFO_KEYS:  # the block's rows are in that order: one copy
        table: np.ndarray = accounting_block(state).copy()
        return table
    accounting = state.accounting
    return np.stack([accounting[key] for key in _INFO_KEYS])


class AccountingRow(Mapping[str, float]):
    """One env's ``info["accounting"]``: a read-only mapping over the step's snapshot.

    A dict of Python floats per env costs more than a 256-env batch's whole numpy work
    outside the kernel; SB3 and the callbacks read no accounting, so each value is
    converted only when read. ``table`` is the batch's counts at that step, (keys, B), a
    copy the next step does not change.
    """

    __slots__ = ("_row", "_table")

    def __init__(self, table: np.ndarray, row: int) -> None:
        self._table = table
        self._row = row

    def __getitem__(self, key: str) -> float:
        return float(self._table[_INFO_INDEX[key], self._row])

    def __iter__(self) -> Iterator[str]:
        return iter(_INFO_KEYS)

    def __len__(self) -> int:
        return len(_INFO_KEYS)

    def __repr__(self) -> str:
        return repr(dict(self))

    @classmethod
    def infos(cls, table: np.ndarray, rows: Iterable[int]) -> list[dict[str, Any]]:
        """Return ``{"accounting": AccountingRow(table, row)}`` for each of ``rows``, in order.

        Built without a Python ``__init__`` call per row: at 256 envs the calls cost most of
        a step's infos.
        """
        new = object.__new__
        infos: list[dict[str, Any]] = []
        for row in rows:
            mapping = new(cls)
            mapping._table = table
            mapping._row = row
            infos.append({"accounting": mapping})
        return infos


class WarmupVecEnv(VecEnv):
    """Batched warmups with SB3's ``VecEnv`` interface and automatic reset.

    Args:
        config: the env configuration (see :func:`~ipwarmup.envs.env.build_config`).
        n_envs: number of environments.
    """

    render_mode: str | None = None  # nothing to render; SB3 asks before rendering

    def __init__(self, *, config: EnvConfig, n_envs: int) -> None:
        self.config = config
        self.simulator = Simulator(config, n_envs)
        n_providers = len(config.providers)
        low, high = feature_bounds(n_providers, config.observation.layout)
        observation_space = gym.spaces.Box(low, high, dtype=np.float32)
        action_space = gym.spaces.Box(-1.0, 1.0, (n_providers + 1,), dtype=np.float32)
        super().__init__(n_envs, observation_space, action_space)
        self._generators: list[np.random.Generator | None] = [None] * n_envs
        self._actions = np.zeros((n_envs, n_providers + 1))

    def _generator(self, index: int, seed: int | None) -> np.random.Generator:
        if seed is not None or self._generators[index] is None:
            self._generators[index], _ = seeding.np_random(seed)
        generator = self._generators[index]
        assert generator is not None  # set just above
        return generator

    def set_options(self, options: list[dict[str, Any]] | dict[str, Any] | None = None) -> None:
        """Refuse reset options, as ``IPWarmupEnv.reset`` does; None or empty ones are fine.

        Raises:
            ValueError: any env's options hold anything.
        """
        for one in options if isinstance(options, list) else [options]:
            check_no_options(one)
        super().set_options(options)

    def reset(self) -> VecEnvObs:
        """Reset every env, using the seeds given to :meth:`seed` once."""
        indices = range(self.num_envs)
        generators = [self._generator(i, self._seeds[i]) for i in indices]
        obs = self.simulator.reset(np.arange(self.num_envs), generators)
        self._reset_seeds()
        self._reset_options()
        self.reset_infos = self._infos()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Store the actions of every env for :meth:`step_wait`."""
        self._actions = np.asarray(actions, dtype=np.float64).reshape(self.num_envs, -1)

    def step_wait(self) -> VecEnvStepReturn:
        """Step every env; finished envs are reset and report ``terminal_observation``."""
        result = self.simulator.step(self._actions)
        obs = result.observation
        infos = self._infos()
        done = result.truncated.copy()
        if done.any():
            ended = np.flatnonzero(done)
            rows = ended.tolist()
            continuations = self.simulator.continuation_infos(ended, result)
            for i, continuation in zip(rows, continuations, strict=True):
                infos[i]["terminal_observation"] = obs[i].copy()
                infos[i]["TimeLimit.truncated"] = True
                infos[i]["continuation"] = continuation
            generators = [self._generator(i, None) for i in rows]
            obs = obs.copy()
            obs[ended] = self.simulator.reset(ended, generators)
            fresh = AccountingRow.infos(accounting_table(self.simulator), rows)
            for i, info in zip(rows, fresh, strict=True):
                self.reset_infos[i] = info
        return obs, result.reward.astype(np.float32), done, infos

    def _infos(self) -> list[dict[str, Any]]:
        """Return every env's info: its accounting as read from one copy of the batch's."""
        return AccountingRow.infos(accounting_table(self.simulator), range(self.num_envs))

    def close(self) -> None:
        """Release nothing: the batch holds only numpy arrays."""

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Return an attribute of the batch once per requested env (they share it)."""
        return [getattr(self, attr_name) for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute on the batch (shared by every env)."""
        setattr(self, attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the batch once per requested env."""
        method = getattr(self, method_name)
        return [method(*method_args, **method_kwargs) for _ in self._indices(indices)]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Return False for every env: the batch is not made of wrapped envs."""
        return [False for _ in self._indices(indices)]


def make_vec_env(
    *,
    scenario: str | Path | ScenarioConfig | None = None,
    config: EnvConfig | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    n_envs: int = 1,
    seed: int | None = None,
) -> WarmupVecEnv:
    """Build a batched VecEnv of ``n_envs`` warmups; env ``i`` is seeded ``seed + i``.

    Args:
        scenario: a shipped scenario name, a YAML path or a :class:`ScenarioConfig`.
        config: an :class:`EnvConfig` or plain data for one.
        overrides: ``dotted.key=value`` strings applied on top.
        n_envs: number of environments in the batch.
        seed: base seed; None draws fresh entropy.
    """
    config = build_config(scenario=scenario, config=config, overrides=overrides)
    env = WarmupVecEnv(config=config, n_envs=n_envs)
    if seed is not None:
        env.seed(seed)
    return env


class ConcatVecEnv(VecEnv):
    """Several batched VecEnvs side by side as one (one per scenario, say).

    Env ``i`` of the whole is env ``i - offset`` of the part that holds it; actions,
    observations, rewards, dones and infos are split and joined in that order.

    Args:
        parts: the VecEnvs to join; they must share observation and action spaces.
    """

    render_mode: str | None = None

    def __init__(self, parts: Sequence[WarmupVecEnv]) -> None:
        if not parts:
            raise ValueError("parts: expected at least one VecEnv, got none")
        self.parts = list(parts)
        first = self.parts[0]
        for part in self.parts[1:]:
            if part.observation_space != first.observation_space:
                raise ValueError("parts: observation spaces differ; use the same providers")
        self._bounds = np.cumsum([0, *(p.num_envs for p in self.parts)])
        super().__init__(int(self._bounds[-1]), first.observation_space, first.action_space)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed env ``i`` of the whole with ``seed + i``."""
        seeds: list[int | None] = []
        for part, start in zip(self.parts, self._bounds[:-1], strict=False):
            part.seed(None if seed is None else seed + int(start))
            seeds += part._seeds
        return seeds

    def set_options(self, options: list[dict[str, Any]] | dict[str, Any] | None = None) -> None:
        """Hand each part its envs' options (every part refuses non-empty ones)."""
        for part, start, end in zip(self.parts, self._bounds[:-1], self._bounds[1:], strict=True):
            part.set_options(options[start:end] if isinstance(options, list) else options)

    def reset(self) -> VecEnvObs:
        """Reset every part."""
        obs = np.concatenate([part.reset() for part in self.parts])
        self.reset_infos = [info for part in self.parts for info in part.reset_infos]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        """Hand each part its slice of the actions."""
        for part, start, end in zip(self.parts, self._bounds[:-1], self._bounds[1:], strict=True):
            part.step_async(actions[start:end])

    def step_wait(self) -> VecEnvStepReturn:
        """Step every part and join the results."""
        results = [part.step_wait() for part in self.parts]
        obs = np.concatenate([r[0] for r in results])
        rewards = np.concatenate([r[1] for r in results])
        dones = np.concatenate([r[2] for r in results])
        infos = [info for r in results for info in r[3]]
        return obs, rewards, dones, infos

    def close(self) -> None:
        """Close every part."""
        for part in self.parts:
            part.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """Return an attribute of the part holding each requested env."""
        return [getattr(self._part(i), attr_name) for i in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute on the parts holding the requested envs."""
        for i in self._get_indices(indices):
            setattr(self._part(i), attr_name, value)

    def env_method(
        self,
        method_name: str,
        *method_args: Any,
        indices: VecEnvIndices = None,
        **method_kwargs: Any,
    ) -> list[Any]:
        """Call a method of the part holding each requested env."""
        return [
            getattr(self._part(i), method_name)(*method_args, **method_kwargs)
            for i in self._get_indices(indices)
        ]

    def env_is_wrapped(
        self, wrapper_class: type[gym.Wrapper[Any, Any, Any, Any]], indices: VecEnvIndices = None
    ) -> list[bool]:
        """Return False for every env: parts are batches, not wrapped envs."""
        return [False for _ in self._get_indices(indices)]

    def _part(self, index: int) -> WarmupVecEnv:
        return self.parts[int(np.searchsorted(self._bounds, index, side="right")) - 1]


def make_multi_scenario_vec_env(
    *,
    scenarios: Sequence[str | Path | ScenarioConfig],
    config: EnvConfig | Mapping[str, Any] | None = None,
    overrides: Sequence[str] = (),
    n_envs: int,
    seed: int | None = None,
) -> ConcatVecEnv:
    """Build one VecEnv over several scenarios, ``n_envs`` split as evenly as possible.

    Args:
        scenarios: shipped scenario names, YAML paths or :class:`ScenarioConfig` objects.
        config: an :class:`EnvConfig` or plain data for one, shared by every scenario.
        overrides: ``dotted.key=value`` strings applied on top of each.
        n_envs: environments in all, at least one per scenario.
        seed: base seed of env 0; env ``i`` of the whole is seeded ``seed + i``.
    """
    if n_envs < len(scenarios):
        raise ValueError(
            f"n_envs: expected at least one env per scenario ({len(scenarios)}), got {n_envs}"
        )
    sizes = [
        n_envs // len(scenarios) + (i < n_envs % len(scenarios)) for i in range(len(scenarios))
    ]
    parts = [
        WarmupVecEnv(
            config=build_config(scenario=scenario, config=config, overrides=overrides), n_envs=size
        )
        for size, scenario in zip(sizes, scenarios, strict=True)
    ]
    env = ConcatVecEnv(parts)
    if seed is not None:
        env.seed(seed)
    return env
