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
) -> np.ndarray:
    """Return each row's reward for one period, (B,).

    ``H`` is the mail handled in the period (new demand plus the retry queue at its start,
    at least 1): ``r = w_ded * inbox_dedicated / H + w_shared * inbox_shared / H
    - w_lost * (rejected + expired) / H - w_block * new_blocks - w_ip * ip_days``.

    Args:
        weights: the reward weights.
        period: the period's accumulators (demand, rejected, expired, blocks, queue start).
        inbox_dedicated: (B, P) placed in the inbox from dedicated IPs.
        inbox_shared: (B, P) placed in the inbox from the shared pool.
        ip_days: (B,) dedicated IP-days held in the period.
    """
    handled = np.maximum(period.demand.sum(axis=1) + period.queue_start, 1.0)
    lost = (period.rejected + period.expired).sum(axis=1)
    reward: np.ndarray = (
        weights.dedicated_inbox_weight * inbox_dedicated.sum(axis=1) / handled
        + weights.shared_inbox_weight * inbox_shared.sum(axis=1) / handled
        - weights.lost_penalty * lost / handled
        - weights.block_penalty * period.blocks
        - weights.ip_day_penalty * ip_days
    )
    return reward
