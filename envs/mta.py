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
from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.escalation import escalate_arrays, lift_arrays, limit_one
from ipwarmup.envs.hour_kernel import run_until_event
from ipwarmup.envs.provider_config import MAX_OVERSHOOT_PER_HOUR
from ipwarmup.envs.state import SimState


class Period:
    """Accumulators of one decision period, per provider (B, P) unless noted."""

    def __init__(self, b: int, k: int, p: int) -> None:
        # Three allocations, not nine (one per period; each array is a contiguous view).
        self.per_provider = per_provider = np.zeros((6, b, p))
        self.demand = per_provider[0]
        self.sent = per_provider[1]
        self.accepted = per_provider[2]
        self.rejected = per_provider[3]
        self.shared = per_provider[4]
        self.expired = per_provider[5]
        self.accepted_ip = np.zeros((b, k, p))
        self.per_row = per_row = np.zeros((2, b))
        self.blocks = per_row[0]
        self.throttles = per_row[1]


def _route(
    n_ips: np.ndarray,
    caps: np.ndarray,
    allowance: np.ndarray,
    blocked: np.ndarray,
    throttled: np.ndarray,
    throttle_acceptance: np.ndarray,
    total_cap: np.ndarray,
    weight: np.ndarray,
    accept: np.ndarray,
    per_allowance: np.ndarray,
    reject_share: np.ndarray,
) -> None:
    """Write :func:`routing`'s arrays (the last five arguments) from the state's.

    Only the active slots (``k < n_ips[b]``) are written: the hours read no other, and an
    empty slot's caps are 0, so the sums over the active slots are the sums over all (a
    sum of non-negative caps plus 0.0 is that sum, bit for bit).
    """
    n_rows, _, n_providers = caps.shape
    for b in range(n_rows):
        n = n_ips[b]
        for p in range(n_providers):
            total = caps[b, 0, p]
            for k in range(1, n):
                total += caps[b, k, p]
            total_cap[b, p] = total
            share = 0.0
            for k in range(n):
                w = caps[b, k, p] / max(total, 1e-300)
                weight[b, k, p] = w
                limit = limit_one(allowance[b, k, p], throttled[b, k, p], throttle_acceptance[b, p])
                is_blocked = blocked[b, k, p]
                accept[b, k, p] = 0.0 if is_blocked else limit
                # Overshoot per message sent: ratio to what the provider accepts now (zero
                # for blocked IPs, whose mail is rejected, not deferred).
                per_allowance[b, k, p] = 0.0 if is_blocked else w / limit
                blocked_weight = w if is_blocked else 0.0
                share = blocked_weight if k == 0 else share + blocked_weight
            reject_share[b, p] = share


route: Callable[..., None] = numba.njit(cache=True)(_route)
"""The compiled :func:`_route`."""


def routing(state: SimState) -> dict[str, np.ndarray]:
    """Return what stays fixed within a period unless a throttle or block starts or ends."""
    b, k, p = state.caps.shape
    out = {  # zeros: an empty slot has no weight, acceptance or overshoot
        "total_cap": np.empty((b, p)),
        "weight": np.zeros((b, k, p)),
        "accept": np.zeros((b, k, p)),
        "per_allowance": np.zeros((b, k, p)),
        "reject_share": np.empty((b, p)),
    }
    route(
        state.n_ips,
        state.caps,
        state.allowance,
        state.blocked,
        state.throttled,
        state.draw.throttle_acceptance,
        *out.values(),
    )
    return out


def _hold_hours(retry_interval_hours: float) -> int:
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


hold_hours: Callable[[float], int] = numba.njit(cache=True)(_hold_hours)
"""The compiled :func:`_hold_hours`."""


