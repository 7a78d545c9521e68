"""Warm-start a policy by behaviour cloning a teacher, before reinforcement learning.

Warming up pays only after weeks of patient ramping, which random exploration almost
never stumbles on: from scratch PPO settles on the shared pool. So the actor first
imitates a teacher (by default the reward-maximising oracle, which reads the hidden
state: a privileged teacher for a student that sees only telemetry) and the critic learns
the teacher's discounted returns; PPO then improves on that start.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from gymnasium.utils import seeding
from stable_baselines3.common.vec_env import VecNormalize

from ipwarmup.actions import POOL_THRESHOLD
from ipwarmup.agents.base import attach
from ipwarmup.agents.oracle import OraclePolicy
from ipwarmup.agents.registry import make_policy
from ipwarmup.envs.config import EnvConfig
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.world import WORLD_STREAM, WorldSampler, load_world
from ipwarmup.envs.world_config import WorldConfig
from ipwarmup.policy import Policy

DAGGER_SEED_STRIDE = 1_000_000
"""Seed offset between DAgger rounds' senders, far from the cloning draws' seeds."""

Actor = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of raw observations to the actions that drive the episodes."""


@dataclass
class Demonstrations:
    """Teacher rollouts: raw observations, actions and discounted returns."""

    observations: np.ndarray  # (N, obs_dim)
    actions: np.ndarray  # (N, act_dim)
    returns: np.ndarray  # (N,)


def teacher_policy(name: str, config: EnvConfig) -> Policy:
    """Return the teacher by name: ``oracle`` plans for reward; any baseline name works."""
    if name == "oracle":
        return OraclePolicy(config, objective="reward")
    return make_policy(name, config)


def collect(
    teacher: str, configs: list[EnvConfig], *, episodes: int, gamma: float, seed: int
) -> Demonstrations:
    """Roll the teacher through ``episodes`` episodes of every config (batched)."""
    parts = []
    for index, config in enumerate(configs):
        base = seed + 1_000 * index
        generators = [seeding.np_random(base + i)[0] for i in range(episodes)]
        parts.append(_rollout(teacher, config, generators, None, gamma=gamma))
    return joined(parts)


def collect_world(
    teacher: str,
    world: str | WorldConfig,
    config: EnvConfig,
    *,
    episodes: int,
    gamma: float,
    seed: int,
    actor: Actor | None = None,
) -> Demonstrations:
    """Roll the teacher through ``episodes`` senders drawn from a world, one episode each.

    Draw ``i`` comes from the world stream of seed ``seed + i`` and its episode from seed
    ``seed + i``, as env ``i`` of a world VecEnv seeded ``seed`` draws its first episode;
    the draws run batched, one batch per MTA overflow mode. With an ``actor`` (DAgger), the
    actor's actions drive the episodes and the teacher only labels the states the actor
    reaches, and the returns are the actor's.
    """
    sampler = WorldSampler(
        world=world if isinstance(world, WorldConfig) else load_world(world), config=config
    )
    draws = [
        sampler.draw(np.random.default_rng(np.random.SeedSequence([seed + i, WORLD_STREAM])))
        for i in range(episodes)
    ]
    parts = []
    for mode in sorted({d.mta.overflow for d in draws}):
        members = [i for i, d in enumerate(draws) if d.mta.overflow == mode]
        generators = [seeding.np_random(seed + i)[0] for i in members]
        configs = [draws[i] for i in members]
        parts.append(_rollout(teacher, configs[0], generators, configs, gamma=gamma, actor=actor))
    return joined(parts)


