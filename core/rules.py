"""Rule-based decisions shared by the AIMD baseline and the served policy's fallback.

Pure numpy on an :class:`~ipwarmup.observation.ObservationView`, so serving can fall back
to the same rule without importing the simulator.
"""

from __future__ import annotations

import numpy as np

from ipwarmup.observation import ObservationView

DEFERRAL_LIMIT = 0.05
"""Deferral share above which AIMD cuts (DOMAIN §2: Adobe escalates soft bounces >30%; a
cautious MTA reacts far earlier)."""
COMPLAINT_LIMIT = 0.001
"""Complaint share above which AIMD cuts (DOMAIN §3: Gmail, keep below 0.1%)."""
BOUNCE_LIMIT = 0.05
"""Bounce share above which AIMD cuts (DOMAIN §3: SES keep under 5%, Braze holds above)."""
DECREASE = 1.5
"""Multiplicative decrease on congestion (DOMAIN §6: Haraka's delay grows 1.5x on 421)."""


def shares(demand_per_hour: np.ndarray) -> np.ndarray:
    """Return each provider's share of demand, (B, P)."""
    share: np.ndarray = demand_per_hour / np.maximum(
        demand_per_hour.sum(axis=1, keepdims=True), 1e-9
    )
    return share


def per_ip(cap_per_hour: np.ndarray, n_ips: np.ndarray) -> np.ndarray:
    """Return the hourly cap per IP from the pool's cap, (B, P)."""
    result: np.ndarray = cap_per_hour / np.maximum(n_ips, 1.0)[:, None]
    return result


def aimd(
    view: ObservationView, *, increase_per_hour: float, per_ip_ceiling: float
) -> tuple[np.ndarray, np.ndarray]:
    """Return (target cap per IP (B, P), grow the pool (B,)) by AIMD on the last period.

    Per provider: a block (any rejection) pauses, cutting the cap to nothing; deferrals,
    complaints or bounces above their limits divide it by ``DECREASE``; otherwise, if
    demand exceeded the cap, ``increase_per_hour`` (split by the demand mix) is added. The
    pool grows when the per-IP cap reached ``per_ip_ceiling`` and demand still exceeds it.
    """
    current = per_ip(view.cap_per_hour, view.n_ips)
    binding = view.sent_share < 0.98
    congested = (
        (view.deferral_rate > DEFERRAL_LIMIT)
        | (view.complaint_rate > COMPLAINT_LIMIT)
        | (view.bounce_rate > BOUNCE_LIMIT)
    )
    target = np.where(binding, current + increase_per_hour * shares(view.demand_per_hour), current)
    target = np.where(congested, current / DECREASE, target)
    target = np.where(view.reject_rate > 0, 0.0, target)
    at_ceiling = current.sum(axis=1) >= per_ip_ceiling
    grow = (at_ceiling & binding.any(axis=1) & ~congested.any(axis=1)) | (view.n_ips == 0)
    return target, grow
