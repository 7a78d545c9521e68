"""What happens at midnight: providers re-judge every IP and the domain, a new day is drawn.

Step functions over a :class:`~ipwarmup.envs.state.SimState`, updating it in place. The
day's randomness comes in as uniforms that each row drew from its own generator, so a batch
stays identical to single envs seeded alike.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

from ipwarmup.envs import providers as prov
from ipwarmup.envs import sender as snd
from ipwarmup.envs.compiled import ufunc
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.hour_kernel import held_one, window_max
from ipwarmup.envs.shared_pool import OTHER_TENANTS_DAILY_MESSAGES, share_one
from ipwarmup.envs.state import SimState


def _start_day_arrays(
    rows: np.ndarray,
    uniforms: np.ndarray,
    normals: np.ndarray,
    demand_parameters: np.ndarray,
    weekly: np.ndarray,
    hourly: np.ndarray,
    campaign_window: np.ndarray,
    campaign_days: np.ndarray,
    incident_parameters: np.ndarray,
    hour: np.ndarray,
    daily_volume: np.ndarray,
    growth: np.ndarray,
    growth_messages: np.ndarray,
    start_weekday: np.ndarray,
    mix: np.ndarray,
    complaint_rate: np.ndarray,
    bounce_rate: np.ndarray,
    trap_rate: np.ndarray,
    acceptance_noise: np.ndarray,
    complaint_threshold: np.ndarray,
    bounce_threshold: np.ndarray,
    demand_today: np.ndarray,
    complaint_rate_today: np.ndarray,
    accept_noise_today: np.ndarray,
    complaint_noise_today: np.ndarray,
    quality_today: np.ndarray,
    incident_until_day: np.ndarray,
    incident_severity: np.ndarray,
    day_sent: np.ndarray,
    day_peak: np.ndarray,
    day_overshoot: np.ndarray,
    day_shared: np.ndarray,
) -> None:
    """Run :func:`start_day` on the state's arrays for rows ``rows``, updated in place.

    ``incident_parameters`` is (probability per day, duration low, high, severity low,
    high); ``demand_parameters`` and the shapes hold one row per env of the batch
    (:class:`~ipwarmup.envs.sender.RowShapes`), each as
    :func:`~ipwarmup.envs.sender.demand_row` reads it.
    """
    probability, duration_low, duration_high, severity_low, severity_high = (
        incident_parameters[0], incident_parameters[1], incident_parameters[2],
        incident_parameters[3], incident_parameters[4],
    )  # fmt: skip
    n_providers = mix.shape[1]
    for r in range(rows.shape[0]):
        b = rows[r]
        u = uniforms[r]
        day = hour[b] // HOURS_PER_DAY
        snd.demand_row(
            demand_parameters[b], weekly[b], hourly[b], campaign_window[b], campaign_days[b],
            daily_volume[b], growth[b], growth_messages[b], start_weekday[b], mix[b], day, u,
            demand_today[b],
        )  # fmt: skip
        noise = np.exp(0.3 * snd.normal_one(u[4], u[5]))
        complaint = min(complaint_rate[b] * noise, 1.0)
        complaint_rate_today[b] = complaint
        for p in range(n_providers):
            # What the ESP sees is sampled (issue 9): acceptance moves hour to hour around
            # the allowance, log-normal with mean 1; complaint counts are Poisson-like
            # (see outcomes).
            sigma = acceptance_noise[b, p]
            for h in range(HOURS_PER_DAY):
                accept_noise_today[b, h, p] = np.exp(sigma * normals[r, 0, h, p] - 0.5 * sigma**2)
                complaint_noise_today[b, h, p] = normals[r, 1, h, p]
            quality_today[b, p] = prov.daily_quality_one(
                complaint, bounce_rate[b], trap_rate[b], complaint_threshold[b, p],
                bounce_threshold[b, p],
            )  # fmt: skip
        # Noisy neighbours (DESIGN: incidents lower the shared pool's placement for days).
        idle = incident_until_day[b] <= day
        if idle and u[6] < probability:
            incident_until_day[b] = day + duration_low + (duration_high - duration_low) * u[7]
            incident_severity[b] = severity_low + (severity_high - severity_low) * u[8]
        elif idle:
            incident_severity[b] = 0.0
        day_sent[b] = 0.0
        day_peak[b] = 0.0
        day_overshoot[b] = 0.0
        day_shared[b] = 0.0


start_day_arrays: Callable[..., None] = numba.njit(cache=True)(_start_day_arrays)
"""The compiled :func:`_start_day_arrays`."""


def incident_parameters(config: EnvConfig) -> np.ndarray:
    """Return the shared pool's incident numbers as :func:`_start_day_arrays` reads them."""
    shared = config.shared_pool
    return np.array(
        [shared.incident_probability_per_day, *shared.incident_duration_days,
         *shared.incident_severity]
    )  # fmt: skip


