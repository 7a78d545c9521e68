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
    state.throttled[rows, slot] = False
    state.throttled_until[rows, slot] = -np.inf
    state.recent_volume[rows, slot] = 0.0
    state.previous_day_sent[rows, slot] = 0.0
    state.peak_history[rows, slot] = 0.0
    state.ip_age_days[rows, slot] = 0.0
    state.n_ips[rows] += 1


def remove_ip(state: SimState, rows: np.ndarray) -> None:
    """Drop the newest IP of each env in ``rows`` (row indices).

    The IP's own record goes with it, but not the sender's: dropping an IP that a provider
    throttles or blocks costs the domain ``domain_block_penalty`` there (hopping to a fresh
    IP does not shed the domain's record, DOMAIN §8B: providers key on the netblock and the
    domains too), and the sender's earlier blocks still lengthen the next ones.
    """
    slot = state.n_ips[rows] - 1
    troubled = state.blocked[rows, slot] | state.throttled[rows, slot]  # (R, P)
    state.domain_reputation[rows] = np.maximum(
        state.domain_reputation[rows] - state.draw.domain_block_penalty[rows] * troubled, 0.0
    )
    state.caps[rows, slot] = 0.0
    state.blocked[rows, slot] = False
    state.throttled[rows, slot] = False
    state.n_ips[rows] -= 1


def ramp_warming_ips(state: SimState, growth: float) -> None:
    """Grow each warming IP's caps by ``growth`` toward the pool's leading IP (at midnight).

    An IP added to a warm pool starts at the new-IP cap, thousands of times below its warm
    siblings; the caps' common factor would keep that ratio, so the new IP would get a
    share of the traffic too small to ever earn trust. As SendGrid's automated warmup does
    (DOMAIN §1: a warming IP follows its own schedule, x1.40 a day, while the others keep
    sending), the MTA ramps it on its own until its caps reach the leading IP's, per
    provider. The agent's action scales every IP on top of this.
    """
    if growth <= 1.0:
        return
    leader = state.caps.max(axis=1, keepdims=True)  # (B, 1, P); empty slots hold 0
    warming = state.active[:, :, None] & (state.caps < leader)
    if warming.any():
        state.caps = np.where(warming, np.minimum(state.caps * growth, leader), state.caps)


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
