"""The per-step reward; its formula and range are documented in the env's docstring."""

from __future__ import annotations

import numpy as np

from ipwarmup.envs.config import RewardConfig
from ipwarmup.envs.mta import Period


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
    lost = (period.rejected + period.expired).sum(axis=1)
    mail = (
        weights.dedicated_inbox_weight * inbox_dedicated.sum(axis=1)
        + weights.shared_inbox_weight * inbox_shared.sum(axis=1)
        - weights.lost_penalty * lost
    )
    reward: np.ndarray = (
        mail / np.maximum(messages_per_period, 1.0)
        - weights.block_penalty * period.blocks
        - weights.ip_day_penalty * ip_days
    )
    return reward