def _rollout(
    teacher: str,
    config: EnvConfig,
    generators: list[np.random.Generator],
    configs: list[EnvConfig] | None,
    *,
    gamma: float,
    actor: Actor | None = None,
) -> Demonstrations:
    """Roll one batched episode per generator (rows' own configs if given), teacher-labelled.

    The teacher's actions drive the episodes unless an ``actor`` is given.
    """
    episodes = len(generators)
    sim = Simulator(config, episodes)
    obs = sim.reset(np.arange(episodes), generators, configs)
    policy = teacher_policy(teacher, config)
    attach(policy, sim)
    state, start = None, np.ones(episodes, dtype=bool)
    observations, actions, rewards = [], [], []
    for _ in range(config.steps_per_episode):
        action, state = policy.predict(obs, state, start)
        observations.append(obs)
        actions.append(np.clip(action, -1.0, 1.0))
        result = sim.step(action if actor is None else actor(obs))
        rewards.append(result.reward)
        obs, start = result.observation, np.zeros(episodes, dtype=bool)
    returns = np.zeros_like(np.array(rewards))
    running = np.zeros(episodes)
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        returns[t] = running
    return Demonstrations(
        np.concatenate(observations), np.concatenate(actions), returns.reshape(-1)
    )


def student_actor(model: Any, normalizer: VecNormalize) -> Actor:
    """Return the model's deterministic actions on raw observations, normalised as in training."""

    def act(observations: np.ndarray) -> np.ndarray:
        actions, _ = model.predict(normalizer.normalize_obs(observations), deterministic=True)
        return np.asarray(actions, dtype=float)

    return act


def joined(parts: list[Demonstrations]) -> Demonstrations:
    """Return the demonstrations of every part, one after another."""
    return Demonstrations(
        np.concatenate([p.observations for p in parts]).astype(np.float32),
        np.concatenate([p.actions for p in parts]).astype(np.float32),
        np.concatenate([p.returns for p in parts]),
    )


def clone(
    model: Any,
    normalizer: VecNormalize,
    demos: Demonstrations,
    *,
    epochs: int,
    batch_size: int = 1024,
    seed: int = 0,
    action_std: float = 0.3,
    pool_action_std: float = 0.05,
    pool_label_scale: float = 1.0,
    update_statistics: bool = True,
) -> dict[str, float]:
    """Fit the actor to the teacher's actions and the critic to its returns.

    The VecNormalize statistics are first updated with the demonstrations (unless
    ``update_statistics`` is false: a DAgger round refits on statistics already set), so
    the policy sees them normalised exactly as it will in training. The teacher's pool
    actions (-1, 0, +1) are fitted at ``pool_label_scale`` times their value: a squared
    loss fits the mean label, which crosses the +-1/3 threshold where a third of similar
    states change the pool, so the student adds or drops IPs on a minority's say; at a
    scale ``s`` it moves where a share ``1 / (3 s)`` of them do. The Gaussian policy's
    spread is then set by :func:`set_action_spread`. Returns the last losses.
    """
    if update_statistics:
        normalizer.obs_rms.update(demos.observations)
        normalizer.ret_rms.update(demos.returns)
    obs = torch.as_tensor(normalizer.normalize_obs(demos.observations), dtype=torch.float32)
    actions = torch.as_tensor(pool_labels(demos.actions, pool_label_scale))
    scale = float(np.sqrt(normalizer.ret_rms.var + normalizer.epsilon))
    returns = torch.as_tensor(demos.returns / scale, dtype=torch.float32)
    policy = model.policy
    policy.set_training_mode(True)
    generator = torch.Generator().manual_seed(seed)
    losses = {"bc/actor_loss": float("nan"), "bc/critic_loss": float("nan")}
    for _ in range(epochs):
        order = torch.randperm(len(obs), generator=generator)
        for start in range(0, len(obs), batch_size):
            batch = order[start : start + batch_size]
            distribution = policy.get_distribution(obs[batch])
            actor_loss = torch.nn.functional.mse_loss(
                distribution.distribution.mean, actions[batch]
            )
            values = policy.predict_values(obs[batch]).flatten()
            critic_loss = torch.nn.functional.mse_loss(values, returns[batch])
            loss = actor_loss + 0.5 * critic_loss
            policy.optimizer.zero_grad()
            loss.backward()  # type: ignore[no-untyped-call]  # torch stubs leave it untyped
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 0.5)
            policy.optimizer.step()
            losses = {"bc/actor_loss": actor_loss.item(), "bc/critic_loss": critic_loss.item()}
    policy.set_training_mode(False)
    set_action_spread(model, action_std=action_std, pool_action_std=pool_action_std)
    return losses


