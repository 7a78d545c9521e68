"""The observation's memory and MTA inputs (issue 10): the ring of past periods, the set-up.

The history's ``k``-th block is the provider features of the observation ``k`` decisions
ago, zeros before the warmup started; the MTA's three inputs are the configured set-up,
scaled. Every layout is a prefix-compatible selection of the fullest, so the last period's
features never depend on what else the observation carries.
"""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.envs import IPWarmupEnv, build_config, make_vec_env
from ipwarmup.envs.simulator import Simulator
from ipwarmup.observation import Layout, feature_names, mta_features, obs_size

P = 5
G = 9 * P + 6  # the last period's features
PER = 9 * P  # one past period's


def _episode(overrides: list[str], steps: int, seed: int = 3) -> list[np.ndarray]:
    env = IPWarmupEnv(scenario="bursty_b2c_marketing", overrides=overrides)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    seen = [obs]
    for _ in range(steps):
        obs, *_ = env.step(rng.uniform(-1.0, 1.0, P + 1).astype(np.float32))
        seen.append(obs)
    return seen


def test_each_past_block_is_the_observation_that_many_decisions_ago() -> None:
    seen = _episode([], steps=8)
    for t, obs in enumerate(seen):
        assert obs.shape == (G + 3 + 3 * PER,)
        for k in (1, 2, 3):
            block = obs[G + 3 + PER * (k - 1) : G + 3 + PER * k]
            if t - k >= 0:
                np.testing.assert_array_equal(block, seen[t - k][:PER], err_msg=f"t={t} k={k}")
            else:  # before the warmup started
                np.testing.assert_array_equal(block, np.zeros(PER, np.float32))
    # The first past block is no copy of the current one: traffic moved between decisions.
    assert not np.array_equal(seen[5][G + 3 : G + 3 + PER], seen[5][:PER])


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ((), [0.0, 72 / 168, 1 / 24]),
        (("mta.overflow=queue", "mta.max_age_hours=168", "mta.retry_interval_hours=0.25"),
         [1.0, 1.0, 0.25 / 24]),
        (("mta.overflow=queue", "mta.max_age_hours=24", "mta.retry_interval_hours=6"),
         [1.0, 24 / 168, 6 / 24]),
    ],
)  # fmt: skip
def test_the_mta_inputs_are_the_configured_set_up(
    overrides: tuple[str, ...], expected: list[float]
) -> None:
    seen = _episode(list(overrides), steps=2)
    for obs in seen:  # constant over the episode
        np.testing.assert_array_equal(obs[G : G + 3], np.array(expected, np.float32))
    names = feature_names(build_config().provider_names, Layout(3, True))
    assert names[G : G + 3] == ["mta.queue", "mta.max_age", "mta.retry_interval"]


def test_mta_features_scale_and_clip_to_their_bounds() -> None:
    got = mta_features(queue=np.array([0.0, 1.0]), max_age_hours=np.array([84.0, 336.0]),
                       retry_interval_hours=np.array([12.0, -1.0]))  # fmt: skip
    np.testing.assert_array_equal(got, np.array([[0.0, 0.5, 0.5], [1.0, 1.0, 0.0]], np.float32))
    assert got.dtype == np.float32


@pytest.mark.parametrize(
    ("overrides", "layout", "shared"),
    [
        (["observation.history_periods=0", "observation.mta_inputs=false"], Layout(), G),
        (["observation.history_periods=0"], Layout(0, True), G + 3),
        (["observation.mta_inputs=false"], Layout(3, False), G + 3 * PER),
        (["observation.history_periods=14"], Layout(14, True), G + 3 + 3 * PER),
    ],
)
def test_another_layout_is_the_default_ones_columns_of_the_same_names(
    overrides: list[str], layout: Layout, shared: int
) -> None:
    full = _episode([], steps=6)
    small = _episode(overrides, steps=6)
    names = feature_names(build_config().provider_names, layout)
    full_names = feature_names(build_config().provider_names, Layout(3, True))
    assert small[0].shape == (obs_size(P, layout),) == (len(names),)
    common = [(i, full_names.index(n)) for i, n in enumerate(names) if n in full_names]
    assert len(common) == shared
    for a, b in zip(small, full, strict=True):
        np.testing.assert_array_equal(a[[i for i, _ in common]], b[[j for _, j in common]])


def test_a_history_longer_than_the_episode_so_far_reads_zeros_beyond_it() -> None:
    seen = _episode(["observation.history_periods=14"], steps=5)
    last = seen[-1]
    for k in range(1, 15):
        block = last[G + 3 + PER * (k - 1) : G + 3 + PER * k]
        assert (np.any(block != 0.0)) == (k <= 5), k


def test_the_vec_env_keeps_a_ring_per_row_and_clears_it_on_reset() -> None:
    """Row i of the VecEnv is the single env seeded alike, history included, across resets."""
    overrides = ["horizon_days=3"]
    vec = make_vec_env(scenario="steady_b2c_transactional", overrides=overrides, n_envs=2,
                       seed=10)  # fmt: skip
    singles = [IPWarmupEnv(scenario="steady_b2c_transactional", overrides=overrides)
               for _ in range(2)]  # fmt: skip
    obs = vec.reset()
    single_obs = [env.reset(seed=10 + i)[0] for i, env in enumerate(singles)]
    rng = np.random.default_rng(0)
    resets = 0
    for step in range(5):  # past the horizon: each row resets after step 3
        actions = rng.uniform(-1.0, 1.0, (2, P + 1)).astype(np.float32)
        for i in range(2):
            np.testing.assert_array_equal(obs[i], single_obs[i], err_msg=f"step {step} row {i}")
        obs, _, dones, infos = vec.step(actions)
        for i, env in enumerate(singles):
            single_obs[i], _, _, truncated, _ = env.step(actions[i])
            if truncated:
                np.testing.assert_array_equal(infos[i]["terminal_observation"], single_obs[i])
                single_obs[i], _ = env.reset()
                assert dones[i]
                resets += 1
                # A new warmup remembers nothing of the last one.
                np.testing.assert_array_equal(obs[i][G + 3 :], np.zeros(3 * PER, np.float32))
    assert resets == 2


def test_replicate_carries_each_rows_ring() -> None:
    config = build_config(scenario="steady_b2c_transactional")
    sim = Simulator(config, 2)
    sim.reset(np.arange(2), [seeding.np_random(s)[0] for s in (1, 2)])
    actions = np.random.default_rng(4).uniform(-1.0, 1.0, (2, P + 1))
    for _ in range(3):
        sim.step(actions)
    clone = sim.replicate(2)
    np.testing.assert_array_equal(clone.observe(), np.repeat(sim.observe(), 2, axis=0))
    np.testing.assert_array_equal(clone.step(np.repeat(actions, 2, axis=0)).observation,
                                  np.repeat(sim.step(actions).observation, 2, axis=0))  # fmt: skip
