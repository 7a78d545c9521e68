"""The dedicated pool: the agent's actions on caps and pool size, and IPs joining or leaving.

Step functions over a :class:`~ipwarmup.envs.state.SimState`: deterministic, no I/O and no
randomness; they update the state's arrays in place (a copy per hour would dominate the run).
"""

from __future__ import annotations

import numpy as np

from ipwarmup.actions import GROW, SHRINK, ActionCodec
from ipwarmup.envs.config import HOURS_PER_DAY, PoolConfig
from ipwarmup.envs.state import SimState


def add_ip(state: SimState, rows: np.ndarray, pool: PoolConfig) -> None:
    """Append one cold IP to the pool of each env in ``rows`` (row indices)."""
    slot = state.n_ips[rows]
    # A new IP's cap covers all its traffic (SendGrid day 0: 20 per hour); it splits
    # across providers the way the sender's mail does.
    caps = pool.initial_hourly_cap_messages * state.sender.mix[rows]
    state.caps[rows, slot] = np.maximum(caps, pool.min_hourly_cap_messages)
    state.allowance[rows, slot] = state.draw.cold_allowance[rows]
    state.reputation[rows, slot] = state.draw.cold_reputation[rows]
    state.pressure[rows, slot] = 0.0
    state.blocked[rows, slot] = False
    state.blocked_until[rows, slot] = 0.0
    state.recent_volume[rows, slot] = 0.0
    state.previous_day_sent[rows, slot] = 0.0
    state.ip_age_days[rows, slot] = 0.0
    state.n_ips[rows] += 1


def remove_ip(state: SimState, rows: np.ndarray) -> None:
    """Drop the newest IP of each env in ``rows`` (row indices); its history is lost."""
    slot = state.n_ips[rows] - 1
    state.caps[rows, slot] = 0.0
    state.blocked[rows, slot] = False
    state.n_ips[rows] -= 1


def apply_actions(
    state: SimState, actions: np.ndarray, codec: ActionCodec, pool: PoolConfig
) -> None:
    """Scale every active IP's caps and grow, hold or shrink the pool (see ipwarmup.actions).

    ``actions`` are checked and clipped to [-1, 1] already, shape (B, P + 1). The pool
    changes at most once per ``pool_change_min_days``.
    """
    factor = codec.cap_factors(actions)
    active = state.active
    caps = codec.clip_caps(state.caps * factor[:, None, :])
    state.caps = np.where(active[:, :, None], caps, 0.0)
    since = state.hour - state.last_pool_change_hour
    may_change = since >= pool.pool_change_min_days * HOURS_PER_DAY
    change = codec.pool_change(actions)
    grow = may_change & (change == GROW) & (state.n_ips < pool.max_ips)
    shrink = may_change & (change == SHRINK) & (state.n_ips > 0)
    if grow.any():
        add_ip(state, np.flatnonzero(grow), pool)
    if shrink.any():
        remove_ip(state, np.flatnonzero(shrink))
    changed = grow | shrink
    state.last_pool_change_hour = np.where(changed, state.hour, state.last_pool_change_hour)