def start_day_arguments(
    state: SimState, config: EnvConfig, shapes: snd.RowShapes
) -> tuple[np.ndarray, ...]:
    """Return what :func:`_start_day_arrays` reads after its rows and draws, in its order."""
    s, d = state.sender, state.draw
    return (
        shapes.parameters, shapes.weekly, shapes.hourly, shapes.campaign_window,
        shapes.campaign_days, incident_parameters(config), state.hour, s.daily_volume,
        s.growth, s.growth_messages, s.start_weekday, s.mix, s.complaint_rate, s.bounce_rate,
        s.trap_rate, d.acceptance_noise, d.complaint_threshold, d.bounce_threshold,
        state.demand_today, state.complaint_rate_today, state.accept_noise_today,
        state.complaint_noise_today, state.quality_today, state.incident_until_day,
        state.incident_severity, state.day_sent, state.day_peak, state.day_overshoot,
        state.day_shared,
    )  # fmt: skip


def start_day(
    state: SimState,
    rows: np.ndarray,
    uniforms: np.ndarray,
    config: EnvConfig,
    shapes: snd.RowShapes,
    normals: np.ndarray,
) -> None:
    """Lay out the day's hourly demand of rows ``rows``, its sampling noise, and incidents.

    Args:
        state: the simulator state, updated in place.
        rows: row indices.
        uniforms: (len(rows), N_DAILY_UNIFORMS) the rows' draws for the day.
        config: the env configuration.
        shapes: each row's demand numbers and weekday, hour and campaign weights.
        normals: (len(rows), 2, 24, P) standard normals: each hour's acceptance noise and
            the complaints reported in a period that starts at that hour.
    """
    start_day_arrays(
        np.asarray(rows, dtype=np.int64), uniforms, normals,
        *start_day_arguments(state, config, shapes),
    )  # fmt: skip


def _spike_reference(
    recent_volume: float, previous_day_sent: float, cold_allowance: float
) -> float:
    return max(max(recent_volume, previous_day_sent), cold_allowance * HOURS_PER_DAY)


spike_reference_one: Callable[..., Any] = ufunc(3, _spike_reference)
"""The ufunc of :func:`spike_reference`."""


def spike_reference(state: SimState) -> np.ndarray:
    """Return the day's volume each IP's provider compares today's with, (B, K, P).

    The larger of the IP's recent average and its previous day, and never below a day at
    the cold allowance (see :func:`end_day`: a day above ``spike_tolerance`` times this
    costs the IP quality).
    """
    reference: np.ndarray = spike_reference_one(
        state.recent_volume, state.previous_day_sent, state.draw.cold_allowance[:, None, :]
    )
    return reference


