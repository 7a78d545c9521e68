"""The sender: per-episode draws of a scenario and the demand it puts on the MTA each day.

Pure functions over a batch axis; the simulator supplies the uniforms so that every
environment of a batch draws from its own generator, in the same order as a single env.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from ipwarmup.envs.compiled import ufunc
from ipwarmup.envs.config import HOURS_PER_DAY, ScenarioConfig
from ipwarmup.envs.scenario_config import WEEKDAY_NAMES

# Uniforms each env draws per episode for the sender (besides the mix's gamma draws).
N_SENDER_UNIFORMS = 7
# Uniforms each env draws per day: volume noise (2, Box-Muller), campaign (2),
# complaint-rate noise (2), incident start, incident duration, incident severity.
N_DAILY_UNIFORMS = 9


@dataclass
class SenderDraw:
    """Per-episode sender parameters, each of shape (B,) unless noted."""

    daily_volume: np.ndarray
    growth: np.ndarray  # multiplicative, per day
    growth_messages: np.ndarray  # linear, messages per day
    bounce_rate: np.ndarray
    complaint_rate: np.ndarray
    trap_rate: np.ndarray
    start_weekday: np.ndarray
    mix: np.ndarray  # (B, P)
    domain_reputation: np.ndarray  # (B, P)


def _span(bounds: tuple[float, float], u: np.ndarray) -> np.ndarray:
    return bounds[0] + (bounds[1] - bounds[0]) * u


def draw_sender(
    scenario: ScenarioConfig,
    provider_names: tuple[str, ...],
    uniforms: np.ndarray,
    mix_gammas: np.ndarray,
    domain_uniforms: np.ndarray,
) -> SenderDraw:
    """Draw the sender of each env from uniforms (B, N_SENDER_UNIFORMS).

    Both kinds of growth come from the same uniform: a scenario sets one of them (the other
    stays at its identity, 1x or 0 messages), so one draw suffices and episodes drawn
    before linear growth existed are drawn the same.

    ``mix_gammas`` (B, P) are standard-gamma draws with shape ``concentration * share``; they
    jitter the provider mix per episode (a Dirichlet draw). ``domain_uniforms`` is (B, P).
    """
    u = uniforms
    shares = np.array([scenario.provider_mix[name] for name in provider_names], dtype=float)
    shares = shares / shares.sum()
    if scenario.mix_concentration > 0:
        jittered = mix_gammas * (shares > 0)
        mix = jittered / np.maximum(jittered.sum(axis=1, keepdims=True), 1e-300)
    else:
        mix = np.broadcast_to(shares, mix_gammas.shape).copy()
    return SenderDraw(
        daily_volume=_span(scenario.daily_volume_messages, u[:, 0]),
        growth=_span(scenario.growth_per_day, u[:, 1]),
        growth_messages=_span(scenario.growth_messages_per_day, u[:, 1]),
        bounce_rate=_span(scenario.bounce_rate, u[:, 2]),
        complaint_rate=_span(scenario.complaint_rate, u[:, 3]),
        trap_rate=_span(scenario.trap_rate, u[:, 4]),
        start_weekday=np.minimum((u[:, 5] * 7).astype(np.int64), 6),
        mix=mix,
        domain_reputation=_span(scenario.domain_reputation, domain_uniforms),
    )


def gamma_shapes(scenario: ScenarioConfig, provider_names: tuple[str, ...]) -> np.ndarray:
    """Return the Dirichlet shape of each provider's share (zero shares get a dummy 1)."""
    shares = np.array([scenario.provider_mix[name] for name in provider_names], dtype=float)
    shares = shares / shares.sum()
    concentration = max(scenario.mix_concentration, 1.0)
    return np.where(shares > 0, concentration * shares, 1.0)


def _normal(u1: float, u2: float) -> float:
    return float(np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2))


normal_one: Callable[..., Any] = ufunc(2, _normal)
"""The ufunc of :func:`normals`."""


def normals(u1: np.ndarray, u2: np.ndarray) -> np.ndarray:
    """Return standard normals from two uniform arrays (Box-Muller)."""
    normal: np.ndarray = normal_one(u1, u2)
    return normal


@dataclass(frozen=True)
class DayShapes:
    """A scenario's weekday, hour and campaign-window weights, normalised once."""

    weekly: np.ndarray  # (7,) mean 1
    hourly: np.ndarray  # (24,) sum 1
    campaign_window: np.ndarray  # (24,) sum 1
    campaign_days: np.ndarray  # (7,) bool, Monday first: weekdays that may carry a campaign


def day_shapes(scenario: ScenarioConfig) -> DayShapes:
    """Normalise the scenario's weights (done once per simulator, not per day)."""
    weekly = np.asarray(scenario.weekly_shape, dtype=float)
    hourly = np.asarray(scenario.hourly_shape, dtype=float)
    window = np.zeros(HOURS_PER_DAY)
    hours = np.arange(scenario.campaign_duration_hours) + scenario.campaign_start_hour
    window[hours % HOURS_PER_DAY] = 1.0 / scenario.campaign_duration_hours
    campaign_days = np.isin(WEEKDAY_NAMES, scenario.campaign_weekdays)
    return DayShapes(weekly / weekly.mean(), hourly / hourly.sum(), window, campaign_days)


