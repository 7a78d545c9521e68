"""The oracle's ramp held within each provider's spike tolerance.

A day an IP's provider accepts more than ``spike_tolerance`` times its reference volume
(the larger of the IP's recent average and its previous day, never below a day at the cold
allowance) costs the IP quality at midnight. The privileged view reads that day as
``tolerated_volume``, and one of the oracle's plans keeps every IP's hourly cap at a 24th
of it at most, so its day cannot be a spike.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.agents.oracle import OraclePolicy, plan_table, track_allowance
from ipwarmup.envs import build_config
from ipwarmup.envs.days import end_day, spike_reference_one
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.state import take


def _stepped(rows: int, days: int, scenario: str = "steady_b2c_transactional") -> Simulator:
    config = build_config(scenario=scenario, overrides=["pool.initial_ips=2"])
    sim = Simulator(config, rows)
    sim.reset(np.arange(rows), [seeding.np_random(7)[0] for _ in range(rows)])
    hold = np.zeros((rows, sim.codec.size))
    for _ in range(days):
        sim.step(hold)
    return sim


@pytest.mark.parametrize(
    ("recent", "previous", "cold", "expected"),
    [
        (1_000.0, 1_200.0, 10.0, 1_200.0),  # yesterday above the average
        (1_300.0, 1_200.0, 10.0, 1_300.0),  # the average above yesterday
        (100.0, 50.0, 10.0, 240.0),  # a day at the cold allowance: 10 an hour
    ],
)
def test_the_spike_reference_is_the_larger_of_average_and_yesterday_with_a_cold_floor(
    recent: float, previous: float, cold: float, expected: float
) -> None:
    assert spike_reference_one(recent, previous, cold) == expected


def test_the_tolerated_day_is_where_the_day_end_starts_to_charge_a_spike() -> None:
    sim = _stepped(rows=1, days=3)
    state = sim.state
    state.recent_volume[:, :2] = 50_000.0  # high enough that every day is fully trusted
    state.previous_day_sent[:, :2] = 40_000.0
    tolerated = sim.privileged().tolerated_volume
    np.testing.assert_allclose(
        tolerated[0, 0], state.draw.spike_tolerance[0] * 50_000.0, rtol=1e-12
    )
    hold = np.array([pc.hold_utilization for pc in sim.config.providers.values()])
    reputation = {}
    for share in (0.5, 1.0, 1.2):
        day = take(state, np.arange(1))
        day.day_sent[:, :2] = share * tolerated[:, :2]
        day.day_overshoot[:] = 0.0
        end_day(day, hold)
        reputation[share] = day.reputation[0, :2]
    # At or under the tolerated day nothing is charged; above it the IP loses standing.
    np.testing.assert_array_equal(reputation[0.5], reputation[1.0])
    assert np.all(reputation[1.2] < reputation[1.0])


def test_a_ramp_within_tolerance_caps_each_ip_at_a_24th_of_its_tolerated_day() -> None:
    sim = _stepped(rows=2, days=2)
    state = sim.state
    assert np.all(state.n_ips == 2)
    state.blocked[:] = False
    state.throttled[:] = False
    state.caps[:, :2] = 500.0
    state.allowance[:, :2] = 1_000.0  # 99% of it: a factor of 1.98, within one day's 2x
    state.draw.spike_tolerance[:] = 1.5
    state.recent_volume[:, 0] = 10_000.0
    state.previous_day_sent[:, 0] = 12_000.0  # IP 0 tolerates 18,000 a day: 750 an hour
    state.recent_volume[:, 1] = 20_000.0  # IP 1 tolerates 30,000: 1,250 an hour
    state.previous_day_sent[:, 1] = 0.0
    policy = OraclePolicy(sim.config)
    actions = track_allowance(
        policy,
        sim.privileged(),
        pool_target=np.full(2, 2.0),
        headroom=np.full(2, 0.99),
        within_tolerance=np.array([True, False]),
    )
    caps = 500.0 * sim.codec.cap_factors(actions)
    # Row 0: the tightest IP's tolerated hour, 1.5 * 12,000 / 24; row 1: 99% of 1,000.
    np.testing.assert_allclose(caps[0], 750.0, rtol=1e-9)
    np.testing.assert_allclose(caps[1], 990.0, rtol=1e-9)
    # Without the flag at all the allowance alone decides, as before.
    plain = track_allowance(policy, sim.privileged(), np.full(2, 2.0), np.full(2, 0.99))
    np.testing.assert_array_equal(plain, actions[[1, 1]])


def test_a_blocked_ip_does_not_hold_the_ramp_back() -> None:
    sim = _stepped(rows=1, days=2)
    state = sim.state
    state.throttled[:] = False
    state.caps[:, :2] = 500.0
    state.allowance[:, :2] = 1_000.0
    state.draw.spike_tolerance[:] = 1.5
    state.recent_volume[:, :2] = 12_000.0
    state.previous_day_sent[:, :2] = 0.0
    state.recent_volume[:, 1] = 0.0  # IP 1 would tolerate only a cold day ...
    state.blocked[:] = False
    state.blocked[:, 1] = True  # ... but it is blocked: its mail is rejected, not judged
    policy = OraclePolicy(sim.config)
    actions = track_allowance(
        policy, sim.privileged(), np.full(1, 2.0), np.full(1, 0.99),
        within_tolerance=np.array([True]),
    )  # fmt: skip
    np.testing.assert_allclose(500.0 * sim.codec.cap_factors(actions), 750.0, rtol=1e-9)


def test_every_pool_size_has_a_plan_within_tolerance_and_shared_has_none() -> None:
    plans = plan_table(8)
    shared = plans[plans[:, 0] == 0]
    assert shared.tolist() == [[0.0, 0.99, 0.0]]
    for n in (1, 2, 3, 5, 8):
        mine = plans[plans[:, 0] == n]
        assert sorted(map(tuple, mine[:, 1:].tolist())) == [(0.9, 0.0), (0.99, 0.0), (0.99, 1.0)]
    assert set(plan_table(2)[:, 0].tolist()) == {0.0, 1.0, 2.0}


def test_a_provider_that_blocks_every_ip_gets_its_caps_cut_as_fast_as_allowed() -> None:
    # Its mail would be rejected and lost: no plan sends there, within tolerance or not.
    sim = _stepped(rows=2, days=2)
    state = sim.state
    state.throttled[:] = False
    state.blocked[:] = False
    state.blocked[:, :2, 0] = True
    policy = OraclePolicy(sim.config)
    actions = track_allowance(
        policy, sim.privileged(), np.full(2, 2.0), np.full(2, 0.99),
        within_tolerance=np.array([True, False]),
    )  # fmt: skip
    np.testing.assert_array_equal(actions[:, 0], [-1.0, -1.0])
    assert np.all(actions[:, 1:-1] > -1.0)
