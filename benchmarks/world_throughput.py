"""Training throughput on a world against the seven scenarios (issue 10): the redraws' cost.

Run ``python benchmarks/world_throughput.py`` (``--quick`` for a smoke run, ``--json PATH``
to also write the figures). It prints, it does not assert.

Measured in this one process, alternating the two so that load changes hit both alike:

1. The training VecEnv alone, with random actions over whole episodes (the horizon's
   redraw included): ``make_multi_scenario_vec_env`` over the seven validation scenarios
   (the old default) and ``make_world_vec_env`` over ``configs/worlds/default.yaml``, at
   the ppo preset's 70 envs. CPU seconds per env-step and env-steps/s.
2. What the world adds per episode: the time of ``n_envs`` draws from the world
   (:meth:`WorldSampler.draw`), and the share of an episode's env time they take.
3. A short SB3 PPO run (the ppo preset's rollout: 45 steps x 70 envs, batch 1050, 10
   epochs) on each: env-steps/s of ``model.learn`` including the gradient steps.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _common import load, rate, rule, write_json  # noqa: E402

from ipwarmup.envs.config import EnvConfig  # noqa: E402
from ipwarmup.envs.vector import make_multi_scenario_vec_env  # noqa: E402
from ipwarmup.envs.world import WorldSampler, load_world  # noqa: E402
from ipwarmup.envs.world_vec import make_world_vec_env  # noqa: E402
from ipwarmup.training.config import VALIDATION_SCENARIOS  # noqa: E402

HORIZON = EnvConfig().steps_per_episode


def make(kind: str, n_envs: int) -> Any:
    """Return the training VecEnv of one kind: 'scenarios' or 'world'."""
    if kind == "world":
        return make_world_vec_env(world="default", n_envs=n_envs, seed=0)
    return make_multi_scenario_vec_env(scenarios=list(VALIDATION_SCENARIOS), n_envs=n_envs, seed=0)


def env_seconds(kind: str, n_envs: int, episodes: int) -> float:
    """Return CPU seconds per env-step of random actions over whole episodes."""
    env = make(kind, n_envs)
    env.reset()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (HORIZON, n_envs, env.action_space.shape[0]))
    start = time.process_time()
    for _ in range(episodes):
        for step in range(HORIZON):
            env.step(actions[step])
    return (time.process_time() - start) / (episodes * HORIZON * n_envs)


def draw_seconds(n_draws: int) -> float:
    """Return CPU seconds per world draw."""
    sampler = WorldSampler(world=load_world("default"), config=EnvConfig())
    rng = np.random.default_rng(0)
    start = time.process_time()
    for _ in range(n_draws):
        sampler.draw(rng)
    return (time.process_time() - start) / n_draws


def ppo_seconds(kind: str, n_envs: int, rollouts: int) -> float:
    """Return CPU seconds per env-step of SB3 PPO's learn (rollouts and updates)."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecNormalize

    torch.set_num_threads(1)
    env = VecNormalize(make(kind, n_envs), norm_obs=True, norm_reward=True)
    model = PPO(
        "MlpPolicy", env, n_steps=HORIZON, batch_size=1050, n_epochs=10, seed=0,
        device="cpu", policy_kwargs={"net_arch": [64, 64]},
    )  # fmt: skip
    model.learn(HORIZON * n_envs)  # warm up: first rollout and update
    start = time.process_time()
    model.learn(rollouts * HORIZON * n_envs, reset_num_timesteps=False)
    return (time.process_time() - start) / (rollouts * HORIZON * n_envs)


def timed(seconds: Callable[[str], float], repeats: int) -> dict[str, list[float]]:
    """Time the scenarios and the world alternately ``repeats`` times; print best and median."""
    times: dict[str, list[float]] = {"scenarios": [], "world": []}
    for _ in range(repeats):
        for kind in times:
            times[kind].append(seconds(kind))
    for kind, values in times.items():
        best, median = min(values), statistics.median(values)
        print(f"{kind:>10}: {rate(1 / best)} env-steps/s (best), median {rate(1 / median)}")
    return times


def main() -> None:
    """Measure and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one repeat, small loops")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    n_envs, repeats = 70, 1 if args.quick else 3
    episodes, rollouts = (1, 1) if args.quick else (3, 3)
    print(f"load average before: {load()}")
    report: dict[str, Any] = {"n_envs": n_envs, "load_before": load()}
    print(rule(f"1. training VecEnv alone, {n_envs} envs, random actions, CPU time"))
    make("world", 2).reset()  # compile and cache outside the timed loops
    env = timed(lambda kind: env_seconds(kind, n_envs, episodes), repeats)
    ratio = min(env["scenarios"]) / min(env["world"])
    print(f"world / scenarios env-steps/s: {ratio:.2f}")
    report["env_steps_per_s"] = {k: 1 / min(v) for k, v in env.items()}
    print(rule("2. the redraw per episode"))
    draw = draw_seconds(200 if args.quick else 2000)
    episode = min(env["world"]) * HORIZON * n_envs
    print(
        f"one draw: {draw * 1e3:.3f} ms CPU; {n_envs} draws per episode: "
        f"{draw * n_envs * 1e3:.1f} ms "
        f"= {draw * n_envs / episode:.1%} of the world env's episode ({episode * 1e3:.0f} ms)"
    )
    report["draw_ms"] = draw * 1e3
    print(rule(f"3. SB3 PPO learn (ppo preset rollout, {n_envs} envs), CPU time"))
    ppo = timed(lambda kind: ppo_seconds(kind, n_envs, rollouts), repeats)
    print(f"world / scenarios PPO env-steps/s: {min(ppo['scenarios']) / min(ppo['world']):.2f}")
    report["ppo_env_steps_per_s"] = {k: 1 / min(v) for k, v in ppo.items()}
    print(f"\nload average after: {load()}")
    report["load_after"] = load()
    if args.json:
        write_json(args.json, report)


if __name__ == "__main__":
    main()
