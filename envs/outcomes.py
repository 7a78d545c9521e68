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
from ipwarmup.envs.hour_kernel import sum_axis1
from ipwarmup.envs.mta import Period
from ipwarmup.envs.outcome_kernel import (
    BOUNCED,
    DEFERRED,
    DELIVERED,
    DELIVERED_DEDICATED,
    DELIVERED_SHARED,
    INBOX_DEDICATED,
    INBOX_SHARED,
    N_SPLIT,
    REPORTED,
    TRANSMITTED,
    split_period,
)
from ipwarmup.envs.state import ACCOUNTING_KEYS, SimState

_SUMMED_KEYS = (*(key for key in ACCOUNTING_KEYS if key != "queued"), "accepted_dedicated")
"""Accounting keys that add the period's per-provider counts: split_period's acc_* order."""


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
    # A feed reports counts: Poisson-like around the expected number (normal approximation,
    # the period's draw made at midnight; never negative): split_period adds the noise.
    start_hour = (state.hour_of_day - hours_per_step) % HOURS_PER_DAY
    complaint_noise = np.ascontiguousarray(state.complaint_noise_today[:, start_hour, :])
    out = np.empty((N_SPLIT, *period.demand.shape))
    acc = state.accounting
    split_period(
        state.n_ips,
        s.bounce_rate,
        state.complaint_rate_today,
        complaint_noise,
        ip_inbox,
        shared_inbox,
        period.accepted_ip,
        period.demand,
        period.sent,
        period.accepted,
        period.rejected,
        period.shared,
        period.expired,
        complaint_lag,
        complaint_feed,
        state.complaint_history,
        state.day_sent,
        state.day_shared,
        out,
        *(acc[key] for key in _SUMMED_KEYS),
    )
    acc["queued"] = np.add.reduce(state.queue_total, axis=1)
    acc["block_events"] += period.blocks
    acc["throttle_events"] += period.throttles
    acc["ip_days"] += ip_days(state, hours_per_step)

    state.outcome = {
        "inbox_dedicated": out[INBOX_DEDICATED],
        "inbox_shared": out[INBOX_SHARED],
        "delivered_dedicated": out[DELIVERED_DEDICATED],
        "delivered_shared": out[DELIVERED_SHARED],
    }
    t = state.telemetry
    t.demand_per_hour = period.demand / hours_per_step
    t.demand = period.demand
    t.sent_dedicated = period.sent
    t.accepted = period.accepted
    t.deferred = out[DEFERRED]
    t.rejected = period.rejected
    t.bounced = out[BOUNCED]
    t.transmitted = out[TRANSMITTED]
    t.complaints = out[REPORTED]
    t.delivered = out[DELIVERED]
    t.queued = state.queue_total.copy()


def ip_days(state: SimState, hours_per_step: int) -> np.ndarray:
    """Return the dedicated IP-days one period holds, (B,)."""
    days: np.ndarray = state.n_ips * hours_per_step / HOURS_PER_DAY
    return days


def refresh_pool_telemetry(state: SimState, rows: np.ndarray | None = None) -> None:
    """Write the pool and clock features the next decision sees, for rows ``rows`` (all)."""
    t = state.telemetry
    if rows is None:  # every row: whole arrays, no gathers (this runs after every step)
        caps, n, age = state.caps, state.n_ips, state.ip_age_days
        hour, start_weekday = state.hour, state.sender.start_weekday
    else:
        caps, n, age = state.caps[rows], state.n_ips[rows], state.ip_age_days[rows]
        hour, start_weekday = state.hour[rows], state.sender.start_weekday[rows]
    active = np.arange(age.shape[1])[None, :] < n[:, None]
    ages = np.add.reduce(age * active, axis=1)
    mean_age = np.divide(ages, n, out=np.zeros(len(n)), where=n > 0)
    day, hour_of_day = np.divmod(hour, HOURS_PER_DAY)
    where = slice(None) if rows is None else rows
    t.cap_per_hour[where] = sum_axis1(caps)
    t.n_ips[where] = n
    t.mean_ip_age_days[where] = mean_age
    t.day[where] = hour / HOURS_PER_DAY
    t.weekday[where] = (start_weekday + day) % 7
    t.hour[where] = hour_of_day