def _run_period_hours(
    hours_per_step: int,
    hour_of_day: int,
    ring_clock: int,
    queue_mode: bool,
    retry_interval_hours: float,
    hour: np.ndarray,
    n_ips: np.ndarray,
    demand_today: np.ndarray,
    accept_noise_today: np.ndarray,
    caps: np.ndarray,
    allowance: np.ndarray,
    reputation: np.ndarray,
    pressure: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    day_peak: np.ndarray,
    day_overshoot: np.ndarray,
    offences: np.ndarray,
    domain_reputation: np.ndarray,
    queue_total: np.ndarray,
    queue_cohorts: np.ndarray,
    queue_scale: np.ndarray,
    pressure_decay: np.ndarray,
    escalation_threshold: np.ndarray,
    throttle_acceptance: np.ndarray,
    probation_hours: np.ndarray,
    throttle_hours: np.ndarray,
    block_hours: np.ndarray,
    block_penalty: np.ndarray,
    cold_allowance: np.ndarray,
    repeat_offence_factor: np.ndarray,
    max_repeat_factor: np.ndarray,
    domain_block_penalty: np.ndarray,
    period_demand: np.ndarray,
    period_sent: np.ndarray,
    period_accepted: np.ndarray,
    period_rejected: np.ndarray,
    period_shared: np.ndarray,
    period_expired: np.ndarray,
    period_accepted_ip: np.ndarray,
    period_blocks: np.ndarray,
    period_throttles: np.ndarray,
) -> None:
    """Run :func:`run_hours` on the state's and the period's arrays, updated in place.

    Advances ``hour`` (B,) by the period; the batch's clock integers are the caller's.
    """
    n_rows, n_slots, n_providers = caps.shape
    total_cap = np.empty((n_rows, n_providers))
    weight = np.empty((n_rows, n_slots, n_providers))
    accept = np.empty((n_rows, n_slots, n_providers))
    per_allowance = np.empty((n_rows, n_slots, n_providers))
    reject_share = np.empty((n_rows, n_providers))
    route(n_ips, caps, allowance, blocked, throttled, throttle_acceptance, total_cap, weight,
          accept, per_allowance, reject_share)  # fmt: skip
    # Queue mode's leftover goes back to the queue, unless the pool is empty (shared mode
    # reads no such flag: deferred mail waits, the rest goes to the shared pool).
    to_shared = np.empty(n_rows)
    for b in range(n_rows):
        to_shared[b] = 1.0 if n_ips[b] == 0 else 0.0
    retry = min(1.0, 1.0 / retry_interval_hours)  # share of the queue due each hour
    hold = hold_hours(retry_interval_hours)
    any_timed = bool(blocked.any() or throttled.any())
    done = np.zeros(n_rows, dtype=np.int64)  # hours of the period each row has run
    now = np.empty(n_rows, dtype=np.int64)
    escalated = np.empty(blocked.shape, dtype=np.bool_)
    while run_until_event(
        done, hours_per_step, hour_of_day, ring_clock, hour, n_ips, demand_today,
        accept_noise_today, total_cap, weight, accept, per_allowance, reject_share, to_shared,
        retry, hold, queue_mode, MAX_OVERSHOOT_PER_HOUR, pressure_decay, escalation_threshold,
        blocked, blocked_until, throttled, throttled_until, pressure, day_peak, day_overshoot,
        queue_total, queue_cohorts, queue_scale, period_demand, period_sent, period_accepted,
        period_rejected, period_shared, period_expired, period_accepted_ip,
    ):  # fmt: skip
        # Rows that stopped at an event are at their hour; the others ended the period, and
        # the kernel found no block ending and no pressure past its threshold there.
        for b in range(n_rows):
            now[b] = hour[b] + done[b]
        rerouted = False
        if any_timed and lift_arrays(now, blocked, blocked_until, throttled, throttled_until):
            rerouted = True
            any_timed = bool(blocked.any() or throttled.any())
        any_escalated = False
        for b in range(n_rows):
            for k in range(n_slots):
                for p in range(n_providers):
                    over = pressure[b, k, p] > escalation_threshold[b, p]
                    escalated[b, k, p] = over
                    any_escalated = any_escalated or over
        if any_escalated:
            escalate_arrays(
                escalated, now, pressure, blocked, blocked_until, throttled, throttled_until,
                reputation, allowance, offences, domain_reputation, probation_hours,
                throttle_hours, block_hours, block_penalty, cold_allowance,
                repeat_offence_factor, max_repeat_factor, domain_block_penalty,
                period_throttles, period_blocks,
            )  # fmt: skip
            rerouted = True
            any_timed = True
        if rerouted:
            route(n_ips, caps, allowance, blocked, throttled, throttle_acceptance, total_cap,
                  weight, accept, per_allowance, reject_share)  # fmt: skip
    for b in range(n_rows):
        hour[b] += hours_per_step


run_period_hours: Callable[..., None] = numba.njit(cache=True)(_run_period_hours)
"""The compiled :func:`_run_period_hours`."""


def run_hours(state: SimState, period: Period, config: EnvConfig) -> None:
    """Simulate the period's ``decision_interval_hours`` hours, filling ``period``.

    The hours run in :func:`~ipwarmup.envs.hour_kernel.run_until_event`; at an event (a
    throttle's or block's time is up, or an IP's pressure crossed its threshold) they lift
    and escalate (:mod:`~ipwarmup.envs.escalation`), in that order, the routing follows,
    and the hours resume; all of it compiled (:func:`_run_period_hours`).
    """
    d = state.draw
    hours_per_step = config.decision_interval_hours
    run_period_hours(
        hours_per_step, state.hour_of_day, state.ring_clock, config.mta.overflow == "queue",
        config.mta.retry_interval_hours, state.hour, state.n_ips, state.demand_today,
        state.accept_noise_today, state.caps, state.allowance, state.reputation,
        state.pressure, state.blocked, state.blocked_until, state.throttled,
        state.throttled_until, state.day_peak, state.day_overshoot, state.offences,
        state.domain_reputation, state.queue_total, state.queue_cohorts, state.queue_scale,
        d.pressure_decay, d.escalation_threshold, d.throttle_acceptance, d.probation_hours,
        d.throttle_hours, d.block_hours, d.block_penalty, d.cold_allowance,
        d.repeat_offence_factor, d.max_repeat_factor, d.domain_block_penalty, period.demand,
        period.sent, period.accepted, period.rejected, period.shared, period.expired,
        period.accepted_ip, period.blocks, period.throttles,
    )  # fmt: skip
    state.ring_clock += hours_per_step
    state.hour_of_day = (state.hour_of_day + hours_per_step) % HOURS_PER_DAY
