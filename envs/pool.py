"""The dedicated pool: the agent's actions on caps and pool size, and IPs joining or leaving.

Step functions over a :class:`~ipwarmup.envs.state.SimState`: deterministic, no I/O and no
randomness; they update the state's arrays in place (a copy per hour would dominate the run).
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.actions import POOL_THRESHOLD, ActionCodec
from ipwarmup.envs.config import HOURS_PER_DAY, PoolConfig
from ipwarmup.envs.state import SimState


def _add_ip_row(
    b: int,
    initial_cap: float,
    min_cap: float,
    n_ips: np.ndarray,
    caps: np.ndarray,
    allowance: np.ndarray,
    reputation: np.ndarray,
    pressure: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    recent_volume: np.ndarray,
    previous_day_sent: np.ndarray,
    peak_history: np.ndarray,
    ip_age_days: np.ndarray,
    mix: np.ndarray,
    cold_allowance: np.ndarray,
    cold_reputation: np.ndarray,
) -> None:
    """Append one cold IP to row ``b``'s pool (see :func:`add_ip`)."""
    n = n_ips[b]
    for p in range(caps.shape[2]):
        # A new IP's cap covers all its traffic (SendGrid day 0: 20 per hour); it splits
        # across providers the way the sender's mail does.
        caps[b, n, p] = max(initial_cap * mix[b, p], min_cap)
        allowance[b, n, p] = cold_allowance[b, p]
        reputation[b, n, p] = cold_reputation[b, p]
        pressure[b, n, p] = 0.0
        blocked[b, n, p] = False
        blocked_until[b, n, p] = 0.0
        throttled[b, n, p] = False
        throttled_until[b, n, p] = -np.inf
        recent_volume[b, n, p] = 0.0
        previous_day_sent[b, n, p] = 0.0
        peak_history[b, n, p, :] = 0.0
    ip_age_days[b, n] = 0.0
    n_ips[b] = n + 1


add_ip_row: Callable[..., None] = numba.njit(cache=True)(_add_ip_row)
"""The compiled :func:`_add_ip_row`."""


def _add_ip_rows(
    rows: np.ndarray,
    initial_cap: float,
    min_cap: float,
    n_ips: np.ndarray,
    caps: np.ndarray,
    allowance: np.ndarray,
    reputation: np.ndarray,
    pressure: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    recent_volume: np.ndarray,
    previous_day_sent: np.ndarray,
    peak_history: np.ndarray,
    ip_age_days: np.ndarray,
    mix: np.ndarray,
    cold_allowance: np.ndarray,
    cold_reputation: np.ndarray,
) -> None:
    """Run :func:`_add_ip_row` on each row of ``rows`` in turn (one call, not one a row)."""
    for r in range(rows.shape[0]):
        add_ip_row(
            rows[r], initial_cap, min_cap, n_ips, caps, allowance, reputation, pressure,
            blocked, blocked_until, throttled, throttled_until, recent_volume,
            previous_day_sent, peak_history, ip_age_days, mix, cold_allowance, cold_reputation,
        )  # fmt: skip


add_ip_rows: Callable[..., None] = numba.njit(cache=True)(_add_ip_rows)
"""The compiled :func:`_add_ip_rows`."""


def _remove_ip_row(
    b: int,
    n_ips: np.ndarray,
    caps: np.ndarray,
    blocked: np.ndarray,
    throttled: np.ndarray,
    domain_reputation: np.ndarray,
    domain_block_penalty: np.ndarray,
) -> None:
    """Drop the newest IP of row ``b``'s pool (see :func:`remove_ip`)."""
    slot = n_ips[b] - 1
    for p in range(caps.shape[2]):
        troubled = 1.0 if blocked[b, slot, p] or throttled[b, slot, p] else 0.0
        domain_reputation[b, p] = max(
            domain_reputation[b, p] - domain_block_penalty[b, p] * troubled, 0.0
        )
        caps[b, slot, p] = 0.0
        blocked[b, slot, p] = False
        throttled[b, slot, p] = False
    n_ips[b] = slot


remove_ip_row: Callable[..., None] = numba.njit(cache=True)(_remove_ip_row)
"""The compiled :func:`_remove_ip_row`."""


def add_ip(state: SimState, rows: np.ndarray, pool: PoolConfig) -> None:
    """Append one cold IP to the pool of each env in ``rows`` (row indices)."""
    d = state.draw
    add_ip_rows(
        np.asarray(rows, dtype=np.int64), float(pool.initial_hourly_cap_messages),
        float(pool.min_hourly_cap_messages), state.n_ips, state.caps, state.allowance,
        state.reputation, state.pressure, state.blocked, state.blocked_until, state.throttled,
        state.throttled_until, state.recent_volume, state.previous_day_sent, state.peak_history,
        state.ip_age_days, state.sender.mix, d.cold_allowance, d.cold_reputation,
    )  # fmt: skip


def remove_ip(state: SimState, rows: np.ndarray) -> None:
    """Drop the newest IP of each env in ``rows`` (row indices).

    The IP's own record goes with it, but not the sender's: dropping an IP that a provider
    throttles or blocks costs the domain ``domain_block_penalty`` there (hopping to a fresh
    IP does not shed the domain's record, DOMAIN §8B: providers key on the netblock and the
    domains too), and the sender's earlier blocks still lengthen the next ones.
    """
    for b in np.asarray(rows).tolist():
        remove_ip_row(
            b, state.n_ips, state.caps, state.blocked, state.throttled,
            state.domain_reputation, state.draw.domain_block_penalty,
        )  # fmt: skip


