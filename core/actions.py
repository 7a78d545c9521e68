"""The action contract, declared once: what a policy's output means to the simulator and to serving.

Numpy only, so serving uses it without gymnasium or torch. An action is a flat vector of
``P + 1`` numbers in [-1, 1] (``P`` providers in configured order):

* entry ``p`` moves every dedicated IP's hourly cap at provider ``p`` by the factor
  ``max_cap_change_per_day ** (a * decision_interval_hours / 24)``, after which caps are
  clipped to ``[min_hourly_cap_messages, max_hourly_cap_messages]``;
* the last entry changes the pool: above ``POOL_THRESHOLD`` add one cold IP, below
  ``-POOL_THRESHOLD`` drop the newest, else hold.

The env id and version live here too: a bundle records them and serving refuses a bundle
from another version, so both sides must read the same constants.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

ENV_ID = "ipwarmup/IPWarmup-v0"
"""The Gymnasium id of the simulator."""
ENV_VERSION = 2
"""Bumped with every change of dynamics, reward or spaces (see the env's Version History)."""
POOL_THRESHOLD = 1.0 / 3.0
"""Pool action above which an IP is added, below minus which one is dropped."""
GROW, HOLD, SHRINK = 1, 0, -1
"""Pool changes as :meth:`ActionCodec.pool_change` returns them."""


@dataclass(frozen=True)
class ActionCodec:
    """Turn actions into cap factors and pool changes, and targets back into actions.

    Args:
        n_providers: providers in the action's order.
        max_cap_change_per_day: largest factor by which a cap moves in a day.
        decision_interval_hours: hours between two decisions.
        min_hourly_cap_messages: lowest cap per IP and provider.
        max_hourly_cap_messages: highest cap per IP and provider.
    """

    n_providers: int
    max_cap_change_per_day: float
    decision_interval_hours: int
    min_hourly_cap_messages: float
    max_hourly_cap_messages: float

    @property
    def size(self) -> int:
        """Entries of one action: one per provider plus the pool."""
        return self.n_providers + 1

    @property
    def log_step(self) -> float:
        """Natural log of the cap factor that an action of 1 gives in one decision."""
        return math.log(self.max_cap_change_per_day ** (self.decision_interval_hours / 24))

    def check(self, actions: np.ndarray) -> np.ndarray:
        """Return ``actions`` as a float64 (B, P + 1) array, refusing NaN, inf and bad shapes.

        Raises:
            ValueError: names the shape expected, or the first non-finite index.
        """
        a = np.asarray(actions, dtype=np.float64)
        if a.ndim == 1:
            a = a[None, :]
        if a.ndim != 2 or a.shape[1] != self.size:
            raise ValueError(
                f"Unexpected action shape {np.shape(actions)}: expected ({self.size},) or "
                f"(n_envs, {self.size}), one entry per provider plus the pool"
            )
        # count_nonzero: numpy's C function, where ndarray.all() goes through Python (~1 µs
        # of a ~35 µs single-env step).
        if np.count_nonzero(np.isfinite(a)) != a.size:
            bad = ~np.isfinite(a)
            row, col = (int(i) for i in np.argwhere(bad)[0])
            raise ValueError(
                f"action[{row}, {col}]: expected a finite number in [-1, 1], got {a[row, col]}"
            )
        return a

    def cap_factors(self, actions: np.ndarray) -> np.ndarray:
        """Return the factor each provider's caps move by, (B, P), for clipped actions."""
        a = np.clip(actions[..., : self.n_providers], -1.0, 1.0)
        factors: np.ndarray = np.exp(a * self.log_step)
        return factors

    def clip_caps(self, caps: np.ndarray) -> np.ndarray:
        """Return caps per IP clipped to the configured bounds."""
        clipped: np.ndarray = np.clip(
            caps, self.min_hourly_cap_messages, self.max_hourly_cap_messages
        )
        return clipped

    @staticmethod
    def pool_change(actions: np.ndarray) -> np.ndarray:
        """Return GROW (1), HOLD (0) or SHRINK (-1) per row from the last action entry."""
        pool = np.asarray(actions)[..., -1]
        change: np.ndarray = np.where(
            pool > POOL_THRESHOLD, GROW, np.where(pool < -POOL_THRESHOLD, SHRINK, HOLD)
        )
        return change

    def cap_action(self, current: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Return the cap actions that move ``current`` caps toward ``target`` caps."""
        ratio = np.maximum(target, 1e-9) / np.maximum(current, 1e-9)
        action: np.ndarray = np.clip(np.log(ratio) / self.log_step, -1.0, 1.0)
        return action

    @staticmethod
    def pool_action(n_ips: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Return the pool action that moves the pool one IP toward ``target`` IPs."""
        action: np.ndarray = np.sign(np.asarray(target) - np.asarray(n_ips)).astype(float)
        return action
