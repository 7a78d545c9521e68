"""The sender's draws and daily demand, from explicit uniforms, against hand computations."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np
import pytest

from ipwarmup.envs import build_config
from ipwarmup.envs import sender as snd
from ipwarmup.envs.config import ScenarioConfig
from ipwarmup.envs.rows import RowConfigs

NAMES = ("gmail", "microsoft", "yahoo", "apple", "other")
MIX = {"gmail": 2.0, "microsoft": 1.0, "yahoo": 1.0, "apple": 0.0, "other": 0.0}
FLAT = (1.0,) * 24


def _scenario(**fields: Any) -> ScenarioConfig:
    base: dict[str, Any] = {
        "daily_volume_messages": (1000.0, 3000.0),
        "provider_mix": MIX,
        "mix_concentration": 0.0,
        "volume_noise": 0.0,
        "hourly_shape": FLAT,
    }
    return ScenarioConfig(**(base | fields))


def _uniforms(*rows: list[float]) -> np.ndarray:
    return np.array(rows, dtype=float)


def test_draw_sender_spans_each_range_with_its_own_uniform() -> None:
    scenario = _scenario(
        growth_per_day=(1.0, 1.2),
        bounce_rate=(0.01, 0.03),
        complaint_rate=(0.001, 0.002),
        trap_rate=(0.0, 0.0004),
        domain_reputation=(0.6, 0.8),
    )
    # Columns: volume, growth, bounce, complaint, trap, start weekday, (unused).
    u = _uniforms([0.25, 0.5, 0.5, 0.0, 0.25, 0.999, 0.0], [1.0, 0.0, 0.0, 1.0, 1.0, 0.5, 0.0])
    domain = np.array([[0.0, 0.5, 1.0, 0.25, 0.75], [1.0, 1.0, 1.0, 1.0, 1.0]])
    draw = snd.draw_sender(scenario, NAMES, u, np.ones((2, 5)), domain)
    np.testing.assert_allclose(draw.daily_volume, [1500.0, 3000.0], rtol=1e-15)
    np.testing.assert_allclose(draw.growth, [1.1, 1.0], rtol=1e-15)
    np.testing.assert_array_equal(draw.growth_messages, [0.0, 0.0])
    np.testing.assert_allclose(draw.bounce_rate, [0.02, 0.01], rtol=1e-15)
    np.testing.assert_allclose(draw.complaint_rate, [0.001, 0.002], rtol=1e-15)
    np.testing.assert_allclose(draw.trap_rate, [0.0001, 0.0004], rtol=1e-15)
    # floor(7u), and u just below 1 is Sunday (6), not an eighth day.
    np.testing.assert_array_equal(draw.start_weekday, [6, 3])
    assert draw.start_weekday.dtype == np.int64
    np.testing.assert_allclose(
        draw.domain_reputation, [[0.6, 0.7, 0.8, 0.65, 0.75], [0.8] * 5], rtol=1e-15
    )
    # Concentration 0 keeps the mix exact: shares 2:1:1 normalised.
    np.testing.assert_array_equal(draw.mix, [[0.5, 0.25, 0.25, 0.0, 0.0]] * 2)


def test_linear_growth_comes_from_the_same_uniform_as_multiplicative() -> None:
    scenario = _scenario(growth_messages_per_day=(-100.0, 300.0))
    u = _uniforms([0.0, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0])
    draw = snd.draw_sender(scenario, NAMES, u, np.ones((1, 5)), np.zeros((1, 5)))
    np.testing.assert_array_equal(draw.growth_messages, [0.0])  # -100 + 400 x 0.25
    np.testing.assert_array_equal(draw.growth, [1.0])
    u[0, 1] = 0.5
    draw = snd.draw_sender(scenario, NAMES, u, np.ones((1, 5)), np.zeros((1, 5)))
    np.testing.assert_array_equal(draw.growth_messages, [100.0])


def test_a_jittered_mix_is_the_gamma_draws_of_the_providers_that_get_mail() -> None:
    scenario = _scenario(mix_concentration=50.0)
    gammas = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [0.5, 0.0, 0.0, 9.0, 9.0]])
    draw = snd.draw_sender(scenario, NAMES, np.zeros((2, 7)), gammas, np.zeros((2, 5)))
    # Apple and other have no share: their draws are dropped, the rest normalised.
    np.testing.assert_allclose(draw.mix[0], [1 / 6, 2 / 6, 3 / 6, 0.0, 0.0], rtol=1e-15)
    np.testing.assert_array_equal(draw.mix[1], [1.0, 0.0, 0.0, 0.0, 0.0])
    # Gamma draws can underflow to 0 at small shapes: then no share, but no 0/0 either.
    none = snd.draw_sender(
        scenario, NAMES, np.zeros((1, 7)), np.array([[0.0, 0.0, 0.0, 5.0, 5.0]]), np.zeros((1, 5))
    )
    np.testing.assert_array_equal(none.mix, [[0.0] * 5])
    # Any positive concentration jitters, a weak one (below 1) too.
    weak = snd.draw_sender(
        _scenario(mix_concentration=0.5), NAMES, np.zeros((2, 7)), gammas, np.zeros((2, 5))
    )
    np.testing.assert_array_equal(weak.mix, draw.mix)


def test_gamma_shapes_are_the_concentration_times_each_share_at_least_once() -> None:
    np.testing.assert_allclose(
        snd.gamma_shapes(_scenario(mix_concentration=200.0), NAMES),
        [100.0, 50.0, 50.0, 1.0, 1.0],  # zero shares get a dummy 1
        rtol=1e-15,
    )
    # A concentration below 1 still draws with shapes of at least the share.
    np.testing.assert_allclose(
        snd.gamma_shapes(_scenario(mix_concentration=0.5), NAMES),
        [0.5, 0.25, 0.25, 1.0, 1.0],
        rtol=1e-15,
    )


def test_normals_are_box_muller() -> None:
    r = math.sqrt(-2.0 * math.log(0.5))  # u1 = 0.5: 1.1774
    got = snd.normals(np.array([0.5, 0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.25, 0.7]))
    np.testing.assert_allclose(got[:2], [r, -r], rtol=1e-15)
    assert abs(got[2]) < 1e-15 and got[3] == 0.0  # cos(pi/2) = 0; u1 = 0 gives radius 0
    # log1p(-u1): a u1 close to 1 is a long tail, not log(0).
    assert snd.normals(np.array([1 - 2**-40]), np.array([0.0]))[0] == pytest.approx(
        math.sqrt(80 * math.log(2)), rel=1e-12
    )


def test_day_shapes_normalise_weekdays_hours_and_a_campaign_window_past_midnight() -> None:
    scenario = _scenario(
        weekly_shape=(1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.0),
        hourly_shape=(2.0,) + (0.0,) * 22 + (2.0,),
        campaign_start_hour=22,
        campaign_duration_hours=4,
        campaign_weekdays=("tue", "thu"),
    )
    shapes = snd.day_shapes(scenario)
    np.testing.assert_array_equal(shapes.weekly, [1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.0])  # mean 1
    np.testing.assert_array_equal(shapes.hourly, [0.5] + [0.0] * 22 + [0.5])  # sum 1
    window = np.zeros(24)
    window[[22, 23, 0, 1]] = 0.25  # 22:00 to 02:00
    np.testing.assert_array_equal(shapes.campaign_window, window)
    np.testing.assert_array_equal(
        shapes.campaign_days, [False, True, False, True, False, False, False]
    )
    # One value serves every day of a simulator: it cannot be changed in place.
    with pytest.raises(dataclasses.FrozenInstanceError):
        shapes.weekly = np.ones(7)  # type: ignore[misc]
    halved = snd.day_shapes(_scenario(weekly_shape=(2.0,) * 7, hourly_shape=(3.0,) * 24))
    np.testing.assert_array_equal(halved.weekly, [1.0] * 7)
    np.testing.assert_allclose(halved.hourly, [1 / 24] * 24, rtol=1e-15)


def _demand(scenario: ScenarioConfig, day: int, daily: list[float], **draw: Any) -> np.ndarray:
    """Demand of row 0 on ``day`` with start weekday Monday, volume 2400, mix 2:1:1."""
    sender = snd.SenderDraw(
        daily_volume=np.array([2400.0]),
        growth=np.array([draw.get("growth", 1.0)]),
        growth_messages=np.array([draw.get("growth_messages", 0.0)]),
        bounce_rate=np.zeros(1),
        complaint_rate=np.zeros(1),
        trap_rate=np.zeros(1),
        start_weekday=np.array([draw.get("start_weekday", 0)]),
        mix=np.array([[0.5, 0.25, 0.25, 0.0, 0.0]]),
        domain_reputation=np.zeros((1, 5)),
    )
    uniforms = np.array([daily + [0.0] * (snd.N_DAILY_UNIFORMS - len(daily))])
    shapes = snd.day_shapes(scenario)
    demand = snd.daily_demand(scenario, shapes, sender, np.array([day]), uniforms)
    assert demand.shape == (1, 24, 5)
    return demand[0]


def test_daily_demand_grows_and_splits_by_hour_and_provider() -> None:
    scenario = _scenario()
    # 2400 x 1.5^2 = 5400 a day, flat hours: 225 an hour, split 2:1:1.
    demand = _demand(scenario, 2, [0.5, 0.0, 1.0], growth=1.5)
    np.testing.assert_allclose(demand[:, 0], 112.5, rtol=1e-15)
    np.testing.assert_allclose(demand[:, 1], 56.25, rtol=1e-15)
    np.testing.assert_array_equal(demand[:, 3:], 0.0)
    # Linear growth: 2400 + 300 x 4; shrinking below zero floors at 0.
    linear = _demand(scenario, 4, [0.5, 0.0, 1.0], growth_messages=300.0)
    np.testing.assert_allclose(linear.sum(), 3600.0, rtol=1e-14)
    assert _demand(scenario, 9, [0.5, 0.0, 1.0], growth_messages=-300.0).sum() == 0.0


def test_daily_demand_weekday_weight_and_log_normal_noise() -> None:
    scenario = _scenario(weekly_shape=(1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 0.0), volume_noise=0.5)
    r = math.sqrt(-2.0 * math.log(0.5))
    # Start Wednesday (2), day 3 is Saturday (weight 2); normal r: noise exp(0.5 r).
    saturday = _demand(scenario, 3, [0.5, 0.0, 1.0], start_weekday=2)
    assert saturday.sum() == pytest.approx(2400.0 * 2.0 * math.exp(0.5 * r), rel=1e-12)
    sunday = _demand(scenario, 4, [0.5, 0.0, 1.0], start_weekday=2)
    assert sunday.sum() == 0.0
    # Monday of the next week ((2 + 5) mod 7 = 0), a negative normal: exp(-0.5 r).
    monday = _demand(scenario, 5, [0.5, 0.5, 1.0], start_weekday=2)
    assert monday.sum() == pytest.approx(2400.0 * math.exp(-0.5 * r), rel=1e-12)


def test_a_seasonal_spike_multiplies_exactly_its_days() -> None:
    scenario = _scenario(spike_start_day=2, spike_duration_days=3, spike_multiplier=5.0)
    totals = [_demand(scenario, day, [0.5, 0.0, 1.0]).sum() for day in range(7)]
    np.testing.assert_allclose(totals, [2400, 2400, 12000, 12000, 12000, 2400, 2400], rtol=1e-14)


@pytest.mark.parametrize(
    ("u_campaign", "weekday", "campaign"),
    [(0.29, 1, True), (0.3, 1, False), (0.29, 0, False)],
    ids=["drawn-tuesday", "not-drawn", "monday-not-a-campaign-day"],
)
def test_a_campaign_adds_its_extra_volume_in_its_window(
    u_campaign: float, weekday: int, campaign: bool
) -> None:
    """Probability 0.3 on Tuesdays and Thursdays; a 3x-5x blast from 09:00 for 4 hours."""
    scenario = _scenario(
        campaign_probability=0.3,
        campaign_weekdays=("tue", "thu"),
        campaign_multiplier=(3.0, 5.0),
        campaign_start_hour=9,
        campaign_duration_hours=4,
    )
    # u = 0.25 on the multiplier: 3.5x, so the extra is 2.5 x 2400 = 6000, 1500 an hour.
    demand = _demand(scenario, 0, [0.5, 0.0, u_campaign, 0.25], start_weekday=weekday)
    hourly = demand.sum(axis=1)
    expected = np.full(24, 100.0)
    if campaign:
        expected[9:13] += 1500.0
    np.testing.assert_allclose(hourly, expected, rtol=1e-14)


def test_each_row_draws_its_mix_with_its_own_scenarios_shapes_cached_or_not() -> None:
    batch = build_config(scenario="steady_b2c_transactional")
    other = build_config(scenario="steady_b2c_transactional",
                         overrides=["scenario.mix_concentration=3.0"])  # fmt: skip
    rows = RowConfigs(batch, 3)
    rows.use(np.array([1]), [other])
    names = batch.provider_names
    mine, theirs = (snd.gamma_shapes(c.scenario, names) for c in (batch, other))
    assert not np.array_equal(mine, theirs)
    for row, expected in ((0, mine), (2, mine), (1, theirs), (1, theirs), (0, mine)):
        got = rows.gamma_shapes(row)
        np.testing.assert_array_equal(got, expected)
        assert not got.flags.writeable  # shared between rows: nothing may write into it
    assert rows.gamma_shapes(0) is rows.gamma_shapes(2)  # one scenario, computed once
