"""The simulated MTA: hour by hour, send up to the caps, meet the providers, retry or spill over.

Message flow in one hour, per provider (all quantities are fluid message counts):

* demand arrives; in ``queue`` mode the due part of the retry queue joins it;
* the MTA sends up to the dedicated pool's hourly cap, spread over the IPs by their caps;
* each IP's provider accepts up to its hidden allowance (a share of it while the IP is
  throttled) and defers the rest (4xx); a blocked IP's mail is rejected (5xx) and lost;
* in ``shared`` mode what the caps held back goes to the shared pool at once, and what was
  deferred waits in the MTA's queue for the retry interval and is then retried on the
  shared pool (see :func:`hold_hours`); in ``queue`` mode both go back to the retry queue
  (to the shared pool when the pool is empty); queued messages expire after
  ``max_age_hours``;
* sending far above the allowance builds "ignored-deferral pressure"; past the provider's
  escalation threshold the IP is throttled for hours to weeks, and if the pressure crosses
  it again while throttled, blocked for days (:mod:`~ipwarmup.envs.escalation`).

Step functions over a :class:`~ipwarmup.envs.state.SimState`, updating it in place.
"""

from __future__ import annotations

import math

import numpy as np

from ipwarmup.envs import providers as prov
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.escalation import acceptance_limit, escalate, lift
from ipwarmup.envs.hour_kernel import run_until_event, sum_axis1
from ipwarmup.envs.state import SimState


class Period:
    """Accumulators of one decision period, per provider (B, P) unless noted."""

    def __init__(self, b: int, k: int, p: int) -> None:
        # Two allocations, not nine (one per period; each array is a contiguous view).
        per_provider = np.zeros((6, b, p))
        self.demand = per_provider[0]
        self.sent = per_provider[1]
        self.accepted = per_provider[2]
        self.rejected = per_provider[3]
        self.shared = per_provider[4]
        self.expired = per_provider[5]
        self.accepted_ip = np.zeros((b, k, p))
        per_row = np.zeros((2, b))
        self.blocks = per_row[0]
        self.throttles = per_row[1]


def routing(state: SimState) -> dict[str, np.ndarray]:
    """Return what stays fixed within a period unless a throttle or block starts or ends."""
    caps = state.caps
    total = sum_axis1(caps)  # (B, P); numpy's reduction over this axis is slow

    weight = caps / np.maximum(total, 1e-300)[:, None, :]
    open_ = ~state.blocked
    limit = acceptance_limit(state)
    return {
        "total_cap": total,
        "weight": weight,
        "accept": np.where(open_, limit, 0.0),
        # Overshoot per message sent: ratio to what the provider accepts now (zero for
        # blocked IPs, whose mail is rejected, not deferred).
        "per_allowance": np.where(open_, weight / limit, 0.0),
        "reject_share": sum_axis1(weight * state.blocked),
    }


def hold_hours(retry_interval_hours: float) -> int:
    """Return how many hours shared mode holds deferred mail before retrying it on the pool.

    A deferral ends in the MTA's queue, and the retry comes a retry interval later (DOMAIN
    §2: RFC 5321 at least 30 minutes; KumoMTA 20 minutes; SendGrid about 15): an ESP that
    overflows to its shared pool sends the message there at that retry, not at once. The
    simulated MTA attempts each hour's mail as one batch at the hour's start, so mail
    deferred in hour ``h`` is retried with the first batch at or after ``h + interval``:
    hour ``h + ceil(interval)``, the next hour for any interval up to one hour (as the
    queue mode's retry), never before the interval has passed.
    """
    return max(1, math.ceil(retry_interval_hours))


def run_hours(state: SimState, period: Period, config: EnvConfig) -> None:
    """Simulate the period's ``decision_interval_hours`` hours, filling ``period``.

    The hours run in :func:`~ipwarmup.envs.hour_kernel.run_until_event`; at an event (a
    throttle's or block's time is up, or an IP's pressure crossed its threshold) they lift
    and escalate here (:mod:`~ipwarmup.envs.escalation`), in that order, the routing
    follows, and the hours resume.
    """
    queue_mode = config.mta.overflow == "queue"
    hours_per_step = config.decision_interval_hours
    # Contiguous like every other operand: one compiled specialisation of the kernel.
    decay = np.ascontiguousarray(state.draw.pressure_decay)
    threshold = np.ascontiguousarray(state.draw.escalation_threshold)
    route = routing(state)
    # Queue mode's leftover goes back to the queue, unless the pool is empty (shared mode
    # reads no such flag: deferred mail waits, the rest goes to the shared pool).
    to_shared = np.where(state.n_ips == 0, 1.0, 0.0)
    retry = min(1.0, 1.0 / config.mta.retry_interval_hours)  # share of the queue due each hour
    hold = hold_hours(config.mta.retry_interval_hours)
    any_of = np.logical_or.reduce
    any_timed = bool(any_of(state.blocked, axis=None) or any_of(state.throttled, axis=None))
    first_hour = state.hour_of_day
    done = np.zeros(state.n_envs, dtype=np.int64)  # hours of the period each row has run
    while True:
        event = run_until_event(
            done,
            hours_per_step,
            first_hour,
            state.ring_clock,
            state.hour,
            state.n_ips,
            state.demand_today,
            state.accept_noise_today,
            route["total_cap"],
            route["weight"],
            route["accept"],
            route["per_allowance"],
            route["reject_share"],
            to_shared,
            retry,
            hold,
            queue_mode,
            prov.MAX_OVERSHOOT_PER_HOUR,
            decay,
            threshold,
            state.blocked,
            state.blocked_until,
            state.throttled,
            state.throttled_until,
            state.pressure,
            state.day_peak,
            state.day_overshoot,
            state.queue_total,
            state.queue_cohorts,
            state.queue_scale,
            period.demand,
            period.sent,
            period.accepted,
            period.rejected,
            period.shared,
            period.expired,
            period.accepted_ip,
        )
        if not event:
            break
        # Rows that stopped at an event are at their hour; the others ended the period, and
        # the kernel found no block ending and no pressure past its threshold there.
        now = state.hour + done
        if any_timed and lift(state, now):
            route = routing(state)
            any_timed = bool(any_of(state.blocked, axis=None) or any_of(state.throttled, axis=None))
        escalated = state.pressure > threshold[:, None, :]
        if escalated.any():
            throttles, blocks = escalate(state, escalated, now)  # timed from this hour
            period.throttles += throttles
            period.blocks += blocks
            route = routing(state)
            any_timed = True
    state.ring_clock += hours_per_step
    state.hour += hours_per_step
    state.hour_of_day = (first_hour + hours_per_step) % HOURS_PER_DAY
