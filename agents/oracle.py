"""The oracle: the reference ceiling, reading the hidden state no real policy can see.

It reads the simulator through its explicit privileged channel
(:meth:`~ipwarmup.envs.simulator.Simulator.privileged`), never through the observation.
It sends just under every provider's true allowance, and it chooses its plan with perfect
foresight: at the start of an episode it replays the whole warmup on copies of the
simulator (same future demand, incidents and tolerances) for every pool size and
headroom it may use, with and without keeping each IP's day within what its provider
tolerates before it sees a spike, staying on the shared pool among them, and keeps the
plan that puts the most mail in the inbox over the horizon and the continuation after it
(the objective's inbox part, ``total_inbox_share``), or with ``objective="reward"`` the
highest return.
"""

from __future__ import annotations

import numpy as np

from ipwarmup.agents.base import BasePolicy
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.privileged import PrivilegedView
from ipwarmup.errors import IPWarmupError

POOL_SIZES = (0, 1, 2, 3, 5, 8)
"""Pool sizes the oracle considers (0 = stay on the shared pool), capped at ``max_ips``."""
HEADROOMS = (0.99, 0.9)
"""Shares of the tightest true allowance the oracle sends at: just under it (it knows the
allowance exactly, so at 99% it is never deferred), or a margin that grows it slower."""
RAMPS = ((HEADROOMS[0], False), (HEADROOMS[1], False), (HEADROOMS[0], True))
"""Headroom and whether to keep each IP's day within its provider's spike tolerance, per
pool size. A ramp at the allowance can grow faster than the provider tolerates (Microsoft:
up to 1.7x a day, a spike from 1.5x), and a spike costs the IP quality that its 30-day
reputation carries; held within the tolerance the allowance grows slower and a queueing
MTA holds more mail back. Which pays depends on the sender, so foresight chooses."""


def plan_table(max_ips: int) -> np.ndarray:
    """Return the plans, one row each: pool size, headroom, 1 to stay within tolerance."""
    plans = [(0.0, HEADROOMS[0], 0.0)]
    plans += [
        (float(n), h, float(tolerate))
        for n in POOL_SIZES
        if 0 < n <= max_ips
        for h, tolerate in RAMPS
    ]
    return np.array(plans)


def track_allowance(
    policy: BasePolicy,
    view: PrivilegedView,
    pool_target: np.ndarray,
    headroom: np.ndarray,
    *,
    within_tolerance: np.ndarray | None = None,
) -> np.ndarray:
    """Return actions that send at ``headroom`` of each provider's tightest true allowance.

    Caps move by one factor per provider, so the factor is the one that brings the IP
    nearest its limit (allowance, cut while throttled) to ``headroom`` of it; IPs still
    ramping on their own (see :func:`~ipwarmup.envs.pool.ramp_warming_ips`) sit below.
    Where ``within_tolerance`` (B,) is true, the factor is also the one at most that lets
    no IP's hourly cap exceed a 24th of the day its provider tolerates
    (:attr:`~ipwarmup.envs.privileged.PrivilegedView.tolerated_volume`), so no day is a spike.
    """
    n_ips = view.n_ips.astype(float)
    actions = np.zeros((len(n_ips), policy.n_providers + 1))
    actions[:, -1] = policy.pool_action(n_ips, pool_target)
    active = np.arange(policy.config.pool.max_ips)[None, :] < n_ips[:, None]
    usable = active[:, :, None] & ~view.blocked
    room = view.acceptance_limit / np.maximum(view.caps, 1e-9)
    tightest = np.where(usable, room, np.inf).min(axis=1)  # (B, P)
    factor = headroom[:, None] * tightest
    if within_tolerance is not None:
        # Hourly caps bound the day whatever the decision interval: 24 of them at most.
        day_room = view.tolerated_volume / (HOURS_PER_DAY * np.maximum(view.caps, 1e-9))
        spiking = np.where(usable, day_room, np.inf).min(axis=1)
        factor = np.where(within_tolerance[:, None], np.minimum(factor, spiking), factor)
    factor = np.where(np.isfinite(tightest), factor, 0.0)
    actions[:, :-1] = policy.cap_action(np.ones_like(factor), factor)
    return actions


class OraclePolicy(BasePolicy):
    """Send just under each provider's true allowance, with the pool foresight picks.

    Bind it to the environment it acts in with :meth:`bind` before acting; rows of the
    observation batch are the simulator's rows. Memory: column 0 the pool size, column 1
    the headroom, column 2 1 where it keeps each IP within its spike tolerance, all chosen
    at the episode's first decision.
    """

    name = "oracle"
    memory_size = 3

    def __init__(self, config: EnvConfig, objective: str = "inbox_share") -> None:
        super().__init__(config)
        if objective not in ("inbox_share", "reward"):
            raise ValueError(f"objective: expected 'inbox_share' or 'reward', got {objective!r}")
        self.objective = objective
        self._view: PrivilegedView | None = None

    def bind(self, view: PrivilegedView) -> OraclePolicy:
        """Give the oracle its privileged channel into the simulator it acts in."""
        self._view = view
        return self

    def _act(self, observation: np.ndarray, memory: np.ndarray) -> np.ndarray:
        if self._view is None:
            raise IPWarmupError(
                "oracle: not bound to a simulator; call bind(env.simulator.privileged())"
            )
        if len(observation) != len(self._view.n_ips):
            raise IPWarmupError(
                f"oracle: got {len(observation)} observations for a simulator of "
                f"{len(self._view.n_ips)} rows; the batch must be the simulator's rows"
            )
        unset = np.isnan(memory[:, 0])
        if unset.any():
            memory[unset] = self._plan()[unset]
        return track_allowance(
            self, self._view, memory[:, 0], memory[:, 1], within_tolerance=memory[:, 2] > 0
        )

    def _plan(self) -> np.ndarray:
        """Replay the rest of the episode for every plan; return the best per row."""
        assert self._view is not None  # checked by _act
        plans = plan_table(self.config.pool.max_ips)
        copies = len(plans)
        future = self._view.foresight(copies)
        view = future.privileged()
        pool = np.tile(plans[:, 0], future.n_envs // copies)
        headroom = np.tile(plans[:, 1], future.n_envs // copies)
        tolerate = np.tile(plans[:, 2] > 0, future.n_envs // copies)
        start_inbox = future.accounting["delivered_inbox"].copy()
        start_demand = future.accounting["demand"].copy()
        reward = np.zeros(future.n_envs)
        done = np.zeros(future.n_envs, dtype=bool)
        while not done.all():
            actions = track_allowance(self, view, pool, headroom, within_tolerance=tolerate)
            result = future.step(actions)
            reward += result.reward
            done = result.truncated
        # The continuation after the horizon counts: what the warmup leaves behind.
        after = future.state.continuation
        inbox = future.accounting["delivered_inbox"] - start_inbox + after["delivered_inbox"]
        demand = future.accounting["demand"] - start_demand + after["demand"]
        objective = reward if self.objective == "reward" else inbox / np.maximum(demand, 1.0)
        score = objective.reshape(-1, copies)
        best = np.argmax(score, axis=1)  # ties go to the earlier, more conservative plan
        chosen: np.ndarray = plans[best]
        return chosen
