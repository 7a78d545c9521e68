"""The day's end over a pool's slots: idle slots add nothing, a removed IP's mail counts.

:func:`~ipwarmup.envs.days.end_day` walks every slot of a row for the domain's day, but
skips the per-IP work of slots that hold no IP and sent nothing that day.
"""

from __future__ import annotations

import numpy as np
from gymnasium.utils import seeding

from ipwarmup.envs import build_config
from ipwarmup.envs.days import end_day
from ipwarmup.envs.hour_kernel import _held_one, held_one, window_max
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.state import SimState, take

ROWS = 2


def _midday_state() -> tuple[Simulator, SimState]:
    """A batch stepped into its fourth day with one IP per row (slots 1+ idle)."""
    config = build_config(
        scenario="steady_b2c_transactional", overrides=["decision_interval_hours=6"]
    )
    sim = Simulator(config, ROWS)
    sim.reset(np.arange(ROWS), [seeding.np_random(3 + i)[0] for i in range(ROWS)])
    actions = np.zeros((ROWS, sim.codec.size))
    actions[:, :-1] = 0.6  # push: mail, spikes and overshoot on the one IP
    for _ in range(14):
        sim.step(actions)
    assert np.all(sim.state.n_ips == 1)
    assert np.all(sim.state.day_sent[:, 0, :].sum(axis=1) > 0)
    return sim, sim.state


def _hold(sim: Simulator) -> np.ndarray:
    return np.array([pc.hold_utilization for pc in sim.config.providers.values()])


def test_stale_fields_of_an_idle_slot_never_reach_the_day() -> None:
    sim, state = _midday_state()
    clean = take(state, np.arange(ROWS))
    stale = take(state, np.arange(ROWS))
    # Slot 1 holds no IP and sent nothing today; whatever else it holds is left over.
    stale.day_overshoot[:, 1:, :] = np.nan
    stale.recent_volume[:, 1:, :] = 1e9
    stale.previous_day_sent[:, 1:, :] = 1e9
    end_day(clean, _hold(sim))
    end_day(stale, _hold(sim))
    for name in ("domain_reputation", "reputation", "allowance", "shared_share"):
        np.testing.assert_array_equal(getattr(stale, name), getattr(clean, name), err_msg=name)
    assert np.all(np.isfinite(stale.domain_reputation))


def test_mail_of_a_removed_ip_still_counts_for_the_domain() -> None:
    sim, state = _midday_state()
    kept = take(state, np.arange(ROWS))
    removed = take(state, np.arange(ROWS))
    # Slot 1 sent today before its IP left the pool: mail far above its history, with
    # overshoot, is judged worse than the list, and the domain reads it.
    removed.day_sent[:, 1, :] = 10 * removed.day_sent[:, 0, :] + 1000.0
    removed.day_overshoot[:, 1, :] = 24.0
    end_day(kept, _hold(sim))
    end_day(removed, _hold(sim))
    assert np.all(removed.domain_reputation < kept.domain_reputation)
    # The per-IP state of the idle slot is not moved (no IP to judge).
    np.testing.assert_array_equal(removed.reputation[:, 1:], state.reputation[:, 1:])
    np.testing.assert_array_equal(removed.allowance[:, 1:], state.allowance[:, 1:])


def test_held_one_is_window_max_of_one_slot() -> None:
    rng = np.random.default_rng(5)
    history = rng.uniform(0.0, 100.0, (2, 3, 2, 7))
    memory = np.array([[3.0, 9.0], [0.0, 1.0]])
    for today in (0, 4, 6):
        full = window_max(history, today, memory)
        for b in range(2):
            for k in range(3):
                for p in range(2):
                    days = min(int(memory[b, p]), 7)
                    assert held_one(history, b, k, p, today, days) == full[b, k, p]
    # By hand: the last 3 days up to slot 1 of the ring are slots 1, 0 and 6.
    ring = np.array([5.0, 2.0, 0.0, 0.0, 0.0, 0.0, 9.0]).reshape(1, 1, 1, 7)
    assert held_one(ring, 0, 0, 0, 1, 3) == 9.0
    assert held_one(ring, 0, 0, 0, 1, 2) == 5.0
    assert held_one(ring, 0, 0, 0, 1, 0) == 0.0
    # A day count past the ring, or before it, is read modulo its width (8 and -6 are 1).
    for today in (8, -6):
        assert held_one(ring, 0, 0, 0, today, 3) == 9.0
        assert _held_one(ring, 0, 0, 0, today, 2) == 5.0
    assert held_one(ring, 0, 0, 0, 0, 7) == 9.0  # the whole ring, wrapping once


def test_allowance_holds_for_a_peak_within_the_providers_memory_only() -> None:
    sim, state = _midday_state()
    state.draw.peak_memory_days[:] = 3.0  # shorter than the 7-day ring
    state.day_peak[:, 0, :] = 0.0  # an idle day after idle days: the allowance cools
    state.peak_history[:, 0, :, :] = 0.0
    today = (state.ring_clock // 24) % state.peak_history.shape[-1]
    peak = 10 * state.allowance[:, 0, :]

    def allowance_after(age: int | None) -> np.ndarray:
        copy = take(state, np.arange(ROWS))
        if age is not None:
            copy.peak_history[:, 0, :, (today - age) % 7] = peak
        end_day(copy, _hold(sim))
        return copy.allowance[:, 0, :]

    idle = allowance_after(None)
    cooling = idle < state.allowance[:, 0, :]  # the others sit at the cold floor already
    assert cooling.sum() >= 3, cooling
    np.testing.assert_array_equal(allowance_after(3), idle)  # the 4th day back: forgotten
    held = allowance_after(2)  # the 3rd day back, today included: remembered
    assert np.all(held[cooling] > idle[cooling])
    np.testing.assert_array_equal(held[~cooling], idle[~cooling])
