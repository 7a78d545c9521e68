"""The end of a decision period: where the mail landed, what the ESP sees, what is counted.

A step function over a :class:`~ipwarmup.envs.state.SimState`, updating it in place:
accepted and shared traffic is split into bounces, inbox and spam folder by each IP's and
the shared pool's placement; complaints join the feedback feed with each provider's delay;
the period's telemetry and the cumulative accounting are written.
"""

from __future__ import annotations

import numpy as np

from ipwarmup.envs import providers as prov
from ipwarmup.envs import shared_pool
from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.mta import Period
from ipwarmup.envs.state import SimState


def close_period(
    state: SimState,
    period: Period,
    *,
    hours_per_step: int,
    complaint_lag: np.ndarray,
    complaint_feed: np.ndarray,
) -> None:
    """Split the period's traffic into outcomes; write telemetry, accounting and outcomes.

    Args:
        state: the simulator state, updated in place (its clock is at the period's end).
        period: the period's accumulators.
        hours_per_step: hours in a period.
        complaint_lag: (P,) periods before complaints reach the sender.
        complaint_feed: (P,) 1 where the provider runs a feedback loop, else 0.
    """
    s, d = state.sender, state.draw
    bounce = s.bounce_rate[:, None]
    period_day = (state.hour - 1) // HOURS_PER_DAY
    shared_rep = shared_pool.standing(state, period_day)
    base, sens = d.base_inbox_rate, d.placement_sensitivity
    weight = d.ip_reputation_weight
    ip_inbox = prov.inbox_rate(
        state.reputation,
        state.domain_reputation[:, None, :],
        base[:, None, :],
        sens[:, None, :],
        ip_weight=weight[:, None, :],
    )
    shared_inbox = prov.inbox_rate(
        shared_rep, state.domain_reputation, base, sens, ip_weight=weight
    )
    delivered_ip = period.accepted_ip * (1.0 - bounce[:, :, None])
    inbox_dedicated = (delivered_ip * ip_inbox).sum(axis=1)
    delivered_dedicated = delivered_ip.sum(axis=1)
    delivered_shared = period.shared * (1.0 - bounce)
    inbox_shared = delivered_shared * shared_inbox
    inbox = inbox_dedicated + inbox_shared
    delivered = delivered_dedicated + delivered_shared
    transmitted = period.accepted + period.shared
    bounced = transmitted * bounce
    expected = inbox * state.complaint_rate_today[:, None]
    # A feed reports counts: Poisson-like around the expected number (normal approximation,
    # the period's draw made at midnight; never negative).
    start_hour = (state.hour_of_day - hours_per_step) % HOURS_PER_DAY
    z = state.complaint_noise_today[:, start_hour, :]
    complaints = np.maximum(expected + np.sqrt(expected) * z, 0.0)
    state.day_sent += period.accepted_ip
    state.day_shared += period.shared

    history = state.complaint_history
    history[:, 1:] = history[:, :-1]
    history[:, 0] = complaints
    n_providers = history.shape[2]
    reported = history[:, complaint_lag, np.arange(n_providers)] * complaint_feed

    acc = state.accounting
    acc["demand"] += period.demand.sum(axis=1)
    acc["delivered_inbox"] += inbox.sum(axis=1)
    acc["delivered_spam"] += (delivered - inbox).sum(axis=1)
    acc["bounced"] += bounced.sum(axis=1)
    acc["rejected"] += period.rejected.sum(axis=1)
    acc["expired"] += period.expired.sum(axis=1)
    acc["queued"] = state.queue_total.sum(axis=1)
    acc["sent_dedicated"] += period.sent.sum(axis=1)
    acc["accepted_dedicated"] += period.accepted.sum(axis=1)
    acc["sent_shared"] += period.shared.sum(axis=1)
    deferred = np.maximum(period.sent - period.accepted - period.rejected, 0.0)
    acc["deferrals"] += deferred.sum(axis=1)
    acc["block_events"] += period.blocks
    acc["throttle_events"] += period.throttles
    acc["ip_days"] += ip_days(state, hours_per_step)

    state.outcome = {
        "inbox_dedicated": inbox_dedicated,
        "inbox_shared": inbox_shared,
        "delivered_dedicated": delivered_dedicated,
        "delivered_shared": delivered_shared,
    }
    t = state.telemetry
    t.demand_per_hour = period.demand / hours_per_step
    t.demand = period.demand
    t.sent_dedicated = period.sent
    t.accepted = period.accepted
    t.deferred = deferred
    t.rejected = period.rejected
    t.bounced = bounced
    t.transmitted = transmitted
    t.complaints = reported
    t.delivered = delivered
    t.queued = state.queue_total.copy()


def ip_days(state: SimState, hours_per_step: int) -> np.ndarray:
    """Return the dedicated IP-days one period holds, (B,)."""
    days: np.ndarray = state.n_ips * hours_per_step / HOURS_PER_DAY
    return days


def refresh_pool_telemetry(state: SimState, rows: np.ndarray) -> None:
    """Write the pool and clock features the next decision sees, for rows ``rows``."""
    t = state.telemetry
    t.cap_per_hour[rows] = state.caps[rows].sum(axis=1)
    n = state.n_ips[rows]
    active = state.active[rows]
    ages = (state.ip_age_days[rows] * active).sum(axis=1)
    t.n_ips[rows] = n
    t.mean_ip_age_days[rows] = np.divide(ages, n, out=np.zeros(len(rows)), where=n > 0)
    t.day[rows] = state.hour[rows] / HOURS_PER_DAY
    t.weekday[rows] = (state.sender.start_weekday[rows] + state.hour[rows] // HOURS_PER_DAY) % 7
    t.hour[rows] = state.hour[rows] % HOURS_PER_DAY