@dataclass(frozen=True)
class RowShapes:
    """Each row's demand numbers and day shapes, (B, ...): rows of a batch may differ.

    A batch built from one config holds the same row everywhere; a world (issue 10) sets
    each row's from the sender it drew for the episode (:meth:`set`).
    """

    parameters: np.ndarray  # (B, N_DEMAND), as scenario_demand_parameters
    weekly: np.ndarray  # (B, 7) mean 1
    hourly: np.ndarray  # (B, 24) sum 1
    campaign_window: np.ndarray  # (B, 24) sum 1
    campaign_days: np.ndarray  # (B, 7) bool

    @classmethod
    def of(cls, scenario: ScenarioConfig, n_rows: int) -> RowShapes:
        """Return ``n_rows`` rows of one scenario's numbers and shapes."""
        shapes = day_shapes(scenario)
        rows = (
            scenario_demand_parameters(scenario), shapes.weekly, shapes.hourly,
            shapes.campaign_window, shapes.campaign_days,
        )  # fmt: skip
        return cls(*(np.repeat(row[None], n_rows, axis=0) for row in rows))

    def set(self, row: int, scenario: ScenarioConfig) -> None:
        """Give row ``row`` the numbers and shapes of ``scenario``."""
        one = RowShapes.of(scenario, 1)
        for name in vars(self):
            getattr(self, name)[row] = getattr(one, name)[0]

    def take(self, rows: np.ndarray) -> RowShapes:
        """Return the rows ``rows`` (copies), in that order."""
        return RowShapes(*(getattr(self, name)[rows] for name in vars(self)))


def scenario_demand_parameters(scenario: ScenarioConfig) -> np.ndarray:
    """Return the scenario's demand numbers as :func:`demand_arrays` reads them (N_DEMAND,)."""
    spike = scenario.spike_start_day
    low, high = scenario.campaign_multiplier
    return np.array(
        [
            scenario.volume_noise,
            scenario.campaign_probability,
            low,
            high,
            0.0 if spike is None else 1.0,
            0.0 if spike is None else float(spike),
            float(scenario.spike_duration_days),
            scenario.spike_multiplier,
        ]
    )


def _demand_row(
    parameters: np.ndarray,
    weekly: np.ndarray,
    hourly: np.ndarray,
    campaign_window: np.ndarray,
    campaign_days: np.ndarray,
    daily_volume: float,
    growth: float,
    growth_messages: float,
    start_weekday: int,
    mix: np.ndarray,
    day: int,
    uniforms: np.ndarray,
    out: np.ndarray,
) -> None:
    """Write one row's demand of day ``day`` into ``out`` (24, P): see :func:`daily_demand`."""
    volume_noise, campaign_probability, low, high, has_spike, spike, duration, multiplier = (
        parameters[0], parameters[1], parameters[2], parameters[3], parameters[4],
        parameters[5], parameters[6], parameters[7],
    )  # fmt: skip
    weekday = (start_weekday + day) % 7
    noise = np.exp(volume_noise * normal_one(uniforms[0], uniforms[1]))
    mean = max(daily_volume * growth ** float(day) + growth_messages * day, 0.0)
    base = mean * weekly[weekday] * noise
    if has_spike > 0.0 and spike <= day < spike + duration:
        base = base * multiplier
    # Every day draws its campaign uniform, campaign weekday or not, so the draws of later
    # days do not depend on the calendar.
    campaign = uniforms[2] < campaign_probability and campaign_days[weekday]
    multiple = low + (high - low) * uniforms[3]
    extra = base * (multiple - 1.0) if campaign else 0.0
    for h in range(out.shape[0]):
        per_hour = base * hourly[h] + extra * campaign_window[h]
        for p in range(out.shape[1]):
            out[h, p] = per_hour * mix[p]


demand_row: Callable[..., None] = numba.njit(cache=True)(_demand_row)
"""The compiled :func:`_demand_row`."""


def daily_demand(
    scenario: ScenarioConfig,
    shapes: DayShapes,
    sender: SenderDraw,
    day: np.ndarray,
    daily_uniforms: np.ndarray,
) -> np.ndarray:
    """Return the demand of day ``day`` as messages per hour and provider, shape (B, 24, P).

    A day's mean volume is the episode's start volume times ``growth ** day`` plus
    ``growth_messages * day`` (never below 0), shaped by the weekday, log-normal noise, a
    campaign blast (sent in ``campaign_duration_hours`` from ``campaign_start_hour``) on a
    campaign weekday that draws one with ``campaign_probability``, and a seasonal spike.
    """
    parameters = scenario_demand_parameters(scenario)
    days = np.broadcast_to(day, sender.daily_volume.shape)
    demand = np.empty((len(days), HOURS_PER_DAY, sender.mix.shape[1]))
    for b in range(len(days)):
        demand_row(
            parameters, shapes.weekly, shapes.hourly, shapes.campaign_window,
            shapes.campaign_days, float(sender.daily_volume[b]), float(sender.growth[b]),
            float(sender.growth_messages[b]), int(sender.start_weekday[b]), sender.mix[b],
            int(days[b]), daily_uniforms[b], demand[b],
        )  # fmt: skip
    return demand
