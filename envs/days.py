"""What happens at midnight: providers re-judge every IP and the domain, a new day is drawn.

Step functions over a :class:`~ipwarmup.envs.state.SimState`, updating it in place. The
day's randomness comes in as uniforms that each row drew from its own generator, so a batch
stays identical to single envs seeded alike.
"""

from __future__ import annotations

import numpy as np

from ipwarmup.envs import providers as prov
from ipwarmup.envs import sender as snd
from ipwarmup.envs import shared_pool
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.hour_kernel import sum_axis1, window_max
from ipwarmup.envs.state import SimState


def start_day(
    state: SimState,
    rows: np.ndarray,
    uniforms: np.ndarray,
    config: EnvConfig,
    shapes: snd.DayShapes,
    normals: np.ndarray,
) -> None:
    """Lay out the day's hourly demand of rows ``rows``, its sampling noise, and incidents.

    Args:
        state: the simulator state, updated in place.
        rows: row indices.
        uniforms: (len(rows), N_DAILY_UNIFORMS) the rows' draws for the day.
        config: the env configuration.
        shapes: the scenario's weekday, hour and campaign weights.
        normals: (len(rows), 2, 24, P) standard normals: each hour's acceptance noise and
            the complaints reported in a period that starts at that hour.
    """
    u = uniforms
    day = state.hour[rows] // HOURS_PER_DAY
    # At the batch's midnight every row starts a day: read the draws whole, not gathered
    # field by field (dozens of copies a day, the bulk of this function at small batches).
    every = len(rows) == state.n_envs and bool((rows == np.arange(len(rows))).all())
    sub = (
        state.sender
        if every
        else snd.SenderDraw(
            **{name: getattr(state.sender, name)[rows] for name in vars(state.sender)}
        )
    )
    state.demand_today[rows] = snd.daily_demand(config.scenario, shapes, sub, day, u)
    noise = np.exp(0.3 * snd.normals(u[:, 4], u[:, 5]))
    complaint = np.minimum(sub.complaint_rate * noise, 1.0)
    state.complaint_rate_today[rows] = complaint
    draw = state.draw if every else prov.ProviderDraw(**state.draw.rows(rows))
    # What the ESP sees is sampled (issue 9): acceptance moves hour to hour around the
    # allowance, log-normal with mean 1; complaint counts are Poisson-like (see outcomes).
    sigma = draw.acceptance_noise[:, None, :]
    state.accept_noise_today[rows] = np.exp(sigma * normals[:, 0] - 0.5 * sigma**2)
    state.complaint_noise_today[rows] = normals[:, 1]
    state.quality_today[rows] = prov.daily_quality(
        complaint[:, None], sub.bounce_rate[:, None], sub.trap_rate[:, None], draw
    )
    # Noisy neighbours (DESIGN: incidents lower the shared pool's placement for days).
    shared = config.shared_pool
    idle = state.incident_until_day[rows] <= day
    start = idle & (u[:, 6] < shared.incident_probability_per_day)
    lo, hi = shared.incident_duration_days
    until = day + lo + (hi - lo) * u[:, 7]
    lo, hi = shared.incident_severity
    severity = lo + (hi - lo) * u[:, 8]
    state.incident_until_day[rows] = np.where(start, until, state.incident_until_day[rows])
    state.incident_severity[rows] = np.where(
        start, severity, np.where(idle, 0.0, state.incident_severity[rows])
    )
    state.day_sent[rows] = 0.0
    state.day_peak[rows] = 0.0
    state.day_overshoot[rows] = 0.0
    state.day_shared[rows] = 0.0


def held_peak(state: SimState) -> np.ndarray:
    """Record today's busiest hours; return each IP's busiest of its providers' memory.

    ``state.peak_history`` is a ring of days (the batch's day count modulo its length);
    provider ``p`` remembers its last ``peak_memory_days[p]`` days, today included.
    """
    history = state.peak_history
    today = (state.ring_clock // HOURS_PER_DAY) % history.shape[-1]
    history[..., today] = state.day_peak
    return window_max(history, today, state.draw.peak_memory_days)


def end_day(state: SimState, hold_utilization: np.ndarray) -> None:
    """Move allowance, reputation and domain reputation after a full day (all rows).

    Args:
        state: the simulator state, updated in place.
        hold_utilization: (P,) each provider's use of the allowance below which it shrinks.
    """
    d = state.draw
    sent = state.day_sent  # accepted per IP and provider today
    active = state.active[:, :, None]
    quality = state.quality_today
    floor = (d.cold_allowance * HOURS_PER_DAY)[:, None, :]
    reference = np.maximum(np.maximum(state.recent_volume, state.previous_day_sent), floor)
    ip_quality = (
        quality[:, None, :]
        - 0.3 * np.clip(state.day_overshoot / HOURS_PER_DAY, 0.0, 1.0)
        - prov.spike_penalty(sent, reference, d.spike_tolerance[:, None, :])
    )
    ip_quality = np.clip(ip_quality, 0.0, 1.0)
    reputation = prov.update_reputation(
        state.reputation,
        ip_quality,
        sent,
        d.cold_reputation[:, None, :],
        d.reputation_volume[:, None, :],
        d.memory_days[:, None, :],
    )
    draw_k = prov.ProviderDraw(**{name: v[:, None, :] for name, v in vars(d).items()})
    allowance = prov.update_allowance(
        state.allowance,
        state.day_peak,
        hold_utilization,
        draw_k,
        reputation,
        held_peak=held_peak(state),
    )
    state.reputation = np.where(active, np.clip(reputation, 0.0, 1.0), state.reputation)
    state.allowance = np.where(active, allowance, state.allowance)
    state.recent_volume = np.where(
        active, state.recent_volume + (sent - state.recent_volume) / 7.0, state.recent_volume
    )
    state.previous_day_sent = np.where(active, sent, state.previous_day_sent)
    state.ip_age_days += active[:, :, 0]
    shared_pool.update_share(state)
    total = sum_axis1(sent) + state.day_shared  # numpy's reduction over IPs is slow
    # The domain is judged on all its mail: shared traffic at the list's quality, each IP's
    # at its own (spikes and ignored deferrals included), so pushing hurts the domain too.
    judged = sum_axis1(sent * ip_quality) + state.day_shared * quality
    domain_quality = np.divide(judged, total, out=quality.copy(), where=total > 0)
    state.domain_reputation = prov.update_reputation(
        state.domain_reputation,
        domain_quality,
        total,
        state.domain_reputation,
        d.reputation_volume,
        d.memory_days,
    )
