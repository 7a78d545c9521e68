"""The compiled period is the step functions run in order (envs/period_kernel.py).

``Simulator._advance`` runs one compiled call; the step functions stay callable from
Python on a state, and their own tests pin their formulas. Here a copy of the same state
runs those step functions one after another, as the simulator did before the period was
compiled, and every array of both states must agree exactly.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.envs import build_config
from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.days import end_day
from ipwarmup.envs.escalation import acceptance_limit
from ipwarmup.envs.mta import Period, run_hours
from ipwarmup.envs.outcomes import close_period, ip_days, refresh_pool_telemetry
from ipwarmup.envs.pool import apply_actions, ramp_warming_ips
from ipwarmup.envs.providers import DRAW_FIELDS, ProviderDraw, draw_block
from ipwarmup.envs.reward import period_reward
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.state import SimState

ROWS = 3
# New IPs far above what cold IPs are allowed, at providers that throttle and block at
# little pressure: the periods reach both escalations.
TOUCHY = (
    "pool.initial_hourly_cap_messages=20000.0",
    *(
        f"providers.{name}.escalation_threshold=[0.5, 1.0]"
        for name in ("gmail", "microsoft", "yahoo", "apple", "other")
    ),
)
CONFIGS = {
    "daily-shared": ("pool.max_ips=3",),
    "6h-queue": ("mta.overflow=queue", "decision_interval_hours=6", "pool.initial_ips=2"),
    "1h-shared-retry": ("decision_interval_hours=1", "mta.retry_interval_hours=2.5"),
}


def _flat(value: Any, name: str = "state") -> dict[str, Any]:
    """Every array and clock of a state by dotted name."""
    if isinstance(value, np.ndarray | int | float):
        return {name: value}
    if isinstance(value, dict):
        items = value.items()
    else:
        items = ((f.name, getattr(value, f.name)) for f in dataclasses.fields(value))
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(_flat(item, f"{name}.{key}"))
    return out


def _step_functions(sim: Simulator, actions: np.ndarray, *, hold: bool) -> np.ndarray:
    """Run one period of ``sim`` with the Python-callable step functions; return the reward."""
    st, cfg = sim.state, sim.config
    hours = cfg.decision_interval_hours
    if hold:  # the continuation's caps: what each provider accepts now
        accepted = np.where(st.blocked, cfg.pool.min_hourly_cap_messages, acceptance_limit(st))
        st.caps = np.where(st.active[:, :, None], sim.codec.clip_caps(accepted), 0.0)
    apply_actions(st, actions, sim.codec, cfg.pool)
    period = Period(sim.n_envs, sim.max_ips, sim.n_providers)
    run_hours(st, period, cfg)
    close_period(
        st,
        period,
        hours_per_step=hours,
        complaint_lag=sim._complaint_lag,
        complaint_feed=sim._complaint_feed,
    )
    reward = period_reward(
        cfg.reward,
        period,
        inbox_dedicated=st.outcome["inbox_dedicated"],
        inbox_shared=st.outcome["inbox_shared"],
        ip_days=ip_days(st, hours),
        messages_per_period=st.sender.daily_volume * hours / HOURS_PER_DAY,
    )
    if st.hour_of_day == 0:
        end_day(st, sim._hold)
        ramp_warming_ips(st, cfg.pool.warming_ip_growth_per_day)
        sim._start_day(np.arange(sim.n_envs))
    refresh_pool_telemetry(st)
    return reward


def _assert_same(left: SimState, right: SimState) -> None:
    a, b = _flat(left), _flat(right)
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.parametrize("variant", sorted(CONFIGS))
def test_each_period_equals_the_step_functions_in_order(variant: str) -> None:
    config = build_config(scenario="bursty_b2c_marketing", overrides=CONFIGS[variant] + TOUCHY)
    sim = Simulator(config, ROWS)
    sim.reset(np.arange(ROWS), [seeding.np_random(40 + i)[0] for i in range(ROWS)])
    rng = np.random.default_rng(3)
    periods = 2 * HOURS_PER_DAY // config.decision_interval_hours + 3  # past two midnights
    events = np.zeros(2)
    for step in range(periods):
        # Caps pushed up hard (throttles and blocks follow), every pool action in turn.
        actions = rng.uniform(0.2, 1.0, size=(ROWS, sim.codec.size))
        actions[:, -1] = [-1.0, 0.0, 1.0][step % 3]
        reference = sim.replicate(1)
        expected = _step_functions(reference, actions, hold=False)
        got, ran = sim._advance(actions)
        assert ran == 1
        np.testing.assert_array_equal(got, expected)
        _assert_same(sim.state, reference.state)
        events += [sim.state.accounting[key].sum() for key in ("throttle_events", "block_events")]
    assert np.all(events > 0)  # the pushed caps reached both escalations


@pytest.mark.parametrize("hold", [True, False])
def test_periods_of_one_call_stop_at_midnight_and_count_their_own_events(hold: bool) -> None:
    # The continuation runs a day's periods in one call, caps held at what each provider
    # accepts; the same call without hold keeps pushing, so its periods throttle and block.
    overrides = ("decision_interval_hours=6", *TOUCHY)
    config = build_config(scenario="steady_b2c_transactional", overrides=overrides)
    sim = Simulator(config, ROWS)
    sim.reset(np.arange(ROWS), [seeding.np_random(7 + i)[0] for i in range(ROWS)])
    sim.step(np.full((ROWS, sim.codec.size), 0.5))  # to hour 6 of the day
    keys = ("throttle_events", "block_events")
    before = [sim.state.accounting[key].copy() for key in keys]
    actions = np.zeros((ROWS, sim.codec.size)) if hold else np.full((ROWS, sim.codec.size), 0.9)
    reference = sim.replicate(1)
    expected = np.zeros(ROWS)
    for _ in range(3):  # hours 6-24: three periods, the last ending at midnight
        expected += _step_functions(reference, actions, hold=hold)
    value = np.zeros(ROWS)
    reward, ran = sim._advance(actions, hold=hold, periods=10, reward=value)
    assert ran == 3 and reward is value
    np.testing.assert_array_equal(value, expected)
    _assert_same(sim.state, reference.state)
    assert sim.state.hour_of_day == 0 and sim.state.ring_clock == HOURS_PER_DAY
    if not hold:
        after = [sim.state.accounting[key] for key in keys]
        assert all(np.any(new > old) for new, old in zip(after, before, strict=True))


def test_a_draw_is_one_block_and_assigning_a_field_writes_into_it() -> None:
    sim = Simulator(build_config(), 2)
    draw = sim.state.draw
    block = draw_block(draw)
    assert block.shape == (len(DRAW_FIELDS), 2, sim.n_providers)
    draw.trust_growth = np.full((2, sim.n_providers), 1.25)  # rebinding keeps the block
    assert draw_block(draw) is block
    np.testing.assert_array_equal(block[DRAW_FIELDS.index("trust_growth")], 1.25)
    fields = {name: getattr(draw, name) for name in DRAW_FIELDS}
    fields["trust_growth"] = np.ones(3)  # a field of another shape: refused
    with pytest.raises(ValueError, match=r"ProviderDraw: expected every field of one shape"):
        ProviderDraw(**fields)
