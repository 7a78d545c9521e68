"""What a vec step does in Python around the compiled period, done cheaply, changes nothing.

Each test pins one short cut against the plain way it replaced: a reset's draws against
five separate numpy calls per row, a copy of rows against a freshly built simulator, the
infos and continuation infos against reading each value alone, adding an IP to several
rows against adding it row by row.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.envs import IPWarmupEnv, build_config
from ipwarmup.envs import providers as prov
from ipwarmup.envs import sender as snd
from ipwarmup.envs.config import HOURS_PER_DAY, EnvConfig
from ipwarmup.envs.pool import add_ip
from ipwarmup.envs.simulator import CONTINUATION_KEYS, Simulator
from ipwarmup.envs.state import ACCOUNTING_KEYS, EXTRA_ACCOUNTING_KEYS
from ipwarmup.envs.vector import AccountingRow, accounting_table, make_vec_env

KEYS = ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS


def _config(*overrides: str) -> EnvConfig:
    return build_config(scenario="steady_b2c_transactional", overrides=list(overrides))


def test_a_reset_draws_each_rows_five_numpy_draws_in_their_order() -> None:
    """The episode's draws are the five calls a row made, and leave its stream where they did.

    Rows of two scenarios whose mixes differ, interleaved: each row's gammas have its own
    scenario's shapes.
    """
    configs = [_config(), _config("scenario.mix_concentration=7"), _config()]
    sim = Simulator(configs[0], 3)
    sim.reset(np.arange(3), [seeding.np_random(20 + i)[0] for i in range(3)], configs)
    p = sim.n_providers
    for row in range(3):
        scenario = configs[row].scenario
        rng = seeding.np_random(20 + row)[0]
        u_prov = rng.random((prov.N_PROVIDER_UNIFORMS, p))
        u_send = rng.random(snd.N_SENDER_UNIFORMS)
        gammas = rng.standard_gamma(snd.gamma_shapes(scenario, sim.provider_names))
        u_dom = rng.random(p)
        u_shared = rng.random(p)
        draw = prov.draw_providers(sim._provider_list, u_prov[None])
        for name in prov.DRAW_FIELDS:
            np.testing.assert_array_equal(
                getattr(sim.state.draw, name)[row], getattr(draw, name)[0], err_msg=name
            )
        sender = snd.draw_sender(
            scenario, sim.provider_names, u_send[None], gammas[None], u_dom[None]
        )
        for name, values in vars(sender).items():
            np.testing.assert_array_equal(
                getattr(sim.state.sender, name)[row], values[0], err_msg=name
            )
        low, high = sim.config.shared_pool.reputation
        np.testing.assert_array_equal(
            sim.state.shared_reputation[row], low + (high - low) * u_shared
        )
        # The first day's draws followed from the same point of the row's stream.
        rng.random(snd.N_DAILY_UNIFORMS)
        rng.standard_normal((2, HOURS_PER_DAY, p))
        assert sim.generators[row].bit_generator.state == rng.bit_generator.state


def test_a_copy_of_rows_holds_every_attribute_a_built_simulator_has() -> None:
    """A continuation's or replica's simulator is complete and shares no state array."""
    sim = Simulator(_config("observation.history_periods=2"), 4)
    sim.reset(np.arange(4), [seeding.np_random(i)[0] for i in range(4)])
    sim.step(np.full((4, sim.codec.size), 0.3))
    rows = np.array([3, 1])
    clone = sim._take_rows(rows, sim.generators.copies(rows))
    built = Simulator(sim.config, 2)
    assert sorted(vars(clone)) == sorted(vars(built))
    assert clone.n_envs == 2
    np.testing.assert_array_equal(clone._all_rows, [0, 1])
    assert clone._history is not None and clone._history.shape == (2, 2, 9 * sim.n_providers)
    assert not clone._history.any() and not clone._last.any()
    for name in ("_last", "_history"):  # what a built simulator of two rows starts with
        mine, theirs = getattr(clone, name), getattr(built, name)
        assert (mine.shape, mine.dtype) == (theirs.shape, theirs.dtype), name
    for name in ("_settings", "_hold", "_complaint_lag", "_complaint_feed"):
        np.testing.assert_array_equal(getattr(clone, name), getattr(built, name), err_msg=name)
    np.testing.assert_array_equal(clone.state.caps, sim.state.caps[rows])
    np.testing.assert_array_equal(clone._rows.shapes.weekly, sim._rows.shapes.weekly[rows])
    for name, value in vars(clone.state).items():
        if isinstance(value, np.ndarray):
            assert not np.shares_memory(value, getattr(sim.state, name)), name
    # Stepping the copy leaves the original's rows alone.
    caps = sim.state.caps.copy()
    clone.step(np.ones((2, sim.codec.size)))
    np.testing.assert_array_equal(sim.state.caps, caps)


def test_a_reset_needs_one_generator_per_row() -> None:
    sim = Simulator(_config(), 3)
    with pytest.raises(ValueError, match="zip"):
        sim.reset(np.arange(3), [seeding.np_random(i)[0] for i in range(2)])


def test_a_copy_of_rows_without_history_has_none() -> None:
    sim = Simulator(_config("observation.history_periods=0"), 2)
    clone = sim._take_rows(np.array([0]), sim.generators.copies(np.array([0])))
    assert clone._history is None and sim._history is None


def test_continuation_infos_are_each_rows_continuation_info() -> None:
    config = _config("horizon_days=1", "reward.continuation_days=1")
    sim = Simulator(config, 3)
    sim.reset(np.arange(3), [seeding.np_random(i)[0] for i in range(3)])
    result = sim.step(np.zeros((3, sim.codec.size)))
    assert result.truncated.all()
    rows = np.array([2, 0])
    infos = sim.continuation_infos(rows, result)
    assert infos == [sim.continuation_info(2, result), sim.continuation_info(0, result)]
    for info, row in zip(infos, rows, strict=True):
        assert list(info) == ["reward", *CONTINUATION_KEYS]
        assert all(type(value) is float for value in info.values())
        assert info["reward"] == result.continuation_reward[row] != 0.0
        assert info["demand"] == sim.state.continuation["demand"][row] > 0.0


def test_infos_read_the_accounting_in_key_order_whatever_the_dicts_order() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_mode.*", category=UserWarning)
        env = make_vec_env(scenario="steady_b2c_transactional", n_envs=3, seed=1)
    env.reset()
    env.step(np.zeros((3, env.action_space.shape[0]), dtype=np.float32))
    state = env.simulator.state
    table = accounting_table(env.simulator)
    want = np.stack([state.accounting[key] for key in KEYS])
    np.testing.assert_array_equal(table, want)
    assert not np.shares_memory(table, state.accounting["demand"])  # a copy
    # A dict rebuilt by a caller in another order, of new arrays (the next period lays
    # them out afresh, in that order), is still read in the infos' order.
    state.accounting = {key: state.accounting[key].copy() for key in reversed(KEYS)}
    np.testing.assert_array_equal(accounting_table(env.simulator), want)
    env.step(np.zeros((3, env.action_space.shape[0]), dtype=np.float32))
    assert list(state.accounting) == list(reversed(KEYS))
    np.testing.assert_array_equal(
        accounting_table(env.simulator), np.stack([state.accounting[key] for key in KEYS])
    )
    infos = AccountingRow.infos(want, [2, 0])
    assert [dict(info["accounting"]) for info in infos] == [
        {key: float(want[i, row]) for i, key in enumerate(KEYS)} for row in (2, 0)
    ]
    assert [list(info) for info in infos] == [["accounting"], ["accounting"]]


def test_reset_infos_of_ended_envs_are_their_new_episodes() -> None:
    """At the horizon every env restarts; its reset info is its fresh episode's counts."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_mode.*", category=UserWarning)
        env = make_vec_env(
            scenario="steady_b2c_transactional", overrides=["horizon_days=1"], n_envs=3, seed=4
        )
    env.reset()
    first = env.reset_infos
    before = list(first)
    _, _, done, infos = env.step(np.zeros((3, env.action_space.shape[0]), dtype=np.float32))
    assert done.all()
    assert env.reset_infos is first  # entries replaced in place, as SB3 reads them
    # Each new episode's info is a dict of its own (a wrapper may write into it).
    assert all(new is not old for new, old in zip(first, before, strict=True))
    for i in range(3):
        fresh = dict(env.reset_infos[i]["accounting"])
        assert fresh == {key: float(env.simulator.accounting[key][i]) for key in KEYS}
        assert fresh["demand"] == 0.0 and infos[i]["accounting"]["demand"] > 0.0
    # The continuations are a single simulator's, seeded alike (SB3's seed + i).
    sim = Simulator(env.config, 3)
    sim.reset(np.arange(3), [seeding.np_random(4 + i)[0] for i in range(3)])
    result = sim.step(np.zeros((3, sim.codec.size)))
    want = [sim.continuation_info(i, result) for i in range(3)]
    assert [info["continuation"] for info in infos] == want
    assert all(info["reward"] > 0.0 and info["demand"] > 0.0 for info in want)


