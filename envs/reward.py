"""The per-step reward; its formula and range are documented in the env's docstring."""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.envs.config import RewardConfig
from ipwarmup.envs.mta import Period


def _reward_arrays(
    dedicated_inbox_weight: float,
    shared_inbox_weight: float,
    lost_penalty: float,
    block_penalty: float,
    ip_day_penalty: float,
    rejected: np.ndarray,
    expired: np.ndarray,
    inbox_dedicated: np.ndarray,
    inbox_shared: np.ndarray,
    blocks: np.ndarray,
    ip_days: np.ndarray,
    messages_per_period: np.ndarray,
    reward: np.ndarray,
) -> None:
    """Write :func:`period_reward`'s (B,) values into ``reward``; sums run in provider order."""
    n_rows, n_providers = rejected.shape
    for b in range(n_rows):
        lost = rejected[b, 0] + expired[b, 0]
        dedicated = inbox_dedicated[b, 0]
        shared = inbox_shared[b, 0]
        for p in range(1, n_providers):
            lost += rejected[b, p] + expired[b, p]
            dedicated += inbox_dedicated[b, p]
            shared += inbox_shared[b, p]
        mail = (
            dedicated_inbox_weight * dedicated + shared_inbox_weight * shared - lost_penalty * lost
        )
        reward[b] = (
            mail / max(messages_per_period[b], 1.0)
            - block_penalty * blocks[b]
            - ip_day_penalty * ip_days[b]
        )


reward_arrays: Callable[..., None] = numba.njit(cache=True)(_reward_arrays)
"""The compiled :func:`_reward_arrays`."""


def period_reward(
    weights: RewardConfig,
    period: Period,
    *,
    inbox_dedicated: np.ndarray,
    inbox_shared: np.ndarray,
    ip_days: np.ndarray,
    messages_per_period: np.ndarray,
) -> np.ndarray:
    """Return each row's reward for one period, (B,).

    Per message: ``V`` is the episode's expected demand per period (its drawn mean daily
    volume times ``decision_interval_hours / 24``), the same for every period of an
    episode, so a weekend message weighs what a weekday one does and mail held in the
    retry queue earns nothing until it is delivered:
    ``r = (w_ded * inbox_dedicated + w_shared * inbox_shared - w_lost * (rejected +
    expired)) / V - w_block * new_blocks - w_ip * ip_days``.

    Args:
        weights: the reward weights.
        period: the period's accumulators (rejected, expired, blocks).
        inbox_dedicated: (B, P) placed in the inbox from dedicated IPs.
        inbox_shared: (B, P) placed in the inbox from the shared pool.
        ip_days: (B,) dedicated IP-days held in the period.
        messages_per_period: (B,) ``V``, at least 1.
    """
    reward = np.empty(len(ip_days))
    reward_arrays(
        weights.dedicated_inbox_weight, weights.shared_inbox_weight, weights.lost_penalty,
        weights.block_penalty, weights.ip_day_penalty, period.rejected, period.expired,
        np.asarray(inbox_dedicated, dtype=np.float64), np.asarray(inbox_shared, dtype=np.float64),
        period.blocks, np.asarray(ip_days, dtype=np.float64),
        np.asarray(messages_per_period, dtype=np.float64), reward,
    )  # fmt: skip
    return reward
