"""The compiled kernels: the hour loop's events per row, the acceptance noise, the slot sums."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils import seeding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ipwarmup.envs import build_config
from ipwarmup.envs.hour_kernel import _window_max, sum_axis1, window_max
from ipwarmup.envs.mta import Period, routing, run_hours
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.state import SimState, take

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PERIOD_FIELDS = (
    "demand",
    "sent",
    "accepted",
    "rejected",
    "shared",
    "expired",
    "accepted_ip",
    "blocks",
    "throttles",
)
STATE_FIELDS = (
    "pressure",
    "blocked",
    "blocked_until",
    "throttled",
    "throttled_until",
    "reputation",
    "allowance",
    "day_peak",
    "day_overshoot",
    "queue_total",
    "queue_cohorts",
    "queue_scale",
)


def _pushed(
    overflow: str, seed: int, steps: int, rows: int = 4, retry_interval: float = 1.0
) -> Simulator:
    """A batch whose caps were pushed far past the allowance, so blocks start and end."""
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=[
            f"mta.overflow={overflow}",
            "decision_interval_hours=24",
            f"mta.retry_interval_hours={retry_interval}",
        ],
    )
    sim = Simulator(config, rows)
    sim.reset(np.arange(rows), [seeding.np_random(seed + i)[0] for i in range(rows)])
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.uniform(0.3, 1.0, size=(rows, sim.codec.size))
        actions[:, -1] = rng.choice([0.0, 1.0], size=rows)
        sim.step(actions)
    return sim


def _run(state: SimState, sim: Simulator) -> Period:
    period = Period(state.n_envs, sim.max_ips, sim.n_providers)
    run_hours(state, period, sim.config)
    return period


@SETTINGS
@given(
    overflow=st.sampled_from(["shared", "queue"]),
    seed=st.integers(0, 10_000),
    steps=st.integers(0, 12),
    block_ends=st.integers(2, 23),
    retry_interval=st.sampled_from([0.25, 1.0, 5.0]),
)
def test_a_batch_runs_each_row_as_that_row_alone(
    overflow: str, seed: int, steps: int, block_ends: int, retry_interval: float
) -> None:
    """Rows stop at their own events and resume: the batch equals each row run alone.

    Row 0's open first IP starts far past its thresholds (it escalates after the first
    hour), row 1's first IP has blocks that end after hour ``block_ends``, rows 2 and 3
    are as the random pushes left them. Deferred mail held across a stop (shared mode)
    is retried at its hour whichever call runs it.
    """
    sim = _pushed(overflow, seed, steps, retry_interval=retry_interval)
    state = sim.state
    state.blocked[0, 0] = False
    state.pressure[0, 0] = 1.0e9
    state.blocked[1, 0, :2] = True
    state.blocked_until[1, 0, :2] = state.hour[1] + block_ends
    alone = [take(state, np.array([row])) for row in range(sim.n_envs)]
    periods = [_run(one, sim) for one in alone]
    batch_period = _run(state, sim)
    assert batch_period.blocks[0] + batch_period.throttles[0] >= 1  # the events did happen
    assert not state.blocked[1, 0, :2].any() or batch_period.blocks[1] >= 1
    for row, (one, period) in enumerate(zip(alone, periods, strict=True)):
        for name in PERIOD_FIELDS:
            batch_value = getattr(batch_period, name)[row]
            np.testing.assert_array_equal(batch_value, getattr(period, name)[0])
        for name in STATE_FIELDS:
            np.testing.assert_array_equal(getattr(state, name)[row], getattr(one, name)[0])


@SETTINGS
@given(seed=st.integers(0, 10_000), noise=st.floats(0.0, 1.0), hours=st.integers(1, 22))
def test_accept_noise_scales_each_ips_acceptance_in_its_hour(
    seed: int, noise: float, hours: int
) -> None:
    """One hour with noise ``c``: each IP accepts min(sent x weight, c x allowance)."""
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=["decision_interval_hours=1", "pool.initial_ips=2"],
    )
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(seed + i)[0] for i in range(2)])
    for _ in range(hours):  # into the day: the noise of this hour, not of another, counts
        sim.step(np.zeros((2, sim.codec.size)))
    state = sim.state
    state.blocked[:] = False
    state.caps[:, :2] = 1.0e6  # far above the allowance: every IP is held by it
    hour = state.hour_of_day
    state.accept_noise_today[:, hour] = noise
    state.accept_noise_today[:, :hour] = 0.0  # other hours' noise must not matter
    state.accept_noise_today[:, hour + 1 :] = 0.0
    route = routing(state)
    demand = state.demand_today[:, hour, :]
    sent = np.minimum(demand, route["total_cap"])
    expected_ip = np.minimum(sent[:, None, :] * route["weight"], state.allowance * noise)
    period = _run(state, sim)
    np.testing.assert_allclose(period.accepted_ip, expected_ip, rtol=1e-12, atol=0.0)
    np.testing.assert_allclose(period.accepted, expected_ip.sum(axis=1), rtol=1e-12)
    np.testing.assert_array_equal(period.sent, sent)
    # With no noise at all nothing is accepted: the example where the noise must bind.
    if noise == 0.0:
        assert np.all(period.accepted == 0.0)


@SETTINGS
@given(
    values=hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=3, max_dims=3, min_side=1, max_side=12),
        elements=st.floats(0.0, 1e9, allow_subnormal=False),
    )
)
def test_sum_axis1_adds_in_numpys_order(values: np.ndarray) -> None:
    """Bit for bit numpy's sum with two providers or more; pairwise rounding aside with one."""
    ours = sum_axis1(values)
    numpys = np.add.reduce(values, axis=1)
    if values.shape[2] >= 2:
        np.testing.assert_array_equal(ours, numpys)
    else:
        np.testing.assert_allclose(ours, numpys, rtol=1e-15 * values.shape[1], atol=0.0)


