"""The pool's step functions on hand-set states: IPs joining fresh, leaving, ramping."""

from __future__ import annotations

import numpy as np
from gymnasium.utils import seeding

from ipwarmup.actions import POOL_THRESHOLD
from ipwarmup.envs import build_config
from ipwarmup.envs.pool import add_ip, apply_actions, ramp_warming_ips, remove_ip
from ipwarmup.envs.simulator import Simulator

ROWS = 3


def _sim(*overrides: str) -> Simulator:
    config = build_config(scenario="steady_b2c_transactional", overrides=list(overrides))
    sim = Simulator(config, ROWS)
    sim.reset(np.arange(ROWS), [seeding.np_random(i)[0] for i in range(ROWS)])
    return sim


def test_an_ip_added_to_a_used_slot_starts_fresh() -> None:
    sim = _sim()
    st = sim.state
    # Slot 1 held an IP that was throttled, blocked and busy before it was dropped.
    for name, value in (
        ("pressure", 5.0),
        ("blocked", True),
        ("blocked_until", 99.0),
        ("throttled", True),
        ("throttled_until", 50.0),
        ("recent_volume", 7.0),
        ("previous_day_sent", 7.0),
        ("allowance", 1234.0),
        ("reputation", 0.1),
    ):
        getattr(st, name)[:, 1] = value
    st.ip_age_days[:, 1] = 9.0
    rows = np.array([0, 2])
    add_ip(st, rows, sim.config.pool)
    np.testing.assert_array_equal(st.n_ips, [2, 1, 2])
    fresh = st.draw
    for row in rows:
        assert np.all(st.pressure[row, 1] == 0.0)
        assert not st.blocked[row, 1].any() and not st.throttled[row, 1].any()
        assert np.all(st.blocked_until[row, 1] == 0.0)
        assert np.all(st.throttled_until[row, 1] == -np.inf)
        assert np.all(st.recent_volume[row, 1] == 0.0)
        assert np.all(st.previous_day_sent[row, 1] == 0.0)
        assert st.ip_age_days[row, 1] == 0.0
        np.testing.assert_array_equal(st.allowance[row, 1], fresh.cold_allowance[row])
        np.testing.assert_array_equal(st.reputation[row, 1], fresh.cold_reputation[row])
        # 20 an hour split by the sender's mix, never under the 1-message floor.
        caps = np.maximum(20.0 * st.sender.mix[row], 1.0)
        np.testing.assert_allclose(st.caps[row, 1], caps)
    # Row 1 got no IP: its stale slot is untouched.
    assert st.pressure[1, 1, 0] == 5.0 and st.ip_age_days[1, 1] == 9.0


def test_dropping_a_troubled_ip_costs_the_domain_and_a_clean_one_does_not() -> None:
    sim = _sim()
    st = sim.state
    st.throttled[0, 0, 1] = True  # row 0: throttled at microsoft
    st.blocked[1, 0, 0] = True  # row 1: blocked at gmail
    before = st.domain_reputation.copy()
    remove_ip(st, np.arange(ROWS))
    penalty = st.draw.domain_block_penalty
    np.testing.assert_allclose(st.domain_reputation[0, 1], before[0, 1] - penalty[0, 1])
    np.testing.assert_allclose(st.domain_reputation[1, 0], before[1, 0] - penalty[1, 0])
    np.testing.assert_array_equal(st.domain_reputation[2], before[2])  # row 2 was clean
    changed = np.zeros_like(before, dtype=bool)
    changed[0, 1] = changed[1, 0] = True
    np.testing.assert_array_equal(st.domain_reputation[~changed], before[~changed])
    np.testing.assert_array_equal(st.n_ips, 0)
    assert not st.blocked.any() and not st.throttled.any()
    assert np.all(st.caps == 0.0)


def test_warming_ips_ramp_per_provider_toward_the_leader_and_stop_there() -> None:
    sim = _sim("pool.initial_ips=2")
    st = sim.state
    st.caps[:, 0] = [[1000.0, 100.0, 400.0, 40.0, 200.0]]
    st.caps[:, 1] = [[10.0, 300.0, 390.0, 40.0, 1.0]]
    ramp_warming_ips(st, 1.4)
    # IP 1 grows x1.4 where it is below IP 0 (gmail, yahoo up to IP 0's 400, other); IP 0
    # grows where IP 1 leads (microsoft, up to 300); equal caps stay.
    np.testing.assert_allclose(st.caps[0, 1], [14.0, 300.0, 400.0, 40.0, 1.4])
    np.testing.assert_allclose(st.caps[0, 0], [1000.0, 140.0, 400.0, 40.0, 200.0])
    # The empty slots stay empty.
    assert np.all(st.caps[:, 2:] == 0.0)
    before = st.caps.copy()
    ramp_warming_ips(st, 1.0)  # the ramp turned off
    np.testing.assert_array_equal(st.caps, before)


def _pool_actions(grow: list[bool]) -> np.ndarray:
    actions = np.zeros((ROWS, 6))
    actions[:, -1] = np.where(grow, POOL_THRESHOLD + 0.1, 0.0)
    return actions


def test_the_pool_changes_at_most_once_a_day_and_never_past_max_ips() -> None:
    sim = _sim("pool.max_ips=2")
    st, codec, pool = sim.state, sim.codec, sim.config.pool
    # At reset no change has happened yet: every row may change at once.
    apply_actions(st, _pool_actions([True, False, True]), codec, pool)
    np.testing.assert_array_equal(st.n_ips, [2, 1, 2])
    np.testing.assert_array_equal(st.last_pool_change_hour, [0.0, -np.inf, 0.0])
    # 23 hours later rows 0 and 2 may not change again; row 1 may.
    st.hour[:] = 23
    apply_actions(st, -_pool_actions([True, True, True]), codec, pool)
    np.testing.assert_array_equal(st.n_ips, [2, 0, 2])
    # A day after their change, exactly, they may; row 1 changed at hour 23.
    st.hour[:] = 24
    apply_actions(st, -_pool_actions([True, True, True]), codec, pool)
    np.testing.assert_array_equal(st.n_ips, [1, 0, 1])
    # At max_ips (2) a grow is refused; below it, it is taken.
    st.hour[:] = 48
    st.n_ips[:] = [2, 1, 1]
    apply_actions(st, _pool_actions([True, True, False]), codec, pool)
    np.testing.assert_array_equal(st.n_ips, [2, 2, 1])
    np.testing.assert_array_equal(st.last_pool_change_hour, [24.0, 48.0, 24.0])
