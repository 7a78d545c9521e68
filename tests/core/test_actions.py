"""The action codec and the policy contract, each declared once and shared."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ipwarmup.actions import GROW, HOLD, POOL_THRESHOLD, SHRINK, ActionCodec
from ipwarmup.agents.registry import BASELINES, make_policy
from ipwarmup.envs import IPWarmupEnv, build_config
from ipwarmup.policy import PrivilegedPolicy, check_observation_shape

CODEC = ActionCodec(
    n_providers=2,
    max_cap_change_per_day=2.0,
    decision_interval_hours=6,
    min_hourly_cap_messages=1.0,
    max_hourly_cap_messages=1000.0,
)


def test_cap_factor_by_hand() -> None:
    # a = 1 over 6 h of a 2x-per-day limit: 2 ** (6 / 24) = 1.189207...; a = -0.5: 2 ** -0.125.
    factors = CODEC.cap_factors(np.array([[1.0, -0.5, 0.0]]))
    np.testing.assert_allclose(factors, [[1.189207115002721, 0.9170040432046712]], rtol=1e-15)
    # Actions outside [-1, 1] are clipped before scaling.
    np.testing.assert_allclose(CODEC.cap_factors(np.array([[3.0, -3.0, 0]])), [[2**0.25, 2**-0.25]])


def test_cap_action_inverts_the_factor_within_range_and_saturates_outside() -> None:
    current = np.array([[100.0, 100.0]])
    target = current * np.array([[2**0.125, 2**-0.25]])
    np.testing.assert_allclose(CODEC.cap_action(current, target), [[0.5, -1.0]], atol=1e-12)
    np.testing.assert_allclose(CODEC.cap_action(current, current * 100), [[1.0, 1.0]])


def test_pool_threshold_is_exclusive_on_both_sides() -> None:
    eps = 1e-9
    pool = np.array([POOL_THRESHOLD + eps, POOL_THRESHOLD, -POOL_THRESHOLD, -POOL_THRESHOLD - eps])
    actions = np.zeros((4, 3))
    actions[:, -1] = pool
    assert CODEC.pool_change(actions).tolist() == [GROW, HOLD, HOLD, SHRINK]
    assert math.isclose(POOL_THRESHOLD, 1 / 3)


def test_clip_caps_bounds() -> None:
    np.testing.assert_array_equal(CODEC.clip_caps(np.array([0.5, 10.0, 5000.0])), [1, 10, 1000])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ([[0.1, np.nan, 0.0]], r"action\[0, 1\]: expected a finite number in \[-1, 1\], got nan"),
        ([[0.1, 0.2, 0.0], [0.0, 0.0, np.inf]], r"action\[1, 2\]: .* got inf"),
        ([[0.1, 0.2]], r"Unexpected action shape \(1, 2\): expected \(3,\) or \(n_envs, 3\)"),
    ],
)
def test_check_refuses_non_finite_and_misshaped_actions(
    bad: list[list[float]], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        CODEC.check(np.array(bad))


def test_env_refuses_a_nan_action_and_its_accounting_stays_finite() -> None:
    env = IPWarmupEnv(scenario="steady_b2c_transactional")
    env.reset(seed=0)
    action = np.zeros(6, dtype=np.float32)
    action[2] = np.nan
    with pytest.raises(ValueError, match=r"action\[0, 2\]"):
        env.step(action)
    _, _, _, _, info = env.step(np.zeros(6, dtype=np.float32))
    assert all(np.isfinite(v) for v in info["accounting"].values())


def test_observation_shape_message_names_the_expected_shape() -> None:
    assert check_observation_shape(np.zeros(51), 51).shape == (1, 51)
    assert check_observation_shape(np.zeros((4, 51)), 51).shape == (4, 51)
    with pytest.raises(
        ValueError, match=r"Unexpected observation shape \(50,\): please use \(51,\)"
    ):
        check_observation_shape(np.zeros(50), 51)
    policy = make_policy("hold", build_config())
    with pytest.raises(ValueError, match=r"Unexpected observation shape \(2, 3, 51\)"):
        policy.predict(np.zeros((2, 3, 51)))


def test_only_the_oracle_is_privileged() -> None:
    config = build_config()
    privileged = {
        name for name in BASELINES if isinstance(make_policy(name, config), PrivilegedPolicy)
    }
    assert privileged == {"oracle"}
