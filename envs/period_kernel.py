"""One decision period, compiled: the whole of ``Simulator._advance`` in one numba call.

:func:`advance_period` composes the compiled step functions in the order the simulator
ran them from Python, on the state's arrays, in place:
:func:`~ipwarmup.envs.pool.apply_actions_arrays` (or, in the continuation, caps held at
what every provider accepts), :func:`~ipwarmup.envs.mta.run_period_hours` (the hours with
their throttles and blocks), :func:`~ipwarmup.envs.outcomes.close_arrays` (placement,
telemetry, accounting), :func:`~ipwarmup.envs.reward.reward_arrays`, and at midnight
:func:`~ipwarmup.envs.days.end_day_arrays` and :func:`~ipwarmup.envs.pool.ramp_arrays`;
then the pool and clock features (:func:`~ipwarmup.envs.outcomes.refresh_arrays`). The
next day's draws come from each row's generator
(:meth:`~ipwarmup.envs.simulator.Simulator._start_day`), so the caller starts the day.

Each of those functions is the one its Python step function runs, so the Python path and
this one cannot drift apart; each keeps the numpy version's operations in their order
(see the modules for what changed in the last bits: libm's ``exp`` and ``log``).

A step of the single env used to be a few hundred numpy calls on arrays of a few
elements; it is now this call, whose cost is mostly numba unboxing its arguments.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.days import end_day_arrays
from ipwarmup.envs.escalation import limit_one
from ipwarmup.envs.mta import run_period_hours
from ipwarmup.envs.outcome_kernel import INBOX_DEDICATED, INBOX_SHARED
from ipwarmup.envs.outcomes import close_arrays, refresh_arrays
from ipwarmup.envs.pool import apply_actions_arrays, ramp_arrays
from ipwarmup.envs.providers import DRAW_FIELDS
from ipwarmup.envs.reward import reward_arrays

# Scalars of the configuration, in one float64 array (``settings``).
(
    HOURS_PER_STEP,
    QUEUE_MODE,
    RETRY_INTERVAL_HOURS,
    LOG_STEP,
    MIN_CAP,
    MAX_CAP,
    POOL_CHANGE_MIN_HOURS,
    MAX_IPS,
    INITIAL_CAP,
    WARMING_GROWTH,
    DEDICATED_INBOX_WEIGHT,
    SHARED_INBOX_WEIGHT,
    LOST_PENALTY,
    BLOCK_PENALTY,
    IP_DAY_PENALTY,
    N_SETTINGS,
) = range(16)


def config_settings(config: EnvConfig) -> np.ndarray:
    """Return the configuration's scalars as :func:`advance_period` reads them."""
    values = np.zeros(N_SETTINGS)
    pool, weights, codec = config.pool, config.reward, config.action_codec
    values[HOURS_PER_STEP] = config.decision_interval_hours
    values[QUEUE_MODE] = config.mta.overflow == "queue"
    values[RETRY_INTERVAL_HOURS] = config.mta.retry_interval_hours
    values[LOG_STEP] = codec.log_step
    values[MIN_CAP] = codec.min_hourly_cap_messages
    values[MAX_CAP] = codec.max_hourly_cap_messages
    values[POOL_CHANGE_MIN_HOURS] = pool.pool_change_min_days * HOURS_PER_DAY
    values[MAX_IPS] = pool.max_ips
    values[INITIAL_CAP] = pool.initial_hourly_cap_messages
    values[WARMING_GROWTH] = pool.warming_ip_growth_per_day
    values[DEDICATED_INBOX_WEIGHT] = weights.dedicated_inbox_weight
    values[SHARED_INBOX_WEIGHT] = weights.shared_inbox_weight
    values[LOST_PENALTY] = weights.lost_penalty
    values[BLOCK_PENALTY] = weights.block_penalty
    values[IP_DAY_PENALTY] = weights.ip_day_penalty
    return values