def pool_labels(actions: np.ndarray, scale: float) -> np.ndarray:
    """Return the actions with the last (the pool's) times ``scale``, the others as they are."""
    if not POOL_THRESHOLD < scale <= 1.0:
        raise ValueError(
            f"pool_label_scale: expected above {POOL_THRESHOLD:.4f} (a sure pool move must "
            f"still cross the threshold) and at most 1, got {scale}"
        )
    labels = actions.copy()
    labels[:, -1] *= scale
    return labels


def refit_epochs(first_epochs: int, round_: int) -> int:
    """Return the passes of DAgger round ``round_``: as many gradient steps as the first fit.

    Round ``r`` refits on ``r + 1`` times the first demonstrations (one batch of senders
    more a round), so ``first_epochs / (r + 1)`` passes, at least one.
    """
    return max(1, round(first_epochs / (round_ + 1)))


def dagger(
    model: Any,
    normalizer: VecNormalize,
    demos: Demonstrations,
    *,
    teacher: str,
    world: str | WorldConfig,
    config: EnvConfig,
    rounds: int,
    episodes: int,
    gamma: float,
    seed: int,
    epochs: int | None,
    first_epochs: int,
    action_std: float,
    pool_action_std: float,
    pool_label_scale: float = 1.0,
) -> tuple[Demonstrations, dict[str, float]]:
    """Run DAgger rounds on a cloned model; return every demonstration and the last losses.

    Round ``r`` (from 1) lets the model drive ``episodes`` new senders of the world, drawn
    from seed ``seed + r * DAGGER_SEED_STRIDE``, has the teacher label each state it
    reaches, and refits the model on all demonstrations so far: ``epochs`` passes, or
    :func:`refit_epochs` when ``epochs`` is None. The normaliser's statistics stay as the
    first cloning set them.
    """
    losses: dict[str, float] = {}
    for round_ in range(1, rounds + 1):
        labelled = collect_world(
            teacher,
            world,
            config,
            episodes=episodes,
            gamma=gamma,
            seed=seed + round_ * DAGGER_SEED_STRIDE,
            actor=student_actor(model, normalizer),
        )
        demos = joined([demos, labelled])
        losses = clone(
            model,
            normalizer,
            demos,
            epochs=epochs or refit_epochs(first_epochs, round_),
            seed=seed + round_,
            action_std=action_std,
            pool_action_std=pool_action_std,
            pool_label_scale=pool_label_scale,
            update_statistics=False,
        )
        print(f"DAgger round {round_}: {len(demos.actions)} labelled steps", file=sys.stderr)
    return demos, losses


def set_action_spread(model: Any, *, action_std: float, pool_action_std: float) -> None:
    """Set a Gaussian policy's spread: ``action_std`` the caps', ``pool_action_std`` the pool's.

    SB3 starts every action at a spread of 1.0. For the caps that is a random walk of the
    sending rate; for the pool action (a threshold at +-1/3) it adds and drops IPs at random,
    throwing away their warmup, and PPO learns that dedicated IPs do not pay. Policies
    without a state-independent ``log_std`` (SAC's, gSDE's) are left as they are.
    """
    policy = model.policy
    log_std = getattr(policy, "log_std", None)
    if not isinstance(log_std, torch.nn.Parameter) or log_std.ndim != 1:
        return
    with torch.no_grad():
        log_std.fill_(float(np.log(action_std)))
        log_std[-1] = float(np.log(pool_action_std))
