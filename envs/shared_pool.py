"""The ESP's shared pool: a reputation every tenant moves, in proportion to its volume.

A clean sender's mail lifts the pool a little, a poor list drags it down, and another
tenant's noisy-neighbour incident lowers it for days (DESIGN: "a reputation that averages
its senders (this one included, in proportion to its share of the pool's volume)"; DOMAIN
§8 A2: Yahoo warns that other domains on a shared IP can hurt its reputation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ipwarmup.envs.compiled import ufunc
from ipwarmup.envs.state import SimState

OTHER_TENANTS_DAILY_MESSAGES = 3.0e6
"""Daily volume the shared pool carries for its other tenants, over all providers.

Assumption, no public number (DOMAIN §8 A2: SendGrid groups similar-reputation senders in
shared IP groups; some ISPs cap an IP near 1,000 an hour, so a pool of a few dozen IPs
carries a few million a day). At this size a 100k/day sender moves the pool by about 3% of
the gap between its own standing and the pool's, a 500k/day one by about 14%.
"""


def _moved(base: float, share: float, quality: float) -> float:
    return base + share * (quality - base)


moved_one: Callable[..., Any] = ufunc(3, _moved)
"""The other tenants' reputation ``base`` moved toward this sender's list ``quality`` by its
``share`` of the pool's recent volume (a ufunc)."""


def _share(share: float, day_shared: float, others: float, memory_days: float) -> float:
    today = day_shared / max(day_shared + others, 1.0)
    return share + (today - share) / memory_days


share_one: Callable[..., Any] = ufunc(4, _share)
"""This sender's share of the pool's volume after a day that sent ``day_shared`` on it,
beside the other tenants' ``others``, along the providers' memory (a ufunc; the compiled
end of day calls it at midnight)."""


def standing(state: SimState, day: np.ndarray, *, incidents: bool = True) -> np.ndarray:
    """Return the shared pool's reputation on ``day`` (B,) at every provider, (B, P).

    The other tenants' reputation, moved toward this sender's list quality by its share of
    the pool's recent volume, minus any noisy-neighbour incident under way (unless
    ``incidents`` is false: the pool's normal standing, for calibration).
    """
    moved: np.ndarray = moved_one(state.shared_reputation, state.shared_share, state.quality_today)
    if not incidents:
        return moved
    incident = np.where(state.incident_until_day > day, state.incident_severity, 0.0)
    result: np.ndarray = moved - incident[:, None]
    return result
