"""The simulated MTA: hour by hour, send up to the caps, meet the providers, retry or spill over.

Message flow in one hour, per provider (all quantities are fluid message counts):

* demand arrives; in ``queue`` mode the due part of the retry queue joins it;
* the MTA sends up to the dedicated pool's hourly cap, spread over the IPs by their caps;
* each IP's provider accepts up to its hidden allowance (a share of it while the IP is
  throttled) and defers the rest (4xx); a blocked IP's mail is rejected (5xx) and lost;
* what the caps held back and what was deferred goes to the shared pool (``shared`` mode,
  or when the pool is empty) or back to the retry queue, whose messages expire after
  ``max_age_hours``;
* sending far above the allowance builds "ignored-deferral pressure"; past the provider's
  escalation threshold the IP is throttled for hours to weeks, and if the pressure crosses
  it again while throttled, blocked for days (:mod:`~ipwarmup.envs.escalation`).

Step functions over a :class:`~ipwarmup.envs.state.SimState`, updating it in place.
"""

from __future__ import annotations

import numpy as np

from ipwarmup.envs import providers as prov
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.escalation import escalate, lift
from ipwarmup.envs.state import SimState


class Period:
    """Accumulators of one decision period, per provider (B, P) unless noted."""

    def __init__(self, b: int, k: int, p: int) -> None:
        self.demand = np.zeros((b, p))
        self.sent = np.zeros((b, p))
        self.accepted = np.zeros((b, p))
        self.rejected = np.zeros((b, p))
        self.shared = np.zeros((b, p))
        self.expired = np.zeros((b, p))
        self.accepted_ip = np.zeros((b, k, p))
        self.blocks = np.zeros(b)
        self.throttles = np.zeros(b)
        self.queue_start = np.zeros(b)  # messages in the retry queue when the period began


def routing(state: SimState) -> dict[str, np.ndarray]:
    """Return what stays fixed within a period unless a throttle or block starts or ends."""
    caps = state.caps
    total = caps.sum(axis=1)  # (B, P)
    weight = caps / np.maximum(total, 1e-300)[:, None, :]
    open_ = ~state.blocked
    share = np.where(state.throttled, state.draw.throttle_acceptance[:, None, :], 1.0)
    limit = state.allowance * share
    return {
        "total_cap": total,
        "weight": weight,
        "accept": np.where(open_, limit, 0.0),
        # Overshoot per message sent: ratio to what the provider accepts now (zero for
        # blocked IPs, whose mail is rejected, not deferred).
        "per_allowance": np.where(open_, weight / limit, 0.0),
        "reject_share": (weight * state.blocked).sum(axis=1),
    }