def _one_queue_hour(overrides: tuple[str, ...] = ()) -> Simulator:
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=["mta.overflow=queue", "decision_interval_hours=1", *overrides],
    )
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(7 + i)[0] for i in range(2)])
    return sim


def test_queue_mode_with_an_empty_pool_sends_everything_to_the_shared_pool() -> None:
    sim = _one_queue_hour()
    state = sim.state
    state.n_ips[:] = 0
    state.caps[:] = 0.0
    period = _run(state, sim)
    assert np.all(period.demand > 0.0)
    np.testing.assert_array_equal(period.shared, period.demand)
    np.testing.assert_array_equal(period.sent, 0.0)
    np.testing.assert_array_equal(state.queue_total, 0.0)


def test_queued_mail_is_retried_once_per_retry_interval() -> None:
    """With the queue at ``Q`` and a 3-hour retry interval, an hour sends demand + Q / 3."""
    sim = _one_queue_hour(("mta.retry_interval_hours=3",))
    state = sim.state
    queued = np.array([[300.0, 30.0, 60.0, 90.0, 3.0], [0.0, 6.0, 9.0, 12.0, 15.0]])
    state.queue_total[:] = queued
    ages = state.queue_cohorts.shape[2]
    state.queue_cohorts[:, :, (state.ring_clock + 1) % ages] = queued  # none expires now
    state.caps[:, 0] = 1.0e9  # nothing held back by the caps
    demand = state.demand_today[:, state.hour_of_day, :].copy()
    period = _run(state, sim)
    np.testing.assert_array_equal(period.sent, demand + queued * (1.0 / 3.0))


def test_a_throttle_shorter_than_the_period_lifts_within_it() -> None:
    """Escalations that start and end in one period (throttles of a few hours) both happen."""
    config = build_config(scenario="steady_b2c_transactional")  # daily periods
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(3 + i)[0] for i in range(2)])
    state = sim.state
    state.caps[:] = 0.0  # nothing sent: no pressure builds again after the block
    state.pressure[0, 0] = 1.0e9  # past every threshold: throttled after the first hour
    state.draw.throttle_hours[0] = 2.0
    period = _run(state, sim)
    assert period.throttles[0] == sim.n_providers and period.throttles[1] == 0
    assert period.blocks.sum() == 0
    assert not state.throttled.any()  # lifted at hour 3 (or so: a repeat factor) of 24
    assert np.all(state.throttled_until[0, 0] < state.hour[0])


def test_routing_weights_split_the_pool_by_caps_even_below_one_message() -> None:
    sim = _one_queue_hour(("pool.min_hourly_cap_messages=0.01", "pool.initial_ips=2"))
    state = sim.state
    state.caps[:, 0] = 0.2
    state.caps[:, 1] = 0.3
    route = routing(state)
    np.testing.assert_allclose(route["total_cap"], 0.5, rtol=1e-15)
    np.testing.assert_allclose(route["weight"][:, 0], 0.4, rtol=1e-15)
    np.testing.assert_allclose(route["weight"][:, 1], 0.6, rtol=1e-15)


@pytest.mark.parametrize("today", [0, 3, 6])
def test_window_max_is_numpys_masked_max(today: int) -> None:
    # Memories from 1 day to past the ring's 7: numpy's masked max, in the compiled kernel
    # and in its plain form, for each slot the ring may have written last.
    rng = np.random.default_rng(today)
    history = rng.random((3, 4, 5, 7)) * 1000.0
    memory = rng.integers(1, 10, size=(3, 5)).astype(float)
    age = (today - np.arange(7)) % 7
    expected = np.where(age < memory[:, None, :, None], history, 0.0).max(axis=-1)
    np.testing.assert_array_equal(window_max(history, today, memory), expected)
    np.testing.assert_array_equal(_window_max(history, today, memory), expected)
