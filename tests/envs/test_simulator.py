"""The batched simulator's own duties: resets, batch checks, feedback lags, replicas."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.envs import build_config
from ipwarmup.envs.config import EnvConfig
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.state import SimState

# Arrays per IP slot: only the pool's slots (below n_ips) hold an IP; an IP that takes an
# empty slot starts it afresh (pool.add_ip), so what an empty slot holds is never read.
PER_SLOT = {
    "ip_age_days", "caps", "allowance", "reputation", "pressure", "blocked",
    "blocked_until", "throttled", "throttled_until", "recent_volume", "previous_day_sent",
    "day_sent", "day_peak", "day_overshoot", "peak_history",
}  # fmt: skip


def _fields(state: SimState, row: int) -> dict[str, np.ndarray]:
    """Every array of ``state`` at ``row``, by dotted name (draws, telemetry, accounting)."""
    out: dict[str, np.ndarray] = {}
    for field in dataclasses.fields(state):
        value = getattr(state, field.name)
        if field.name in PER_SLOT:
            out[field.name] = value[row, : state.n_ips[row]]
        elif isinstance(value, np.ndarray):
            out[field.name] = value[row]
        elif isinstance(value, dict):
            out.update({f"{field.name}.{k}": v[row] for k, v in value.items()})
        elif dataclasses.is_dataclass(value):
            out.update({f"{field.name}.{k}": v[row] for k, v in vars(value).items()})
    return out


def _pushed(config: EnvConfig, rows: int, steps: int) -> Simulator:
    """A batch driven hard for ``steps`` periods: queues, throttles, blocks, pool moves."""
    sim = Simulator(config, rows)
    sim.reset(np.arange(rows), [seeding.np_random(50 + i)[0] for i in range(rows)])
    rng = np.random.default_rng(1)
    for _ in range(steps):
        actions = rng.uniform(0.5, 1.0, size=(rows, sim.codec.size))
        actions[:, -1] = rng.choice([-1.0, 1.0], size=rows)
        sim.step(actions)
    return sim


@pytest.mark.parametrize("overflow", ["shared", "queue"])
def test_a_used_batch_resets_rows_to_what_a_fresh_batch_starts_with(overflow: str) -> None:
    """Rows 0 and 2 of a batch driven for 20 days, reset, equal a fresh batch's rows.

    Every array of the state is compared (draws, clock, pool, blocks, throttles,
    offences, queue, complaint history, telemetry, accounting, continuation), then both
    batches step alike; row 1, not reset, keeps what it had.
    """
    config = build_config(
        scenario="bursty_b2c_marketing",
        overrides=[
            f"mta.overflow={overflow}",
            "reward.continuation_days=0",
            # A noisy-neighbour incident starts on every idle day, day 0 of an episode too.
            "shared_pool.incident_probability_per_day=1.0",
        ],
    )
    used = _pushed(config, 3, 20)
    assert used.state.accounting["block_events"].sum() + used.state.offences.sum() > 0
    assert used.state.hour_of_day == 0
    row1 = _fields(used.state, 1)
    row1 = {name: value.copy() for name, value in row1.items()}
    gens = [seeding.np_random(900 + i)[0] for i in range(2)]
    used.reset(np.array([0, 2]), gens)
    fresh = Simulator(config, 2)
    fresh.reset(np.arange(2), [seeding.np_random(900 + i)[0] for i in range(2)])
    for used_row, fresh_row in ((0, 0), (2, 1)):
        mine, theirs = _fields(used.state, used_row), _fields(fresh.state, fresh_row)
        for name, value in theirs.items():
            np.testing.assert_array_equal(mine[name], value, err_msg=name)
        # No slot, empty or not, keeps a block, a throttle or pressure from the last
        # episode: the privileged view (for reports and the oracle) shows every slot.
        st = used.state
        assert not used.privileged().blocked[used_row].any()
        assert not st.throttled[used_row].any()
        np.testing.assert_array_equal(st.throttled_until[used_row], -np.inf)
        np.testing.assert_array_equal(st.pressure[used_row], 0.0)
        np.testing.assert_array_equal(st.caps[used_row, st.n_ips[used_row] :], 0.0)
    assert fresh.state.incident_until_day.min() > 1.0  # an incident started on day 0
    for name, value in _fields(used.state, 1).items():
        np.testing.assert_array_equal(value, row1[name], err_msg=name)
    rng = np.random.default_rng(2)
    for _ in range(6):
        actions = rng.uniform(-1.0, 1.0, size=(2, used.codec.size))
        batch = np.stack([actions[0], np.zeros(used.codec.size), actions[1]])
        ours = used.step(batch)
        theirs_ = fresh.step(actions)
        np.testing.assert_array_equal(ours.observation[[0, 2]], theirs_.observation)
        np.testing.assert_array_equal(ours.reward[[0, 2]], theirs_.reward)


def test_the_whole_batch_resets_to_midnight_whatever_its_hour() -> None:
    config = build_config(overrides=["decision_interval_hours=6"])
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(i)[0] for i in range(2)])
    sim.step(np.zeros((2, sim.codec.size)))
    assert sim.state.hour_of_day == 6
    sim.reset(np.array([1, 0]), [seeding.np_random(i)[0] for i in range(2)])
    assert sim.state.hour_of_day == 0
    np.testing.assert_array_equal(sim.state.hour, 0)
    np.testing.assert_array_equal(sim.telemetry.hour, 0.0)


def test_a_batch_needs_a_row_and_actions_for_each_of_its_rows() -> None:
    config = build_config()
    with pytest.raises(ValueError, match=r"^n_envs: expected at least 1, got 0$"):
        Simulator(config, 0)
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(i)[0] for i in range(2)])
    size = sim.codec.size
    with pytest.raises(ValueError, match=rf"Unexpected action shape \(3, {size}\): expected "):
        sim.step(np.zeros((3, size)))
    with pytest.raises(ValueError, match=rf"expected \(2, {size}\)"):
        sim.step(np.zeros((1, size)))
    assert Simulator(config, 1).n_envs == 1  # one row is a batch
    # Each reset row needs its own generator: one short is refused, not silently skipped.
    with pytest.raises(ValueError, match="zip"):
        sim.reset(np.arange(2), [seeding.np_random(5)[0]])


@pytest.mark.parametrize(("interval", "gmail_lag", "other_lag"), [(24, 2, 1), (6, 5, 4)])
def test_complaints_reach_the_sender_ceil_delay_over_interval_periods_later(
    interval: int, gmail_lag: int, other_lag: int
) -> None:
    """Gmail's feed lags 30 h, the others' 24 h: ceil(delay / interval) periods each."""
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=[
            f"decision_interval_hours={interval}",
            "providers.gmail.complaint_feedback_delay_hours=30.0",
            "reward.continuation_days=0",
        ],
    )
    sim = Simulator(config, 1)
    sim.reset(np.array([0]), [seeding.np_random(3)[0]])
    sampled, shown = [], []
    for _ in range(3 * 24 // interval):
        sim.step(np.zeros((1, sim.codec.size)))
        sampled.append(sim.state.complaint_history[0, 0].copy())
        shown.append(sim.telemetry.complaints[0].copy())
    names = config.provider_names
    feeds = [pc.complaint_feedback for pc in config.providers.values()]
    for p, name in enumerate(names):
        lag = gmail_lag if name == "gmail" else other_lag
        for t, seen in enumerate(shown):
            expected = sampled[t - lag][p] if t >= lag and feeds[p] else 0.0
            assert seen[p] == expected, (name, t)
    # Gmail's complaints were there to be shown (quiet night periods may have none).
    assert sum(s[0] > 0 for s in sampled) > len(sampled) // 2


def test_a_replica_meets_the_same_future_as_its_original() -> None:
    config = build_config(
        scenario="bursty_b2c_marketing",
        overrides=["decision_interval_hours=6", "reward.continuation_days=0"],
    )
    sim = _pushed(config, 2, 5)
    clone = sim.replicate(3)
    assert clone.n_envs == 6
    rng = np.random.default_rng(4)
    for _ in range(8):  # two days: two midnights draw the next day's demand and incidents
        actions = rng.uniform(-1.0, 1.0, size=(2, sim.codec.size))
        ours = sim.step(actions)
        theirs = clone.step(np.repeat(actions, 3, axis=0))
        np.testing.assert_array_equal(theirs.observation, np.repeat(ours.observation, 3, axis=0))
        np.testing.assert_array_equal(theirs.reward, np.repeat(ours.reward, 3))
    for key, values in sim.accounting.items():
        np.testing.assert_array_equal(clone.accounting[key], np.repeat(values, 3), err_msg=key)


def test_a_row_that_ends_its_horizon_alone_gets_its_continuation() -> None:
    """Row 1 restarts a day later than row 0, so row 0 ends its horizon alone.

    Its last reward counts a one-day continuation (the shortest there is); row 1's does
    not, until it ends a day later.
    """
    config = build_config(
        scenario="steady_b2c_transactional",
        overrides=["horizon_days=2", "reward.continuation_days=1"],
    )
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(i)[0] for i in range(2)])
    hold = np.zeros((2, sim.codec.size))
    sim.step(hold)
    sim.reset(np.array([1]), [seeding.np_random(7)[0]])  # at midnight: allowed
    first = sim.step(hold)
    np.testing.assert_array_equal(first.truncated, [True, False])
    assert first.continuation_reward[0] > 0.0 and first.continuation_reward[1] == 0.0
    assert sim.state.continuation["demand"][0] > 0.0
    sim.reset(np.array([0]), [seeding.np_random(8)[0]])
    second = sim.step(hold)
    np.testing.assert_array_equal(second.truncated, [False, True])
    assert second.continuation_reward[1] > 0.0 and second.continuation_reward[0] == 0.0