def run_hours(state: SimState, period: Period, config: EnvConfig) -> None:
    """Simulate the period's ``decision_interval_hours`` hours, filling ``period``."""
    # The hot loop: plain ufuncs with ``out=`` (np.clip and ndarray.sum cost a Python
    # wrapper each, which dominates at small batches).
    add, mul, minimum, maximum = np.add, np.multiply, np.minimum, np.maximum
    any_of = np.logical_or.reduce
    queue_mode = config.mta.overflow == "queue"
    hours_per_step = config.decision_interval_hours
    d = state.draw
    decay = d.pressure_decay[:, None, :]
    threshold = d.escalation_threshold[:, None, :]
    route = routing(state)
    to_shared = np.where(state.n_ips == 0, 1.0, 0.0 if queue_mode else 1.0)[:, None]
    retry = min(1.0, 1.0 / config.mta.retry_interval_hours)  # share of the queue due each hour
    any_blocked = bool(state.blocked.any())
    any_timed = any_blocked or bool(state.throttled.any())
    day_peak, day_overshoot, pressure = state.day_peak, state.day_overshoot, state.pressure
    first_hour = state.hour_of_day
    hours = slice(first_hour, first_hour + hours_per_step)
    period.demand = state.demand_today[:, hours, :].sum(axis=1)
    for h in range(hours_per_step):
        demand = state.demand_today[:, first_hour + h, :]
        if queue_mode:
            due = state.queue_total * retry
            wanted = demand + due
        else:
            wanted = demand
        sent = minimum(wanted, route["total_cap"])
        sent_ip = sent[:, None, :]
        accept = mul(route["accept"], state.accept_noise_today[:, first_hour + h, None, :])
        accepted_ip = minimum(mul(sent_ip, route["weight"]), accept)
        accepted = add.reduce(accepted_ip, axis=1)
        # IP weights sum to 1 only up to rounding: keep every outflow within `sent`.
        minimum(accepted, sent, out=accepted)
        add(period.accepted_ip, accepted_ip, out=period.accepted_ip)
        maximum(day_peak, accepted_ip, out=day_peak)
        over = mul(sent_ip, route["per_allowance"])
        over -= 1.0
        maximum(over, 0.0, out=over)
        minimum(over, prov.MAX_OVERSHOOT_PER_HOUR, out=over)
        add(day_overshoot, over, out=day_overshoot)
        mul(pressure, decay, out=pressure)
        add(pressure, over, out=pressure)
        add(period.sent, sent, out=period.sent)
        add(period.accepted, accepted, out=period.accepted)
        if any_blocked:  # mail sent to a blocked IP is rejected (5xx) and lost
            rejected = minimum(mul(sent, route["reject_share"]), sent - accepted)
            add(period.rejected, rejected, out=period.rejected)
        if queue_mode:
            leftover = wanted - accepted
            if any_blocked:
                leftover -= rejected
            maximum(leftover, 0.0, out=leftover)
            add(period.shared, leftover * to_shared, out=period.shared)
            queue_hour(state, demand, wanted, leftover, to_shared, retry, period)
        # In shared mode the shared pool takes what dedicated did not: summed below.
        state.ring_clock += 1
        now = state.hour + (h + 1)
        if any_timed and lift(state, now):
            route = routing(state)
            any_blocked = bool(state.blocked.any())
            any_timed = any_blocked or bool(state.throttled.any())
        escalated = pressure > threshold
        if any_of(escalated, axis=None):
            throttles, blocks = escalate(state, escalated, now)  # timed from this hour
            period.throttles += throttles
            period.blocks += blocks
            pressure = state.pressure
            route = routing(state)
            any_blocked = bool(state.blocked.any())
            any_timed = True
    state.hour += hours_per_step
    state.hour_of_day = (first_hour + hours_per_step) % HOURS_PER_DAY
    if not queue_mode:
        shared = period.demand - period.accepted - period.rejected
        period.shared = np.maximum(shared, 0.0)


def queue_hour(
    state: SimState,
    demand: np.ndarray,
    wanted: np.ndarray,
    leftover: np.ndarray,
    to_shared: np.ndarray,
    retry: float,
    period: Period,
) -> None:
    """Move one hour of the retry queue: retries leave, new deferrals join, old expire.

    The queue is a ring of hourly cohorts with a lazy common scale per provider: a retry
    takes the same share of every cohort (each queued message is equally likely to be due),
    which is one multiplication of the scale, not of the ring.
    """
    frac_left = np.divide(leftover, wanted, out=np.zeros_like(wanted), where=wanted > 0)
    stay = frac_left * (1.0 - to_shared)
    keep = 1.0 - min(retry, 1.0) * (1.0 - stay)
    joined = demand * stay
    scale = state.queue_scale * keep
    tiny = scale < 1e-200
    if tiny.any():  # fold the scale into the cohorts before it underflows
        rows, cols = np.nonzero(tiny)
        state.queue_cohorts[rows, cols] *= scale[rows, cols][:, None]
        scale[tiny] = 1.0
    state.queue_scale = scale
    slot = state.ring_clock % state.queue_cohorts.shape[2]
    expired = state.queue_cohorts[:, :, slot] * scale
    state.queue_cohorts[:, :, slot] = joined / scale
    state.queue_total = np.maximum(state.queue_total * keep - expired + joined, 0.0)
    period.expired += expired
