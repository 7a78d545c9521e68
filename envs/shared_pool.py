"""The ESP's shared pool: a reputation every tenant moves, in proportion to its volume.

A clean sender's mail lifts the pool a little, a poor list drags it down, and another
tenant's noisy-neighbour incident lowers it for days (DESIGN: "a reputation that averages
its senders (this one included, in proportion to its share of the pool's volume)"; DOMAIN
§8 A2: Yahoo warns that other domains on a shared IP can hurt its reputation).
"""

from __future__ import annotations

import numpy as np

from ipwarmup.envs.state import SimState

OTHER_TENANTS_DAILY_MESSAGES = 3.0e6
"""Daily volume the shared pool carries for its other tenants, over all providers.

Assumption, no public number (DOMAIN §8 A2: SendGrid groups similar-reputation senders in
shared IP groups; some ISPs cap an IP near 1,000 an hour, so a pool of a few dozen IPs
carries a few million a day). At this size a 100k/day sender moves the pool by about 3% of
the gap between its own standing and the pool's, a 500k/day one by about 14%.
"""


def standing(state: SimState, day: np.ndarray, *, incidents: bool = True) -> np.ndarray:
    """Return the shared pool's reputation on ``day`` (B,) at every provider, (B, P).

    The other tenants' reputation, moved toward this sender's list quality by its share of
    the pool's recent volume, minus any noisy-neighbour incident under way (unless
    ``incidents`` is false: the pool's normal standing, for calibration).
    """
    base = state.shared_reputation
    moved: np.ndarray = base + state.shared_share * (state.quality_today - base)
    if not incidents:
        return moved
    incident = np.where(state.incident_until_day > day, state.incident_severity, 0.0)
    result: np.ndarray = moved - incident[:, None]
    return result


def update_share(state: SimState) -> None:
    """Move this sender's share of the pool's volume along the providers' memory (midnight)."""
    others = OTHER_TENANTS_DAILY_MESSAGES * state.sender.mix
    today = state.day_shared / np.maximum(state.day_shared + others, 1.0)
    state.shared_share += (today - state.shared_share) / state.draw.memory_days