def held_peak(state: SimState) -> np.ndarray:
    """Record today's busiest hours; return each IP's busiest of its providers' memory.

    ``state.peak_history`` is a ring of days (the batch's day count modulo its length);
    provider ``p`` remembers its last ``peak_memory_days[p]`` days, today included.
    """
    history = state.peak_history
    today = (state.ring_clock // HOURS_PER_DAY) % history.shape[-1]
    history[..., today] = state.day_peak
    return window_max(history, today, state.draw.peak_memory_days)


def _end_day_arrays(
    ring_clock: int,
    hold_utilization: np.ndarray,
    n_ips: np.ndarray,
    mix: np.ndarray,
    quality_today: np.ndarray,
    day_sent: np.ndarray,
    day_peak: np.ndarray,
    day_overshoot: np.ndarray,
    day_shared: np.ndarray,
    peak_history: np.ndarray,
    recent_volume: np.ndarray,
    previous_day_sent: np.ndarray,
    reputation: np.ndarray,
    allowance: np.ndarray,
    ip_age_days: np.ndarray,
    shared_share: np.ndarray,
    domain_reputation: np.ndarray,
    cold_allowance: np.ndarray,
    full_allowance: np.ndarray,
    trust_growth: np.ndarray,
    cooling_factor: np.ndarray,
    peak_memory_days: np.ndarray,
    spike_tolerance: np.ndarray,
    cold_reputation: np.ndarray,
    reputation_volume: np.ndarray,
    memory_days: np.ndarray,
) -> None:
    """Run :func:`end_day` on the state's arrays, updated in place.

    ``ring_clock`` is at the day's end, as :func:`held_peak` reads it.
    """
    n_rows, n_slots, n_providers = day_sent.shape
    window = peak_history.shape[-1]
    today = (ring_clock // HOURS_PER_DAY) % window
    for b in range(n_rows):
        n = n_ips[b]
        for p in range(n_providers):
            quality = quality_today[b, p]
            memory = min(int(peak_memory_days[b, p]), window)
            total = 0.0
            judged = 0.0
            for k in range(n_slots):
                # Today's busiest hour joins the ring of every slot (held_one reads it
                # below); here rather than as a slice: numba's 4-D strided copy took a
                # tenth of the day's end.
                peak_history[b, k, p, today] = day_peak[b, k, p]
                sent = day_sent[b, k, p]
                if k >= n and sent == 0.0:
                    # An idle slot adds exactly nothing to the sums (both start at 0.0):
                    # skip its quality, most of the day's end at 256 rows (8 slots, 1 to 3
                    # in use).
                    continue
                reference = spike_reference_one(
                    recent_volume[b, k, p], previous_day_sent[b, k, p], cold_allowance[b, p]
                )
                overshoot = min(max(day_overshoot[b, k, p] / HOURS_PER_DAY, 0.0), 1.0)
                ip_quality = (
                    quality
                    - 0.3 * overshoot
                    - prov.spike_penalty_one(sent, reference, spike_tolerance[b, p])
                )
                ip_quality = min(max(ip_quality, 0.0), 1.0)
                # Sums over every slot, in slot order (the domain is judged on all its mail).
                total = sent if k == 0 else total + sent
                judged = sent * ip_quality if k == 0 else judged + sent * ip_quality
                if k >= n:
                    continue
                updated = prov.update_reputation_one(
                    reputation[b, k, p], ip_quality, sent, cold_reputation[b, p],
                    reputation_volume[b, p], memory_days[b, p],
                )  # fmt: skip
                held = held_one(peak_history, b, k, p, today, memory)
                allowance[b, k, p] = prov.update_allowance_one(
                    allowance[b, k, p], day_peak[b, k, p], held, hold_utilization[p],
                    trust_growth[b, p], cooling_factor[b, p], full_allowance[b, p],
                    cold_allowance[b, p], updated,
                )  # fmt: skip
                reputation[b, k, p] = min(max(updated, 0.0), 1.0)
                recent_volume[b, k, p] += (sent - recent_volume[b, k, p]) / 7.0
                previous_day_sent[b, k, p] = sent
            shared = day_shared[b, p]
            others = OTHER_TENANTS_DAILY_MESSAGES * mix[b, p]
            shared_share[b, p] = share_one(shared_share[b, p], shared, others, memory_days[b, p])
            # Shared traffic at the list's quality, each IP's at its own (spikes and ignored
            # deferrals included), so pushing hurts the domain too.
            total = total + shared
            judged = judged + shared * quality
            domain_quality = judged / total if total > 0 else quality
            dom = domain_reputation[b, p]
            domain_reputation[b, p] = prov.update_reputation_one(
                dom, domain_quality, total, dom, reputation_volume[b, p], memory_days[b, p]
            )
        for k in range(n):
            ip_age_days[b, k] += 1.0


end_day_arrays: Callable[..., None] = numba.njit(cache=True)(_end_day_arrays)
"""The compiled :func:`_end_day_arrays`."""


def end_day(state: SimState, hold_utilization: np.ndarray) -> None:
    """Move allowance, reputation and domain reputation after a full day (all rows).

    Args:
        state: the simulator state, updated in place.
        hold_utilization: (P,) each provider's use of the allowance below which it shrinks.
    """
    d = state.draw
    end_day_arrays(
        state.ring_clock, np.asarray(hold_utilization, dtype=np.float64), state.n_ips,
        state.sender.mix, state.quality_today, state.day_sent, state.day_peak,
        state.day_overshoot, state.day_shared, state.peak_history, state.recent_volume,
        state.previous_day_sent, state.reputation, state.allowance, state.ip_age_days,
        state.shared_share, state.domain_reputation, d.cold_allowance, d.full_allowance,
        d.trust_growth, d.cooling_factor, d.peak_memory_days, d.spike_tolerance,
        d.cold_reputation, d.reputation_volume, d.memory_days,
    )  # fmt: skip