@pytest.mark.parametrize("rows", [[0, 2], [1, 1], [2]])
def test_adding_an_ip_to_rows_is_adding_it_row_after_row(rows: list[int]) -> None:
    """One compiled call over the rows: a row named twice gets two IPs."""
    config = _config()
    sims = []
    for _ in range(2):
        sim = Simulator(config, 3)
        sim.reset(np.arange(3), [seeding.np_random(9 + i)[0] for i in range(3)])
        sims.append(sim)
    together, alone = sims
    add_ip(together.state, np.array(rows), config.pool)
    for row in rows:
        add_ip(alone.state, np.array([row]), config.pool)
    np.testing.assert_array_equal(together.state.n_ips, alone.state.n_ips)
    for name, value in vars(together.state).items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, getattr(alone.state, name), err_msg=name)
    expected = np.ones(3, dtype=np.int64) * config.pool.initial_ips
    for row in rows:
        expected[row] += 1
    np.testing.assert_array_equal(together.state.n_ips, expected)


def test_a_world_batchs_ended_envs_report_what_single_envs_report() -> None:
    """Continuation and accounting infos of a world's envs, across its two simulators."""
    from ipwarmup.envs.world_vec import make_world_vec_env

    overrides = ["horizon_days=1", "reward.continuation_days=1"]
    env = make_world_vec_env(world="default", overrides=overrides, n_envs=6, seed=11)
    env.reset()
    configs = list(env.episode_configs)
    assert len(env._groups) == 2  # both overflow modes: envs interleaved over two batches
    actions = np.random.default_rng(0).uniform(-1, 1, (6, env.action_space.shape[0]))
    _, _, done, infos = env.step(actions)
    assert done.all()
    for i, config in enumerate(configs):
        single = make_vec_env(config=config, n_envs=1, seed=11 + i)
        single.reset()
        _, _, single_done, single_infos = single.step(actions[i : i + 1])
        assert single_done[0]
        assert infos[i]["continuation"] == single_infos[0]["continuation"]
        assert dict(infos[i]["accounting"]) == dict(single_infos[0]["accounting"])
        assert infos[i]["continuation"]["demand"] > 0.0


