"""The day's end writes today's busiest hours into the ring of days, every slot's.

:func:`~ipwarmup.envs.days.end_day` records each slot's busiest hour of the day in
``peak_history``, a ring of days that the allowance update of the following days reads
(a provider remembers an IP's busiest hour for ``peak_memory_days``).
"""

from __future__ import annotations

import numpy as np
from gymnasium.utils import seeding

from ipwarmup.envs import build_config
from ipwarmup.envs.config import HOURS_PER_DAY
from ipwarmup.envs.days import end_day
from ipwarmup.envs.simulator import Simulator

ROWS = 3


def test_todays_peak_joins_the_ring_in_every_slot_and_leaves_the_other_days() -> None:
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=["decision_interval_hours=6", "pool.initial_ips=2"],
    )
    sim = Simulator(config, ROWS)
    sim.reset(np.arange(ROWS), [seeding.np_random(11 + i)[0] for i in range(ROWS)])
    for _ in range(3):  # to 18:00 of the first day
        sim.step(np.zeros((ROWS, sim.codec.size)))
    state = sim.state
    window = state.peak_history.shape[-1]
    today = (state.ring_clock // HOURS_PER_DAY) % window
    rng = np.random.default_rng(5)
    state.peak_history[:] = rng.uniform(0.0, 50.0, state.peak_history.shape)
    state.day_peak[:, :2] = rng.uniform(0.0, 50.0, state.day_peak[:, :2].shape)
    state.day_peak[:, 2:] = 7.0  # idle slots: their stale peaks are written too
    history = state.peak_history.copy()
    day_peak = state.day_peak.copy()
    hold = np.array([pc.hold_utilization for pc in sim.config.providers.values()])
    end_day(state, hold)
    history[..., today] = day_peak
    np.testing.assert_array_equal(state.peak_history, history)
