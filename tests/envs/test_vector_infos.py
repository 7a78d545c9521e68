"""The VecEnv's ``info["accounting"]``: a mapping per env over the step's copy of the counts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from ipwarmup.envs.simulator import ACCOUNTING_KEYS, EXTRA_ACCOUNTING_KEYS
from ipwarmup.envs.vector import AccountingRow, make_vec_env

KEYS = ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS


def test_accounting_row_reads_its_column_by_key() -> None:
    table = np.arange(len(KEYS) * 3, dtype=np.float64).reshape(len(KEYS), 3)
    row = AccountingRow(table, 2)
    assert list(row) == list(KEYS)
    assert len(row) == len(KEYS)
    assert row["demand"] == 2.0  # key 0, env 2
    assert row["accepted_dedicated"] == (len(KEYS) - 1) * 3 + 2.0
    assert type(row["demand"]) is float
    assert row == {key: float(3 * i + 2) for i, key in enumerate(KEYS)}
    assert row != {key: float(3 * i + 1) for i, key in enumerate(KEYS)}
    assert repr(row) == repr(dict(row))
    with pytest.raises(KeyError):
        row["unknown"]


def test_infos_hold_each_envs_counts_of_their_step() -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_mode.*", category=UserWarning)
        env = make_vec_env(scenario="steady_b2c_transactional", n_envs=3, seed=1)
    env.reset()
    actions = np.zeros((3, env.action_space.shape[0]), dtype=np.float32)
    _, _, _, first = env.step(actions)
    snapshot = [dict(info["accounting"]) for info in first]
    for i in range(3):
        assert snapshot[i] == {key: float(env.simulator.accounting[key][i]) for key in KEYS}
    assert snapshot[0]["demand"] > 0
    env.step(actions)
    # The next step moves the counts but not what the earlier infos report.
    assert env.simulator.accounting["demand"][0] > snapshot[0]["demand"]
    assert [dict(info["accounting"]) for info in first] == snapshot


def test_a_world_batchs_infos_hold_each_envs_counts_across_its_simulators() -> None:
    from ipwarmup.envs.world_vec import make_world_vec_env

    # Eight envs of a world draw both overflow modes: two simulators, envs interleaved.
    env = make_world_vec_env(world="default", overrides=["horizon_days=3"], n_envs=8, seed=2)
    env.reset()
    assert len(env._groups) == 2
    actions = np.zeros((8, env.action_space.shape[0]), dtype=np.float32)
    _, _, _, infos = env.step(actions)
    for simulator, members in env._groups:
        for row, i in enumerate(members):
            want = {key: float(simulator.accounting[key][row]) for key in KEYS}
            assert dict(infos[i]["accounting"]) == want
            assert want["demand"] > 0
