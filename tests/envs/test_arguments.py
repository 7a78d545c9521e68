"""Env constructors: keyword-only arguments in one order, render modes, refused reset options."""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ipwarmup.envs import ENV_ID, IPWarmupEnv, build_config
from ipwarmup.envs.vector import WarmupVecEnv, make_multi_scenario_vec_env, make_vec_env

ORDER = ("scenario", "scenarios", "config", "overrides", "n_envs", "seed", "render_mode")
"""Every constructor's configuration arguments, in this order (each takes a subset)."""
CONSTRUCTORS: list[Callable[..., Any]] = [
    build_config,
    IPWarmupEnv,
    make_vec_env,
    make_multi_scenario_vec_env,
    WarmupVecEnv,
]


@pytest.mark.parametrize("constructor", CONSTRUCTORS, ids=lambda c: c.__name__)
def test_configuration_arguments_are_keyword_only_in_one_order(
    constructor: Callable[..., Any],
) -> None:
    parameters = list(inspect.signature(constructor).parameters.values())
    names = [p.name for p in parameters]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters), names
    assert names == [name for name in ORDER if name in names], names


def test_positional_configuration_is_refused() -> None:
    with pytest.raises(TypeError, match="positional"):
        IPWarmupEnv("low_volume")
    with pytest.raises(TypeError, match="positional"):
        build_config(None, "low_volume")
    with pytest.raises(TypeError, match="positional"):
        make_vec_env(4, "low_volume")


def test_gym_make_accepts_render_mode_none() -> None:
    env = gym.make(ENV_ID, render_mode=None)
    assert env.render_mode is None
    env.reset(seed=0)
    assert env.render() is None


def test_ansi_render_returns_the_periods_table() -> None:
    env = gym.make(ENV_ID, scenario="steady_b2c_transactional", render_mode="ansi")
    check_env(env.unwrapped)  # Gymnasium's checker renders in the declared mode too
    env.reset(seed=3)
    env.step(np.zeros(env.action_space.shape, dtype=np.float32))
    text = env.render()
    assert isinstance(text, str)
    lines = text.splitlines()
    telemetry = env.unwrapped.simulator.telemetry
    providers = env.unwrapped.config.provider_names
    assert re.fullmatch(
        r"day 1/45 \((Mon|Tue|Wed|Thu|Fri|Sat|Sun)\), hour 00: 1 dedicated IPs, "
        r"mean age 1\.0 days",
        lines[0],
    ), lines[0]
    assert lines[1].split() == [
        "provider", "demand", "cap/h", "sent_ded", "accepted", "deferred", "rejected",
        "bounced", "complaint", "queued",
    ]  # fmt: skip
    assert [line.split()[0] for line in lines[2:]] == list(providers)
    demand = [float(line.split()[1]) for line in lines[2:]]
    np.testing.assert_allclose(demand, telemetry.demand[0], atol=0.5)
    assert sum(demand) > 1000  # a day of a steady sender, not an empty table
    assert max(len(line) for line in lines) <= 100


def test_unknown_render_mode_is_refused() -> None:
    with pytest.raises(ValueError) as error:
        IPWarmupEnv(render_mode="human")
    assert str(error.value) == (
        "render_mode: expected None or 'ansi', got 'human'; the env has no graphical renderer"
    )


def test_reset_options_are_refused_with_the_fix() -> None:
    env = IPWarmupEnv(scenario="low_volume")
    env.reset(seed=1, options=None)
    env.reset(seed=1, options={})  # what SB3's DummyVecEnv passes
    with pytest.raises(ValueError) as error:
        env.reset(seed=1, options={"scenario": "seasonal_spike"})
    assert str(error.value) == (
        "options: IPWarmupEnv takes no reset options, got ['scenario']; set scenario=, "
        "config= or overrides= when making the env"
    )


def test_vec_env_set_options_refuses_options_of_any_env() -> None:
    vec = make_vec_env(scenario="low_volume", n_envs=2, seed=0)
    vec.set_options(None)
    vec.set_options([{}, {}])
    with pytest.raises(
        ValueError, match=r"^options: IPWarmupEnv takes no reset options, got \['x'\]"
    ):
        vec.set_options([{}, {"x": 1}])
    joined = make_multi_scenario_vec_env(
        scenarios=["low_volume", "seasonal_spike"], n_envs=3, seed=0
    )
    joined.set_options({})
    joined.reset()
    with pytest.raises(ValueError, match=r"got \['y'\]"):
        joined.set_options([{}, {}, {"y": 2}])


def test_build_config_takes_scenario_config_and_overrides_by_name() -> None:
    base = build_config(overrides=["horizon_days=12"])
    config = build_config(scenario="low_volume", config=base, overrides=["mta.max_age_hours=48"])
    assert config.horizon_days == 12
    assert config.mta.max_age_hours == 48
    assert config.scenario.name == "low_volume"