# Rows of the provider draw's block (providers.draw_block) that the period reads.
_COLD_ALLOWANCE = DRAW_FIELDS.index("cold_allowance")
_FULL_ALLOWANCE = DRAW_FIELDS.index("full_allowance")
_TRUST_GROWTH = DRAW_FIELDS.index("trust_growth")
_COOLING_FACTOR = DRAW_FIELDS.index("cooling_factor")
_PEAK_MEMORY_DAYS = DRAW_FIELDS.index("peak_memory_days")
_SPIKE_TOLERANCE = DRAW_FIELDS.index("spike_tolerance")
_ESCALATION_THRESHOLD = DRAW_FIELDS.index("escalation_threshold")
_PRESSURE_DECAY = DRAW_FIELDS.index("pressure_decay")
_THROTTLE_HOURS = DRAW_FIELDS.index("throttle_hours")
_THROTTLE_ACCEPTANCE = DRAW_FIELDS.index("throttle_acceptance")
_PROBATION_HOURS = DRAW_FIELDS.index("probation_hours")
_BLOCK_HOURS = DRAW_FIELDS.index("block_hours")
_BLOCK_PENALTY = DRAW_FIELDS.index("block_penalty")
_REPEAT_OFFENCE_FACTOR = DRAW_FIELDS.index("repeat_offence_factor")
_MAX_REPEAT_FACTOR = DRAW_FIELDS.index("max_repeat_factor")
_DOMAIN_BLOCK_PENALTY = DRAW_FIELDS.index("domain_block_penalty")
_IP_REPUTATION_WEIGHT = DRAW_FIELDS.index("ip_reputation_weight")
_MEMORY_DAYS = DRAW_FIELDS.index("memory_days")
_COLD_REPUTATION = DRAW_FIELDS.index("cold_reputation")
_REPUTATION_VOLUME = DRAW_FIELDS.index("reputation_volume")
_BASE_INBOX_RATE = DRAW_FIELDS.index("base_inbox_rate")
_PLACEMENT_SENSITIVITY = DRAW_FIELDS.index("placement_sensitivity")


def _hold_caps(
    n_ips: np.ndarray,
    caps: np.ndarray,
    allowance: np.ndarray,
    blocked: np.ndarray,
    throttled: np.ndarray,
    throttle_acceptance: np.ndarray,
    min_cap: float,
    max_cap: float,
) -> None:
    """Set every active IP's caps to what its provider accepts now (blocked: the least).

    Empty slots are left to :func:`~ipwarmup.envs.pool.apply_actions_arrays`, which the
    period runs next and which zeroes their caps.
    """
    n_rows, _, n_providers = caps.shape
    for b in range(n_rows):
        for k in range(n_ips[b]):
            for p in range(n_providers):
                limit = limit_one(allowance[b, k, p], throttled[b, k, p], throttle_acceptance[b, p])
                accepted = min_cap if blocked[b, k, p] else limit
                caps[b, k, p] = min(max(accepted, min_cap), max_cap)


hold_caps: Callable[..., None] = numba.njit(cache=True)(_hold_caps)
"""The compiled :func:`_hold_caps`: the continuation's caps before each of its periods."""