def test_period_buffers_are_rewritten_in_place_and_rebound_after_a_replacement() -> None:
    """A step writes the period into the simulator's own arrays and re-points any field
    a caller replaced, so telemetry and outcomes always read the last period."""
    env = IPWarmupEnv(scenario="steady_b2c_transactional")
    env.reset(seed=3)
    sim = env.simulator
    action = np.zeros(env.action_space.shape[0], dtype=np.float32)
    env.step(action)
    telemetry, outcome = sim.telemetry, sim.outcome
    demand, inbox = telemetry.demand, outcome["inbox_dedicated"]
    kept, counted = demand.copy(), sim.accounting["demand"].copy()
    env.step(action)
    assert sim.telemetry.demand is demand  # the same array, rewritten
    assert sim.outcome is outcome and sim.outcome["inbox_dedicated"] is inbox
    assert not np.array_equal(demand, kept)  # it holds the new period now (demand moves)
    np.testing.assert_allclose(demand.sum(axis=1), sim.accounting["demand"] - counted, rtol=1e-12)
    # A caller replaces one telemetry field, then the outcome dict alone: each next step
    # points it back.
    telemetry.queued = np.full_like(telemetry.queued, -1.0)
    env.step(action)
    assert sim.telemetry.queued is sim._buffers.telemetry["queued"]
    assert (sim.telemetry.queued >= 0.0).all()
    sim.state.outcome = {key: value.copy() for key, value in outcome.items()}
    env.step(action)
    assert sim.state.outcome is sim._buffers.outcome
    assert sim.telemetry.queued is sim._buffers.telemetry["queued"]
    # A caller replaces one key of the outcome dict itself: the next step puts it back.
    sim.outcome["inbox_dedicated"] = inbox.copy()
    sim.outcome["extra"] = inbox.copy()
    env.step(action)
    assert sim.outcome["inbox_dedicated"] is inbox
    assert list(sim.outcome) == ["inbox_dedicated", "inbox_shared", "delivered_dedicated",
                                 "delivered_shared"]  # fmt: skip
    # A copy of rows gets arrays of its own at its first step.
    clone = sim.replicate(2)
    clone.step(np.zeros((2, env.action_space.shape[0])))
    assert clone.telemetry.accepted.shape == (2, sim.n_providers)
    assert not np.shares_memory(clone.telemetry.accepted, sim.telemetry.accepted)
