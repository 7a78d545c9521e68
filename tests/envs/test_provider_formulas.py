"""The providers' formulas (envs/providers.py) pinned to values computed by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from ipwarmup.envs import days
from ipwarmup.envs import providers as prov
from ipwarmup.envs.provider_config import default_providers


def _draw(uniform: float = 0.0) -> prov.ProviderDraw:
    providers = list(default_providers().values())
    uniforms = np.full((1, prov.N_PROVIDER_UNIFORMS, len(providers)), uniform)
    return prov.draw_providers(providers, uniforms)


def test_an_idle_ip_falls_from_full_trust_to_cold_in_cooling_days() -> None:
    d = _draw(0.0)  # every range at its low end: gmail cold 40, full 15,000, 20 days
    assert d.cold_allowance[0, 0] == 40.0 and d.full_allowance[0, 0] == 15_000.0
    # It holds for the 7 days of peak memory, then shrinks over the 13 left.
    np.testing.assert_array_equal(d.peak_memory_days, 7.0)
    np.testing.assert_allclose(d.cooling_factor[0, 0], (40.0 / 15_000.0) ** (1.0 / 13.0))
    np.testing.assert_allclose(d.cooling_factor**13.0 * d.full_allowance, d.cold_allowance)


@pytest.mark.parametrize(
    ("reputation", "domain", "base", "sensitivity", "weight", "expected"),
    [
        # 0.6 x 0.5 + 0.4 x 0.8 = 0.62: 0.18 under good reputation, 0.9 - 0.18.
        (0.5, 0.8, 0.9, 1.0, 0.6, 0.72),
        # Microsoft's weight 0.7 and sensitivity 1.5: 0.7 x 0.6 + 0.3 x 0.9 = 0.69; 0.774 - 0.165.
        (0.6, 0.9, 0.774, 1.5, 0.7, 0.609),
        # Excellent everywhere: 0.9 + 0.2 would be 1.1, placement stops at 99%.
        (1.0, 1.0, 0.9, 1.0, 0.6, 0.99),
        # Burnt everywhere: 0.5 - 1.2 would be negative, placement stops at 2%.
        (0.0, 0.0, 0.5, 1.5, 0.6, 0.02),
    ],
)
def test_inbox_rate_by_hand(reputation, domain, base, sensitivity, weight, expected) -> None:
    rate = prov.inbox_rate(
        np.array([reputation]),
        np.array([domain]),
        np.array([base]),
        np.array([sensitivity]),
        ip_weight=np.array([weight]),
    )
    np.testing.assert_allclose(rate, [expected], rtol=1e-12)


def test_trust_ceiling_by_hand() -> None:
    # (reputation - 0.2) / 0.6, between 2% and 100%.
    got = prov.trust_ceiling(np.array([0.5, 0.8, 0.1, 0.9, 0.2]))
    np.testing.assert_allclose(got, [0.5, 1.0, 0.02, 1.0, 0.02], rtol=1e-12)


def test_daily_quality_by_hand() -> None:
    d = _draw(0.0)  # gmail thresholds: complaints 0.1%, bounces 2%
    one = prov.ProviderDraw(**{name: v[:, :1] for name, v in vars(d).items()})
    # Each rate at half its threshold: 0.5 x 0.25 + 0.3 x 0.25 + 0.3 x 0.25 = 0.275.
    quality = prov.daily_quality(
        np.array([[0.0005]]), np.array([[0.01]]), np.array([[0.5e-4]]), one
    )
    np.testing.assert_allclose(quality, [[0.95 - 0.275]], rtol=1e-12)
    # Traps alone at the limit: 0.3 x 1; a clean list earns the 0.95 ceiling.
    traps = prov.daily_quality(np.zeros((1, 1)), np.zeros((1, 1)), np.array([[1e-4]]), one)
    np.testing.assert_allclose(traps, [[0.65]], rtol=1e-12)
    clean = prov.daily_quality(np.zeros((1, 1)), np.zeros((1, 1)), np.zeros((1, 1)), one)
    np.testing.assert_allclose(clean, [[0.95]], rtol=1e-12)


def test_update_reputation_by_hand() -> None:
    # Half the volume the provider trusts: the target is halfway between the day's
    # quality (0.9) and a cold IP's judgement (0.5), 0.7; a 10-day memory moves 1/10 there.
    updated = prov.update_reputation(
        np.array([0.6]), np.array([0.9]), np.array([500.0]), np.array([0.5]),
        np.array([1000.0]), np.array([10.0]),
    )  # fmt: skip
    np.testing.assert_allclose(updated, [0.61], rtol=1e-12)


def _one_provider() -> prov.ProviderDraw:
    d = _draw(0.0)
    one = prov.ProviderDraw(**{name: v[:, :1].copy() for name, v in vars(d).items()})
    one.trust_growth[:] = 1.5
    one.cooling_factor[:] = 0.8
    one.cold_allowance[:] = 40.0
    one.full_allowance[:] = 15_000.0
    return one


@pytest.mark.parametrize(
    ("peak", "expected"),
    [
        (1000.0, 1500.0),  # used fully: x trust growth 1.5
        (2000.0, 1500.0),  # sampled acceptance above the allowance counts as full use
        (300.0, 1000.0),  # at the hold line (0.3): neither grows nor shrinks
        (650.0, 1000.0 * 1.5**0.5),  # halfway from hold to full: half the growth in logs
        (0.0, 800.0),  # idle: x cooling factor 0.8
        (150.0, 1000.0 * 0.8**0.5),  # half the hold line: half the cooling
    ],
)
def test_update_allowance_by_hand(peak: float, expected: float) -> None:
    got = prov.update_allowance(
        np.array([[1000.0]]), np.array([[peak]]), 0.3, _one_provider(), np.array([[0.8]])
    )
    np.testing.assert_allclose(got, [[expected]], rtol=1e-12)


@pytest.mark.parametrize(
    ("peak", "held", "expected"),
    [
        (0.0, 300.0, 1000.0),  # idle today, a busy hour this week at the hold line: holds
        (0.0, 900.0, 1000.0),  # idle today, a campaign hour this week: holds
        (0.0, 150.0, 1000.0 * 0.8**0.5),  # the week's busiest hour at half the line
        (0.0, 0.0, 800.0),  # idle all week: x cooling factor 0.8
        (100.0, 150.0, 1000.0 * 0.8**0.5),  # the week's busiest, not today's, sets the shrink
        (1000.0, 1000.0, 1500.0),  # growth needs today's use
        (650.0, 2000.0, 1000.0 * 1.5**0.5),  # ... and only today's: a past peak adds none
        (150.0, 0.0, 1000.0 * 0.8**0.5),  # a history below today's peak counts as today's
    ],
)
def test_update_allowance_holds_on_the_weeks_busiest_hour(
    peak: float, held: float, expected: float
) -> None:
    got = prov.update_allowance(
        np.array([[1000.0]]),
        np.array([[peak]]),
        0.3,
        _one_provider(),
        np.array([[0.8]]),
        held_peak=np.array([[held]]),
    )
    np.testing.assert_allclose(got, [[expected]], rtol=1e-12)


def test_held_peak_is_the_busiest_hour_of_each_providers_memory() -> None:
    # One row, one IP, two providers remembering 3 and 2 days; a ring of 3 days.
    history = np.zeros((1, 1, 2, 3))
    draw = SimpleNamespace(peak_memory_days=np.array([[3.0, 2.0]]))
    state = SimpleNamespace(peak_history=history, ring_clock=0, draw=draw)
    held = []
    for day, peak in enumerate([50.0, 10.0, 20.0, 5.0, 1.0, 0.0, 0.0, 0.0]):
        state.ring_clock = (day + 1) * 24  # end_day runs after the day's 24 hours
        state.day_peak = np.array([[[peak, peak]]])
        held.append(days.held_peak(state)[0, 0].tolist())
    # Provider 0 keeps the busiest of 3 days (today and two before), provider 1 of 2.
    # Then silence: what is forgotten counts for nothing, not even one message.
    assert held == [[50, 50], [50, 50], [50, 20], [20, 20], [20, 5], [5, 1], [1, 0], [0, 0]]


def test_update_allowance_stays_between_cold_and_the_reputations_ceiling() -> None:
    d = _one_provider()
    # Reputation 0.5 earns half of full trust, 7,500 an hour: growth stops there.
    got = prov.update_allowance(
        np.array([[7000.0]]), np.array([[7000.0]]), 0.3, d, np.array([[0.5]])
    )
    np.testing.assert_allclose(got, [[7500.0]])
    # And an idle cold IP does not fall under cold.
    got = prov.update_allowance(np.array([[45.0]]), np.array([[0.0]]), 0.3, d, np.array([[0.5]]))
    np.testing.assert_allclose(got, [[40.0]])


@pytest.mark.parametrize(
    ("volume", "reference", "tolerance", "expected"),
    [
        (100.0, 100.0, 2.0, 0.0),  # as before: no penalty
        (200.0, 100.0, 2.0, 0.0),  # up to the tolerance: none
        (200.0 * 2**0.5, 100.0, 2.0, 0.1),  # half a doubling past it: half of 0.2
        (1600.0, 100.0, 2.0, 0.2),  # three doublings past: capped at 0.2
        (4.0, 0.5, 2.0, 0.2),  # a reference under one message counts as one: 4x, 1 doubling
        (3.0, 0.5, 2.0, 0.2 * np.log2(1.5)),  # 3x against 1: log2(1.5) of a doubling
    ],
)
def test_spike_penalty_by_hand(volume, reference, tolerance, expected) -> None:
    got = prov.spike_penalty(np.array([volume]), np.array([reference]), np.array([tolerance]))
    np.testing.assert_allclose(got, [expected], rtol=1e-12, atol=1e-15)