def _ramp_arrays(caps: np.ndarray, n_ips: np.ndarray, growth: float) -> None:
    """Run :func:`ramp_warming_ips` on the caps (B, K, P), updated in place."""
    if growth <= 1.0:
        return
    n_rows, n_slots, n_providers = caps.shape
    for b in range(n_rows):
        for p in range(n_providers):
            leader = caps[b, 0, p]  # empty slots hold 0
            for k in range(1, n_slots):
                leader = max(leader, caps[b, k, p])
            for k in range(n_ips[b]):
                if caps[b, k, p] < leader:
                    caps[b, k, p] = min(caps[b, k, p] * growth, leader)


ramp_arrays: Callable[..., None] = numba.njit(cache=True)(_ramp_arrays)
"""The compiled :func:`_ramp_arrays`."""


def ramp_warming_ips(state: SimState, growth: float) -> None:
    """Grow each warming IP's caps by ``growth`` toward the pool's leading IP (at midnight).

    An IP added to a warm pool starts at the new-IP cap, thousands of times below its warm
    siblings; the caps' common factor would keep that ratio, so the new IP would get a
    share of the traffic too small to ever earn trust. As SendGrid's automated warmup does
    (DOMAIN §1: a warming IP follows its own schedule, x1.40 a day, while the others keep
    sending), the MTA ramps it on its own until its caps reach the leading IP's, per
    provider. The agent's action scales every IP on top of this.
    """
    ramp_arrays(state.caps, state.n_ips, growth)


def _apply_actions_arrays(
    actions: np.ndarray,
    log_step: float,
    min_cap: float,
    max_cap: float,
    pool_change_min_hours: float,
    max_ips: int,
    initial_cap: float,
    hour: np.ndarray,
    n_ips: np.ndarray,
    last_pool_change_hour: np.ndarray,
    caps: np.ndarray,
    allowance: np.ndarray,
    reputation: np.ndarray,
    pressure: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    recent_volume: np.ndarray,
    previous_day_sent: np.ndarray,
    peak_history: np.ndarray,
    ip_age_days: np.ndarray,
    domain_reputation: np.ndarray,
    mix: np.ndarray,
    cold_allowance: np.ndarray,
    cold_reputation: np.ndarray,
    domain_block_penalty: np.ndarray,
) -> None:
    """Run :func:`apply_actions` on the state's arrays, updated in place.

    ``log_step`` is the codec's; ``pool_change_min_hours`` the pool's least time between
    two changes; the rest as in :func:`add_ip` and :func:`remove_ip` (one row at a time).
    """
    n_rows, n_slots, n_providers = caps.shape
    for b in range(n_rows):
        n = n_ips[b]
        for p in range(n_providers):
            factor = np.exp(min(max(actions[b, p], -1.0), 1.0) * log_step)
            for k in range(n_slots):
                scaled = min(max(caps[b, k, p] * factor, min_cap), max_cap)
                caps[b, k, p] = scaled if k < n else 0.0
        pool = actions[b, n_providers]
        if hour[b] - last_pool_change_hour[b] < pool_change_min_hours:
            continue
        if pool > POOL_THRESHOLD and n < max_ips:
            add_ip_row(
                b, initial_cap, min_cap, n_ips, caps, allowance, reputation, pressure, blocked,
                blocked_until, throttled, throttled_until, recent_volume, previous_day_sent,
                peak_history, ip_age_days, mix, cold_allowance, cold_reputation,
            )  # fmt: skip
            last_pool_change_hour[b] = hour[b]
        elif pool < -POOL_THRESHOLD and n > 0:
            remove_ip_row(
                b, n_ips, caps, blocked, throttled, domain_reputation, domain_block_penalty
            )
            last_pool_change_hour[b] = hour[b]


apply_actions_arrays: Callable[..., None] = numba.njit(cache=True)(_apply_actions_arrays)
"""The compiled :func:`_apply_actions_arrays`."""


def apply_actions(
    state: SimState, actions: np.ndarray, codec: ActionCodec, pool: PoolConfig
) -> None:
    """Scale every active IP's caps and grow, hold or shrink the pool (see ipwarmup.actions).

    ``actions`` are checked (finite), shape (B, P + 1); cap actions are clipped to
    [-1, 1]. The pool changes at most once per ``pool_change_min_days``. Runs compiled
    (:func:`_apply_actions_arrays`).
    """
    d = state.draw
    apply_actions_arrays(
        np.ascontiguousarray(actions, dtype=np.float64), codec.log_step,
        codec.min_hourly_cap_messages, codec.max_hourly_cap_messages,
        pool.pool_change_min_days * HOURS_PER_DAY, pool.max_ips,
        pool.initial_hourly_cap_messages, state.hour, state.n_ips,
        state.last_pool_change_hour, state.caps, state.allowance, state.reputation,
        state.pressure, state.blocked, state.blocked_until, state.throttled,
        state.throttled_until, state.recent_volume, state.previous_day_sent,
        state.peak_history, state.ip_age_days, state.domain_reputation, state.sender.mix,
        d.cold_allowance, d.cold_reputation, d.domain_block_penalty,
    )  # fmt: skip