def _advance_period(
    settings: np.ndarray,
    hour_of_day: int,
    ring_clock: int,
    hold: bool,
    periods: int,
    actions: np.ndarray,
    hold_utilization: np.ndarray,
    complaint_lag: np.ndarray,
    complaint_feed: np.ndarray,
    hour: np.ndarray,
    n_ips: np.ndarray,
    last_pool_change_hour: np.ndarray,
    ip_age_days: np.ndarray,
    caps: np.ndarray,
    allowance: np.ndarray,
    reputation: np.ndarray,
    pressure: np.ndarray,
    blocked: np.ndarray,
    blocked_until: np.ndarray,
    throttled: np.ndarray,
    throttled_until: np.ndarray,
    recent_volume: np.ndarray,
    previous_day_sent: np.ndarray,
    peak_history: np.ndarray,
    domain_reputation: np.ndarray,
    offences: np.ndarray,
    queue_total: np.ndarray,
    queue_cohorts: np.ndarray,
    queue_scale: np.ndarray,
    complaint_history: np.ndarray,
    shared_reputation: np.ndarray,
    shared_share: np.ndarray,
    incident_until_day: np.ndarray,
    incident_severity: np.ndarray,
    demand_today: np.ndarray,
    accept_noise_today: np.ndarray,
    complaint_noise_today: np.ndarray,
    complaint_rate_today: np.ndarray,
    quality_today: np.ndarray,
    day_sent: np.ndarray,
    day_peak: np.ndarray,
    day_overshoot: np.ndarray,
    day_shared: np.ndarray,
    daily_volume: np.ndarray,
    bounce_rate: np.ndarray,
    start_weekday: np.ndarray,
    mix: np.ndarray,
    draw: np.ndarray,
    period: np.ndarray,
    accepted_ip: np.ndarray,
    events: np.ndarray,
    out: np.ndarray,
    accounting: np.ndarray,
    reward: np.ndarray,
    cap_per_hour: np.ndarray,
    telemetry_ips: np.ndarray,
    mean_ip_age_days: np.ndarray,
    telemetry_day: np.ndarray,
    weekday: np.ndarray,
    telemetry_hour: np.ndarray,
) -> int:
    """Simulate up to ``periods`` periods of every row in place; return how many ran.

    The periods stop after one that ends at midnight (the next day's draws are the
    caller's). ``settings`` holds the configuration's scalars at this module's indices;
    ``hour_of_day`` and ``ring_clock`` are the batch's clock at the first period's start
    (the caller moves them on). ``hold`` runs the continuation's periods: caps held at
    what each provider accepts (``actions`` are then zeros). Written, for the last
    period: ``period`` (6, B, P) its demand, sent, accepted, rejected, shared and expired;
    ``accepted_ip`` (B, K, P) and ``events`` (2, B) new blocks and throttles (each set to
    zero at every period's start, so a caller may pass them again); ``out`` (N_CLOSE, B,
    P) the outcomes and telemetry rows of :func:`~ipwarmup.envs.outcomes.close_arrays`;
    and the pool and clock features.
    ``accounting`` (N, B) is updated and each period's reward is added to ``reward`` (B,),
    in period order. ``draw`` is the provider draw's block
    (:func:`~ipwarmup.envs.providers.draw_block`); every other array is the state's field
    of the same name.
    """
    hours_per_step = int(settings[HOURS_PER_STEP])
    cold_allowance = draw[_COLD_ALLOWANCE]
    full_allowance = draw[_FULL_ALLOWANCE]
    trust_growth = draw[_TRUST_GROWTH]
    cooling_factor = draw[_COOLING_FACTOR]
    peak_memory_days = draw[_PEAK_MEMORY_DAYS]
    spike_tolerance = draw[_SPIKE_TOLERANCE]
    escalation_threshold = draw[_ESCALATION_THRESHOLD]
    pressure_decay = draw[_PRESSURE_DECAY]
    throttle_hours = draw[_THROTTLE_HOURS]
    throttle_acceptance = draw[_THROTTLE_ACCEPTANCE]
    probation_hours = draw[_PROBATION_HOURS]
    block_hours = draw[_BLOCK_HOURS]
    block_penalty = draw[_BLOCK_PENALTY]
    repeat_offence_factor = draw[_REPEAT_OFFENCE_FACTOR]
    max_repeat_factor = draw[_MAX_REPEAT_FACTOR]
    domain_block_penalty = draw[_DOMAIN_BLOCK_PENALTY]
    ip_reputation_weight = draw[_IP_REPUTATION_WEIGHT]
    memory_days = draw[_MEMORY_DAYS]
    cold_reputation = draw[_COLD_REPUTATION]
    reputation_volume = draw[_REPUTATION_VOLUME]
    base_inbox_rate = draw[_BASE_INBOX_RATE]
    placement_sensitivity = draw[_PLACEMENT_SENSITIVITY]
    min_cap, max_cap = settings[MIN_CAP], settings[MAX_CAP]
    n_rows = hour.shape[0]
    ip_days = np.empty(n_rows)
    messages_per_period = np.empty(n_rows)
    period_reward = np.empty(n_rows)
    # One function, not a call per period: a call passes every array again (~3 us here).
    ran = 0
    while ran < periods:
        period[:] = 0.0  # the accumulators start each period at zero
        accepted_ip[:] = 0.0
        events[:] = 0.0
        start = (hour_of_day + ran * hours_per_step) % HOURS_PER_DAY
        clock = ring_clock + ran * hours_per_step
        ran += 1
        if hold:
            hold_caps(n_ips, caps, allowance, blocked, throttled, throttle_acceptance, min_cap,
                      max_cap)  # fmt: skip
        apply_actions_arrays(
            actions, settings[LOG_STEP], min_cap, max_cap, settings[POOL_CHANGE_MIN_HOURS],
            int(settings[MAX_IPS]), settings[INITIAL_CAP], hour, n_ips, last_pool_change_hour,
            caps, allowance, reputation, pressure, blocked, blocked_until, throttled,
            throttled_until, recent_volume, previous_day_sent, peak_history, ip_age_days,
            domain_reputation, mix, cold_allowance, cold_reputation, domain_block_penalty,
        )  # fmt: skip
        blocks, throttles = events[0], events[1]
        run_period_hours(
            hours_per_step, start, clock, settings[QUEUE_MODE] > 0.0,
            settings[RETRY_INTERVAL_HOURS], hour, n_ips, demand_today, accept_noise_today, caps,
            allowance, reputation, pressure, blocked, blocked_until, throttled, throttled_until,
            day_peak, day_overshoot, offences, domain_reputation, queue_total, queue_cohorts,
            queue_scale, pressure_decay, escalation_threshold, throttle_acceptance,
            probation_hours, throttle_hours, block_hours, block_penalty, cold_allowance,
            repeat_offence_factor, max_repeat_factor, domain_block_penalty, period[0],
            period[1], period[2], period[3], period[4], period[5], accepted_ip, blocks, throttles,
        )  # fmt: skip
        end_hour = (start + hours_per_step) % HOURS_PER_DAY
        close_arrays(
            hours_per_step, end_hour, hour, n_ips, reputation, domain_reputation, base_inbox_rate,
            placement_sensitivity, ip_reputation_weight, shared_reputation, shared_share,
            quality_today, incident_until_day, incident_severity, bounce_rate,
            complaint_rate_today, complaint_noise_today, complaint_lag, complaint_feed,
            complaint_history, day_sent, day_shared, queue_total, period[0], period[1],
            period[2], period[3], period[4], period[5], accepted_ip, blocks, throttles, out,
            accounting,
        )  # fmt: skip
        for b in range(n_rows):
            ip_days[b] = n_ips[b] * hours_per_step / HOURS_PER_DAY
            messages_per_period[b] = daily_volume[b] * hours_per_step / HOURS_PER_DAY
        reward_arrays(
            settings[DEDICATED_INBOX_WEIGHT], settings[SHARED_INBOX_WEIGHT],
            settings[LOST_PENALTY], settings[BLOCK_PENALTY], settings[IP_DAY_PENALTY], period[3],
            period[5], out[INBOX_DEDICATED], out[INBOX_SHARED], blocks, ip_days,
            messages_per_period, period_reward,
        )  # fmt: skip
        for b in range(n_rows):
            reward[b] += period_reward[b]
        midnight = end_hour == 0
        if midnight:
            end_day_arrays(
                clock + hours_per_step, hold_utilization, n_ips, mix, quality_today, day_sent,
                day_peak, day_overshoot, day_shared, peak_history, recent_volume,
                previous_day_sent, reputation, allowance, ip_age_days, shared_share,
                domain_reputation, cold_allowance, full_allowance, trust_growth, cooling_factor,
                peak_memory_days, spike_tolerance, cold_reputation, reputation_volume, memory_days,
            )  # fmt: skip
            ramp_arrays(caps, n_ips, settings[WARMING_GROWTH])
        refresh_arrays(caps, n_ips, ip_age_days, hour, start_weekday, cap_per_hour, telemetry_ips,
                       mean_ip_age_days, telemetry_day, weekday, telemetry_hour)  # fmt: skip
        if midnight:
            break
    return ran


advance_period: Callable[..., int] = numba.njit(cache=True)(_advance_period)
"""The compiled :func:`_advance_period`."""
