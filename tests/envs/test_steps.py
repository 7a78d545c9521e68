"""Each step function of the simulator, driven on its own over explicit states."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils import seeding
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ipwarmup.envs import build_config
from ipwarmup.envs.config import RewardConfig
from ipwarmup.envs.days import end_day
from ipwarmup.envs.escalation import escalate, lift, repeat_factor
from ipwarmup.envs.mta import Period, run_hours
from ipwarmup.envs.pool import apply_actions
from ipwarmup.envs.reward import period_reward
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.state import SimState, take

ROWS = 3
SCENARIOS = ("steady_b2c_transactional", "bursty_b2c_marketing", "b2b_microsoft_heavy")
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _simulator(
    scenario: str, overflow: str, seed: int, steps: int, push: float, retry: float = 1.0
) -> Simulator:
    """A batch stepped ``steps`` times with caps pushed by ``push`` (blocks happen at 1)."""
    config = build_config(
        scenario=scenario,
        overrides=[
            f"mta.overflow={overflow}",
            "decision_interval_hours=6",
            f"mta.retry_interval_hours={retry}",
            "mta.max_age_hours=4",  # a 5-hour retry expires first
        ],
    )
    sim = Simulator(config, ROWS)
    sim.reset(np.arange(ROWS), [seeding.np_random(seed + i)[0] for i in range(ROWS)])
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        actions = rng.uniform(push - 0.5, push, size=(ROWS, sim.codec.size))
        actions[:, -1] = rng.choice([-1.0, 0.0, 1.0], size=ROWS)
        sim.step(actions)
    return sim


states = st.builds(
    _simulator,
    scenario=st.sampled_from(SCENARIOS),
    overflow=st.sampled_from(["shared", "queue"]),
    seed=st.integers(0, 10_000),
    steps=st.integers(0, 30),
    push=st.floats(0.0, 1.0),
    retry=st.sampled_from([0.25, 1.0, 2.5, 5.0]),
)


@SETTINGS
@given(sim=states, data=st.data())
def test_apply_actions_scales_caps_and_moves_the_pool_by_at_most_one(
    sim: Simulator, data: st.DataObject
) -> None:
    state, codec, pool = sim.state, sim.codec, sim.config.pool
    actions = np.array(
        data.draw(
            st.lists(
                st.lists(st.floats(-1, 1), min_size=codec.size, max_size=codec.size),
                min_size=ROWS,
                max_size=ROWS,
            )
        )
    )
    before = take(state, np.arange(ROWS))
    apply_actions(state, actions, codec, pool)
    change = state.n_ips - before.n_ips
    assert set(change.tolist()) <= {-1, 0, 1}
    assert np.all((state.n_ips >= 0) & (state.n_ips <= pool.max_ips))
    grew = change == 1
    if grew.any():  # the new IP starts cold, at the configured cap split by the mix
        slot = before.n_ips[grew]
        rows = np.flatnonzero(grew)
        np.testing.assert_array_equal(state.allowance[rows, slot], state.draw.cold_allowance[rows])
    kept = np.minimum(before.n_ips, state.n_ips)
    for row in range(ROWS):
        old = before.caps[row, : kept[row]]
        expected = np.clip(
            old * codec.cap_factors(actions)[row],
            pool.min_hourly_cap_messages,
            pool.max_hourly_cap_messages,
        )
        np.testing.assert_allclose(state.caps[row, : kept[row]], expected, rtol=1e-12)
        assert np.all(state.caps[row, state.n_ips[row] :] == 0.0)


@SETTINGS
@given(sim=states)
def test_run_hours_conserves_every_message_of_the_period(sim: Simulator) -> None:
    state, config = sim.state, sim.config
    period = Period(ROWS, sim.max_ips, sim.n_providers)
    queue_before = state.queue_total.copy()
    hour_before = state.hour.copy()
    run_hours(state, period, config)
    np.testing.assert_array_equal(state.hour, hour_before + config.decision_interval_hours)
    assert np.all(period.accepted <= period.sent + 1e-9)
    assert np.all(period.rejected >= 0) and np.all(period.expired >= 0)
    # Every message that arrived or waited in the queue went somewhere, exactly once.
    inflow = period.demand + queue_before
    outflow = period.accepted + period.rejected + period.shared + period.expired + state.queue_total
    np.testing.assert_allclose(outflow, inflow, rtol=1e-9, atol=1e-6)


@SETTINGS
@given(sim=states, data=st.data())
def test_escalate_throttles_open_ips_and_blocks_throttled_ones(
    sim: Simulator, data: st.DataObject
) -> None:
    state = sim.state
    seed = data.draw(st.integers(0, 2**31))
    rng = np.random.default_rng(seed)
    escalated = rng.random(state.blocked.shape) < 0.3
    state.throttled = rng.random(state.blocked.shape) < 0.3
    state.offences = rng.integers(0, 5, state.offences.shape).astype(float)
    now = state.hour + 1
    # A throttle lifted less than a day ago (the probation) still counts: pushing on blocks.
    state.throttled_until = np.where(
        rng.random(state.blocked.shape) < 0.5,
        -np.inf,
        now[:, None, None] - rng.uniform(0, 48, state.blocked.shape),
    )
    before = take(state, np.arange(ROWS))
    throttles, blocks = escalate(state, escalated, now)
    open_ = escalated & ~before.blocked
    lifted_lately = now[:, None, None] < before.throttled_until + 24.0
    new_block = open_ & (before.throttled | lifted_lately)
    new_throttle = open_ & ~(before.throttled | lifted_lately)
    np.testing.assert_array_equal(blocks, new_block.sum(axis=(1, 2)))
    np.testing.assert_array_equal(throttles, new_throttle.sum(axis=(1, 2)))
    np.testing.assert_array_equal(state.blocked, before.blocked | new_block)
    np.testing.assert_array_equal(state.throttled, (before.throttled | new_throttle) & ~new_block)
    assert np.all(state.pressure[escalated] == 0.0)
    np.testing.assert_array_equal(state.pressure[~escalated], before.pressure[~escalated])
    d = state.draw
    shape = new_block.shape
    penalty = np.broadcast_to(d.block_penalty[:, None, :], shape)
    cold = np.broadcast_to(d.cold_allowance[:, None, :], shape)
    # Each earlier block of the sender at a provider doubles the durations, up to 8x.
    factor = np.minimum(2.0**before.offences, 8.0)[:, None, :]
    np.testing.assert_array_equal(repeat_factor(before), factor[:, 0, :])
    start = np.broadcast_to(now[:, None, None], shape)
    block_until = start + d.block_hours[:, None, :] * factor
    throttle_until = start + d.throttle_hours[:, None, :] * factor
    np.testing.assert_array_equal(
        state.reputation[new_block],
        np.maximum(before.reputation[new_block] - penalty[new_block], 0),
    )
    np.testing.assert_array_equal(
        state.allowance[new_block], np.maximum(before.allowance[new_block] * 0.5, cold[new_block])
    )
    np.testing.assert_allclose(state.blocked_until[new_block], block_until[new_block])
    np.testing.assert_allclose(state.throttled_until[new_throttle], throttle_until[new_throttle])
    np.testing.assert_array_equal(state.reputation[~new_block], before.reputation[~new_block])
    np.testing.assert_array_equal(state.allowance[~new_block], before.allowance[~new_block])
    # The sender's record: offences and domain reputation move by the new blocks only.
    per_provider = new_block.sum(axis=1)
    np.testing.assert_array_equal(state.offences, before.offences + per_provider)
    np.testing.assert_allclose(
        state.domain_reputation,
        np.maximum(before.domain_reputation - d.domain_block_penalty * per_provider, 0.0),
    )
    # Blocks and throttles end exactly when their time is up, not an hour before.
    timed = new_block | new_throttle
    state.blocked_until[new_block] = 10.0
    state.throttled_until[new_throttle] = 10.0
    state.blocked &= new_block
    state.throttled &= new_throttle
    assert lift(state, np.full(ROWS, 9)) is False
    assert (state.blocked | state.throttled)[timed].all()
    assert lift(state, np.full(ROWS, 10)) is bool(timed.any())
    assert not (state.blocked | state.throttled).any()


@SETTINGS
@given(sim=states)
def test_end_day_moves_only_active_ips_and_keeps_values_in_range(sim: Simulator) -> None:
    state = sim.state
    before = take(state, np.arange(ROWS))
    hold = np.array([pc.hold_utilization for pc in sim.config.providers.values()])
    end_day(state, hold)
    inactive = ~state.active
    np.testing.assert_array_equal(state.reputation[inactive], before.reputation[inactive])
    np.testing.assert_array_equal(state.allowance[inactive], before.allowance[inactive])
    np.testing.assert_array_equal(state.ip_age_days, before.ip_age_days + state.active)
    assert np.all((state.reputation >= 0) & (state.reputation <= 1))
    cold = state.draw.cold_allowance[:, None, :]
    full = state.draw.full_allowance[:, None, :]
    active = state.active[:, :, None] & np.ones_like(state.allowance, dtype=bool)
    assert np.all(state.allowance[active] >= np.broadcast_to(cold, active.shape)[active] - 1e-9)
    assert np.all(state.allowance[active] <= np.broadcast_to(full, active.shape)[active] + 1e-9)


def test_take_copies_rows_in_order_and_shares_nothing() -> None:
    sim = _simulator("steady_b2c_transactional", "queue", 3, 5, 0.8)
    copy = take(sim.state, np.array([2, 0, 0]))
    assert isinstance(copy, SimState)
    np.testing.assert_array_equal(copy.caps[0], sim.state.caps[2])
    np.testing.assert_array_equal(copy.queue_cohorts[1], sim.state.queue_cohorts[0])
    np.testing.assert_array_equal(copy.draw.cold_allowance[2], sim.state.draw.cold_allowance[0])
    assert copy.telemetry.accepted.shape == (3, sim.n_providers)
    copy.caps[:] = -1.0
    copy.accounting["demand"][:] = -1.0
    assert np.all(sim.state.caps >= 0) and np.all(sim.state.accounting["demand"] >= 0)
    assert copy.hour_of_day == sim.state.hour_of_day


def test_reward_formula_by_hand() -> None:
    weights = RewardConfig(
        dedicated_inbox_weight=1.0,
        shared_inbox_weight=0.9,
        lost_penalty=2.0,
        block_penalty=0.5,
        ip_day_penalty=0.01,
    )
    period = Period(1, 2, 2)
    period.demand = np.array([[600.0, 300.0]])
    period.rejected = np.array([[10.0, 0.0]])
    period.expired = np.array([[0.0, 40.0]])
    period.blocks = np.array([1.0])
    reward = period_reward(
        weights,
        period,
        inbox_dedicated=np.array([[400.0, 100.0]]),
        inbox_shared=np.array([[50.0, 150.0]]),
        ip_days=np.array([2.0]),
        messages_per_period=np.array([1000.0]),
    )
    # Per message of V = 1000 (whatever was handled: 900 new plus 100 queued):
    # (1 * 500 + 0.9 * 200 - 2 * 50) / 1000 - 0.5 * 1 block - 0.01 * 2 IP-days = 0.06
    assert reward[0] == pytest.approx(0.58 - 0.5 - 0.02, abs=1e-15)
    # Weekend and weekday periods weigh a message alike: half the mail, half the reward.
    half = Period(1, 2, 2)
    quiet = period_reward(
        weights,
        half,
        inbox_dedicated=np.array([[200.0, 50.0]]),
        inbox_shared=np.array([[25.0, 75.0]]),
        ip_days=np.array([0.0]),
        messages_per_period=np.array([1000.0]),
    )
    assert quiet[0] == pytest.approx((250 + 0.9 * 100) / 1000, abs=1e-15)
    # Rows stay apart (sums run over providers only), and V is at least one message:
    # row 1 has V = 0.25, so its 3 dedicated inbox placements count as 3, not 12.
    two = Period(2, 2, 2)
    two.rejected = np.array([[0.0, 0.0], [1.0, 0.0]])
    both = period_reward(
        weights,
        two,
        inbox_dedicated=np.array([[400.0, 100.0], [2.0, 1.0]]),
        inbox_shared=np.array([[0.0, 0.0], [0.0, 10.0]]),
        ip_days=np.array([0.0, 0.0]),
        messages_per_period=np.array([1000.0, 0.25]),
    )
    # Row 0: 500 / 1000. Row 1: (3 + 0.9 * 10 - 2 * 1) / max(0.25, 1) = 10.
    np.testing.assert_allclose(both, [0.5, 10.0], rtol=1e-15)


def test_a_subset_of_rows_resets_only_at_midnight() -> None:
    config = build_config(overrides=["decision_interval_hours=6"])
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(i)[0] for i in range(2)])
    sim.step(np.zeros((2, sim.codec.size)))
    with pytest.raises(ValueError, match=r"rows \[1\] can only be reset at midnight .* hour 6"):
        sim.reset(np.array([1]), [seeding.np_random(9)[0]])
    sim.reset(np.arange(2), [seeding.np_random(i)[0] for i in range(2)])  # all rows: fine
    assert sim.state.hour_of_day == 0


def test_probation_ends_exactly_a_day_after_the_throttle_lifts() -> None:
    sim = _simulator("steady_b2c_transactional", "shared", 0, 1, 0.0)
    state = sim.state
    escalated = np.zeros_like(state.blocked)
    escalated[:, 0, 0] = True
    now = state.hour + 1
    # Lifted 24 h ago exactly: the probation (24 h) is over, the provider throttles again.
    state.throttled[:] = False
    state.throttled_until[:, 0, 0] = now - 24.0
    throttles, blocks = escalate(state, escalated, now)
    np.testing.assert_array_equal(throttles, 1)
    np.testing.assert_array_equal(blocks, 0)
    # Lifted 23 h ago: still on probation, so pushing on is a block.
    state.throttled[:] = False
    state.pressure[:] = 0.0
    state.throttled_until[:, 0, 0] = now - 23.0
    throttles, blocks = escalate(state, escalated, now)
    np.testing.assert_array_equal(throttles, 0)
    np.testing.assert_array_equal(blocks, 1)
