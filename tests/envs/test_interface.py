"""The Gymnasium/SB3 interface of ipwarmup/IPWarmup-v0: checkers, spaces, docs, seeding, VecEnv."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import ipwarmup.envs
import ipwarmup.observation as observation_module
from ipwarmup.envs import ENV_ID, IPWarmupEnv, make_vec_env, scenario_names
from ipwarmup.envs.simulator import ACCOUNTING_KEYS, EXTRA_ACCOUNTING_KEYS
from ipwarmup.errors import ConfigError
from ipwarmup.observation import Layout, feature_bounds, feature_names

SCENARIOS = scenario_names()
DEFAULT_PROVIDERS = ("gmail", "microsoft", "yahoo", "apple", "other")
DEFAULT_HISTORY = 3  # observation.history_periods by default
OUTCOME_KEYS = ("delivered_inbox", "delivered_spam", "bounced", "rejected", "expired", "queued")
ALL_ACCOUNTING_KEYS = ACCOUNTING_KEYS + EXTRA_ACCOUNTING_KEYS

# Three providers instead of five: the layout must follow the configured providers.
THREE_PROVIDERS: dict[str, Any] = {
    "providers": {"microsoft": None, "apple": None},
    "scenario": {"provider_mix": {"gmail": 0.6, "yahoo": 0.2, "other": 0.2}},
}


def test_shipped_scenarios_exist() -> None:
    # Guards the parametrisations below against an empty scenario list.
    assert len(SCENARIOS) >= 1
    assert "low_volume" in SCENARIOS


# --------------------------------------------------------------------------- checkers


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [(None, ())]
    + [(name, ()) for name in SCENARIOS]
    + [(None, ("decision_interval_hours=1", "mta.overflow=queue"))],
    ids=["default", *SCENARIOS, "hourly-queue"],
)
def test_gymnasium_and_sb3_checkers_pass(scenario: str | None, overrides: tuple[str, ...]) -> None:
    env = gym.make(ENV_ID, scenario=scenario, overrides=list(overrides))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gym_check_env(env.unwrapped)
        sb3_check_env(env)
    others = [str(w.message) for w in caught if "render" not in str(w.message).lower()]
    assert others == []
    env.close()


# ----------------------------------------------------------------------------- spaces


@pytest.mark.parametrize(
    ("config", "n_providers"), [(None, 5), (THREE_PROVIDERS, 3)], ids=["P5", "P3"]
)
def test_spaces(config: dict[str, Any] | None, n_providers: int) -> None:
    env = gym.make(ENV_ID, config=config)
    obs_space, act_space = env.observation_space, env.action_space
    assert isinstance(obs_space, gym.spaces.Box)
    assert obs_space.dtype == np.float32
    # The default layout: the last period, the MTA's three inputs, three past periods.
    assert obs_space.shape == (9 * n_providers + 6 + 3 + 3 * 9 * n_providers,)
    low, high = feature_bounds(n_providers, Layout(history_periods=3, mta_inputs=True))
    np.testing.assert_array_equal(obs_space.low, low)
    np.testing.assert_array_equal(obs_space.high, high)
    assert isinstance(act_space, gym.spaces.Box)
    assert act_space.dtype == np.float32
    assert act_space.shape == (n_providers + 1,)
    np.testing.assert_array_equal(act_space.low, np.full(n_providers + 1, -1.0, np.float32))
    np.testing.assert_array_equal(act_space.high, np.full(n_providers + 1, 1.0, np.float32))
    assert len(env.unwrapped.feature_names) == obs_space.shape[0]
    obs, _ = env.reset(seed=0)
    assert obs.dtype == np.float32
    assert obs.shape == obs_space.shape


# --------------------------------------------------------------------------- doc sync


def _markdown_tables(doc: str) -> list[list[dict[str, str]]]:
    """Return every markdown table of ``doc`` as rows keyed by the header's cells."""
    tables: list[list[dict[str, str]]] = []
    current: list[list[str]] = []
    for line in [*doc.splitlines(), ""]:
        text = line.strip()
        if text.startswith("|") and text.endswith("|"):
            current.append([cell.strip() for cell in text[1:-1].split("|")])
        elif current:
            header, *rows = current
            rows = [r for r in rows if not all(set(c) <= set("-: ") for c in r)]
            for row in rows:
                assert len(row) == len(header), (header, row)
            tables.append([dict(zip(header, row, strict=True)) for row in rows])
            current = []
    return tables


def _section(doc: str, title: str) -> str:
    match = re.search(rf"^\s*## {re.escape(title)}\s*$(.*?)(?=^\s*## |\Z)", doc, re.M | re.S)
    assert match, f"no '## {title}' section in the env docstring"
    return match.group(1)


def _documented_observation(doc: str) -> tuple[list[str], list[float], list[float]]:
    """Expand the docstring's observation tables for the default providers."""
    tables = _markdown_tables(_section(doc, "Observation Space"))
    assert len(tables) == 3, "expected a per-provider table, a global table and the MTA's"
    per_provider, global_rows, mta_rows = tables
    assert [row["Index"] for row in per_provider] == [f"9p+{i}" for i in range(len(per_provider))]
    assert [row["Index"] for row in global_rows] == [f"9P+{j}" for j in range(len(global_rows))]
    assert [row["Index"] for row in mta_rows] == [f"9P+{6 + j}" for j in range(len(mta_rows))]
    names: list[str] = []
    low: list[float] = []
    high: list[float] = []
    for provider in DEFAULT_PROVIDERS:
        for row in per_provider:
            names.append(f"{provider}.{row['Name']}")
            low.append(float(row["Low"]))
            high.append(float(row["High"]))
    for row in [*global_rows, *mta_rows]:
        names.append(row["Name"])
        low.append(float(row["Low"]))
        high.append(float(row["High"]))
    # Then K past periods of the per-provider table (the text names them history.k.*).
    per = len(DEFAULT_PROVIDERS) * len(per_provider)
    for k in range(1, DEFAULT_HISTORY + 1):
        names += [f"history.{k}.{name}" for name in names[:per]]
        low += low[:per]
        high += high[:per]
    return names, low, high


def test_env_docstring_observation_table_matches_the_code() -> None:
    doc = IPWarmupEnv.__doc__
    assert doc
    names, low, high = _documented_observation(doc)
    env = gym.make(ENV_ID)
    assert env.unwrapped.config.provider_names == DEFAULT_PROVIDERS
    layout = Layout(history_periods=DEFAULT_HISTORY, mta_inputs=True)
    assert env.unwrapped.config.observation.layout == layout
    assert names == feature_names(DEFAULT_PROVIDERS, layout)
    assert names == env.unwrapped.feature_names
    code_low, code_high = feature_bounds(len(DEFAULT_PROVIDERS), layout)
    np.testing.assert_array_equal(np.array(low, np.float32), code_low)
    np.testing.assert_array_equal(np.array(high, np.float32), code_high)
    np.testing.assert_array_equal(np.array(low, np.float32), env.observation_space.low)
    np.testing.assert_array_equal(np.array(high, np.float32), env.observation_space.high)
    # The section's Box line states the shape the tables expand to.
    assert "(9P + 6 + 3 + 9PK,)" in _section(doc, "Observation Space")
    assert f"(default {DEFAULT_HISTORY};" in _section(doc, "Observation Space")
    assert len(names) == 9 * len(DEFAULT_PROVIDERS) * (1 + DEFAULT_HISTORY) + 6 + 3


def test_env_docstring_action_table_matches_the_code() -> None:
    doc = IPWarmupEnv.__doc__
    assert doc
    section = _section(doc, "Action Space")
    assert "Box(-1, 1, (P + 1,), float32)" in section
    tables = _markdown_tables(section)
    assert len(tables) == 1
    n_providers = len(DEFAULT_PROVIDERS)
    env = gym.make(ENV_ID)
    space = env.action_space
    count = 0
    for row in tables[0]:
        # "0..P-1" (possibly written "p (0..P-1)") stands for P entries, "P" for one.
        index = row["Index"]
        if re.fullmatch(r"(p \()?0\.\.P-1\)?", index):
            positions = list(range(n_providers))
        elif index == "P":
            positions = [n_providers]
        else:
            pytest.fail(f"unexpected action index {index!r}")
        assert positions[0] == count, "action rows out of order"
        count += len(positions)
        if "Low" in row:
            for i in positions:
                assert float(row["Low"]) == space.low[i]
        if "High" in row:
            for i in positions:
                assert float(row["High"]) == space.high[i]
    assert count == n_providers + 1 == space.shape[0]


def test_observation_module_docstring_table_matches_the_code() -> None:
    doc = observation_module.__doc__
    assert doc
    pattern = re.compile(
        r"^(9[pP]|M)\+(\d+)\s+``([^`]+)``\s+\[\s*(-?[\d.]+)\s*,\s*(-?[\d.]+)\s*\]", re.M
    )
    rows = pattern.findall(doc)
    per_provider = [r for r in rows if r[0] == "9p"]
    global_rows = [r for r in rows if r[0] == "9P"]
    mta_rows = [r for r in rows if r[0] == "M"]
    # Every table row was understood (a row in another format would be skipped silently).
    table_rows = [line for line in doc.splitlines() if re.match(r"^(9[pP]|M)\+", line)]
    assert len(rows) == len(table_rows) > 0
    assert [int(r[1]) for r in per_provider] == list(range(len(per_provider)))
    assert [int(r[1]) for r in global_rows] == list(range(len(global_rows)))
    assert [int(r[1]) for r in mta_rows] == list(range(len(mta_rows))) == [0, 1, 2]
    global_rows += mta_rows
    for r in per_provider:
        assert r[2].startswith("<p>."), r
    names = [f"{p}.{r[2].removeprefix('<p>.')}" for p in DEFAULT_PROVIDERS for r in per_provider]
    names += [r[2] for r in global_rows]
    low = [float(r[3]) for _ in DEFAULT_PROVIDERS for r in per_provider]
    low += [float(r[3]) for r in global_rows]
    high = [float(r[4]) for _ in DEFAULT_PROVIDERS for r in per_provider]
    high += [float(r[4]) for r in global_rows]
    per = len(DEFAULT_PROVIDERS) * len(per_provider)
    for k in range(1, DEFAULT_HISTORY + 1):  # the text: history.k.<p>.<feature>, same bounds
        names += [f"history.{k}.{name}" for name in names[:per]]
        low += low[:per]
        high += high[:per]
    layout = Layout(history_periods=DEFAULT_HISTORY, mta_inputs=True)
    assert names == feature_names(DEFAULT_PROVIDERS, layout)
    code_low, code_high = feature_bounds(len(DEFAULT_PROVIDERS), layout)
    np.testing.assert_array_equal(np.array(low, np.float32), code_low)
    np.testing.assert_array_equal(np.array(high, np.float32), code_high)
    # And the two docstrings agree with each other.
    env_names, env_low, env_high = _documented_observation(IPWarmupEnv.__doc__ or "")
    assert (names, low, high) == (env_names, env_low, env_high)


# ------------------------------------------------------------------------ determinism


def _rollout(
    env: gym.Env[np.ndarray, np.ndarray], seed: int, actions: np.ndarray
) -> tuple[list[np.ndarray], list[float], list[dict[str, Any]]]:
    obs, info = env.reset(seed=seed)
    observations, rewards, infos = [obs], [], [info]
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        observations.append(obs)
        rewards.append(reward)
        infos.append(info)
        assert not terminated
        if truncated:
            break
    return observations, rewards, infos


@pytest.mark.parametrize(
    ("scenario", "overrides"),
    [(name, ()) for name in SCENARIOS]
    + [("bursty_b2c_marketing", ("mta.overflow=queue", "pool.initial_ips=2"))],
    ids=[*SCENARIOS, "bursty-queue"],
)
def test_same_seed_same_trajectory_and_different_seeds_differ(
    scenario: str, overrides: tuple[str, ...]
) -> None:
    first = gym.make(ENV_ID, scenario=scenario, overrides=list(overrides))
    second = gym.make(ENV_ID, scenario=scenario, overrides=list(overrides))
    steps = first.unwrapped.config.steps_per_episode
    actions = np.random.default_rng(123).uniform(-1, 1, (steps, 6)).astype(np.float32)
    obs_a, rew_a, info_a = _rollout(first, 5, actions)
    obs_b, rew_b, info_b = _rollout(second, 5, actions)
    assert len(obs_a) == len(obs_b) == steps + 1
    for a, b in zip(obs_a, obs_b, strict=True):
        np.testing.assert_array_equal(a, b)
    assert rew_a == rew_b
    assert info_a == info_b
    # The same instance reset with the same seed again replays the same episode.
    obs_c, rew_c, info_c = _rollout(first, 5, actions)
    for a, c in zip(obs_a, obs_c, strict=True):
        np.testing.assert_array_equal(a, c)
    assert rew_a == rew_c
    assert info_a == info_c
    # Another seed gives another episode (hidden draws and demand differ).
    obs_d, rew_d, info_d = _rollout(second, 6, actions)
    assert not all(np.array_equal(a, d) for a, d in zip(obs_a, obs_d, strict=True))
    assert rew_a != rew_d
    assert info_a[-1]["accounting"]["demand"] != info_d[-1]["accounting"]["demand"]


# ------------------------------------------------------------------------- vec parity


def _assert_accounting_close(vec: dict[str, float], single: dict[str, float]) -> None:
    assert set(vec) == set(single) == set(ALL_ACCOUNTING_KEYS)
    for key in ALL_ACCOUNTING_KEYS:
        assert math.isclose(vec[key], single[key], rel_tol=1e-9, abs_tol=1e-9), (
            key,
            vec[key],
            single[key],
        )


@pytest.mark.parametrize(
    ("scenario", "overrides", "n_steps"),
    [
        ("bursty_b2c_marketing", ("mta.overflow=shared",), 50),
        ("bursty_b2c_marketing", ("mta.overflow=queue",), 50),
        ("seasonal_spike", ("mta.overflow=queue", "pool.initial_ips=2"), 50),
        ("fast_growing_startup", ("decision_interval_hours=6", "horizon_days=3"), 30),
        (
            "steady_b2c_transactional",
            ("decision_interval_hours=6", "horizon_days=3", "mta.overflow=queue"),
            30,
        ),
    ],
    ids=["daily-shared", "daily-queue", "daily-queue-2ips", "6h-shared", "6h-queue"],
)
def test_vec_env_matches_single_envs_step_for_step(
    scenario: str, overrides: tuple[str, ...], n_steps: int
) -> None:
    n = 3
    vec = make_vec_env(scenario=scenario, overrides=overrides, n_envs=n, seed=7)
    singles = [IPWarmupEnv(scenario=scenario, overrides=overrides) for _ in range(n)]
    steps_per_episode = singles[0].config.steps_per_episode
    assert n_steps > steps_per_episode  # the auto-reset is exercised
    n_actions = vec.action_space.shape[0]
    actions = np.random.default_rng(99).uniform(-1.2, 1.2, (n_steps, n, n_actions))
    actions = actions.astype(np.float32)

    vec_obs = vec.reset()
    single_obs = []
    for i, env in enumerate(singles):
        obs, info = env.reset(seed=7 + i)
        single_obs.append(obs)
        _assert_accounting_close(vec.reset_infos[i]["accounting"], info["accounting"])
    assert vec_obs.dtype == np.float32
    np.testing.assert_allclose(vec_obs, np.stack(single_obs), rtol=1e-6, atol=0)

    resets = 0
    for t in range(n_steps):
        vec_obs, vec_rewards, vec_dones, vec_infos = vec.step(actions[t])
        assert vec_obs.shape == (n, vec.observation_space.shape[0])
        assert vec_rewards.shape == (n,)
        for i, env in enumerate(singles):
            obs, reward, terminated, truncated, info = env.step(actions[t, i])
            assert not terminated
            assert bool(vec_dones[i]) == (terminated or truncated), (t, i)
            assert math.isclose(float(vec_rewards[i]), reward, rel_tol=1e-6, abs_tol=1e-7), (
                t,
                i,
                float(vec_rewards[i]),
                reward,
            )
            _assert_accounting_close(vec_infos[i]["accounting"], info["accounting"])
            if truncated:
                assert (t + 1) % steps_per_episode == 0
                assert "terminal_observation" in vec_infos[i]
                np.testing.assert_allclose(
                    vec_infos[i]["terminal_observation"], obs, rtol=1e-6, atol=0
                )
                assert vec_infos[i].get("TimeLimit.truncated") is True
                obs, reset_info = env.reset()
                _assert_accounting_close(vec.reset_infos[i]["accounting"], reset_info["accounting"])
                resets += 1
            else:
                assert "terminal_observation" not in vec_infos[i]
            np.testing.assert_allclose(vec_obs[i], obs, rtol=1e-6, atol=0, err_msg=f"{t=} {i=}")
    assert resets == n * (n_steps // steps_per_episode)


# ---------------------------------------------------------------- property: invariants


def _config_overrides() -> st.SearchStrategy[list[str]]:
    @st.composite
    def build(draw: st.DrawFn) -> list[str]:
        max_ips = draw(st.integers(1, 8))
        initial_ips = draw(st.integers(0, min(3, max_ips)))
        return [
            f"mta.overflow={draw(st.sampled_from(['shared', 'queue']))}",
            f"decision_interval_hours={draw(st.sampled_from([1, 6, 24]))}",
            f"mta.max_age_hours={draw(st.sampled_from([4, 24, 72]))}",
            f"mta.retry_interval_hours={draw(st.sampled_from([0.25, 1.0, 2.5, 24.0]))}",
            f"pool.initial_ips={initial_ips}",
            f"pool.max_ips={max_ips}",
            f"horizon_days={draw(st.integers(2, 6))}",
            # Positional notation: YAML 1.1 reads "1e-05" as text, and config says so.
            "shared_pool.incident_probability_per_day="
            + np.format_float_positional(draw(st.floats(0.0, 1.0)), trim="0"),
        ]

    return build()


_ACTION_VALUE = st.one_of(
    st.sampled_from([-1.0, 1.0, 0.0, -1.0, 1.0]),
    st.floats(-1.0, 1.0, allow_nan=False, width=32),
    st.floats(-10.0, 10.0, allow_nan=False, width=32),
)
# A short list of action vectors that the episode cycles through.
_ACTIONS = st.lists(st.lists(_ACTION_VALUE, min_size=6, max_size=6), min_size=1, max_size=12)

_PROPERTY_SETTINGS = settings(
    deadline=None, max_examples=30, suppress_health_check=[HealthCheck.too_slow]
)


def _episode(scenario: str, overrides: list[str], seed: int, actions: list[list[float]]) -> Any:
    """Yield (env, step, obs, reward, terminated, truncated, info) over one whole episode."""
    env = IPWarmupEnv(scenario=scenario, overrides=overrides)
    obs, info = env.reset(seed=seed)
    yield env, -1, obs, 0.0, False, False, info
    steps = env.config.steps_per_episode
    for t in range(steps):
        action = np.array(actions[t % len(actions)], dtype=np.float32)
        yield env, t, *env.step(action)


# Random scenarios, config variations, seeds and action sequences (see _episode).
_RANDOM_EPISODES = given(
    scenario=st.sampled_from(SCENARIOS),
    overrides=_config_overrides(),
    seed=st.integers(0, 2**32 - 1),
    actions=_ACTIONS,
)


@_PROPERTY_SETTINGS
@_RANDOM_EPISODES
def test_accounting_identity_observation_and_reward_bounds(
    scenario: str, overrides: list[str], seed: int, actions: list[list[float]]
) -> None:
    queued = 0.0
    demand = 0.0
    for env, t, obs, reward, terminated, truncated, info in _episode(
        scenario, overrides, seed, actions
    ):
        cfg = env.config
        w, n_providers, k = cfg.reward, len(cfg.providers), cfg.pool.max_ips
        # Documented per step (env docstring): with H the mail handled in the step and V
        # the episode's expected demand per step, r lies in
        # [-(w_lost H / V + w_block K P + w_ip K h / 24), w_ded H / V].
        per_step = env.simulator.state.sender.daily_volume[0] * cfg.decision_interval_hours / 24
        acc = info["accounting"]
        handled = acc["demand"] - demand + queued
        demand, queued = acc["demand"], acc["queued"]
        continuation = info.get("continuation", {"reward": 0.0})
        assert ("continuation" in info) == (t == cfg.steps_per_episode - 1)
        step_reward = reward - continuation["reward"]
        lowest = -(
            w.lost_penalty * handled / per_step
            + w.block_penalty * k * n_providers
            + w.ip_day_penalty * k * cfg.decision_interval_hours / 24
        )
        assert lowest - 1e-9 <= step_reward <= w.dedicated_inbox_weight * handled / per_step + 1e-9
        if "continuation" in info:  # the same bounds over the continuation's days
            days = cfg.reward.continuation_days
            handled = continuation["demand"] + queued
            floor = -(
                w.lost_penalty * handled / per_step
                + w.block_penalty * k * n_providers * days * 24 / cfg.decision_interval_hours
                + w.ip_day_penalty * k * days
            )
            ceiling = w.dedicated_inbox_weight * handled / per_step
            assert floor - 1e-9 <= continuation["reward"] <= ceiling + 1e-9, continuation
        assert set(acc) == set(ALL_ACCOUNTING_KEYS)
        total = sum(acc[key] for key in OUTCOME_KEYS)
        assert math.isclose(acc["demand"], total, rel_tol=1e-9, abs_tol=1e-6), (t, acc)
        assert env.observation_space.contains(obs), (t, obs)
        assert math.isfinite(reward)
        assert not terminated
        assert truncated == (t == cfg.steps_per_episode - 1)
        delivered = acc["delivered_inbox"] + acc["delivered_spam"]
        if delivered > 0:
            assert 0.0 <= acc["delivered_inbox"] / delivered <= 1.0, (t, acc)
        if acc["sent_dedicated"] > 0:
            # (The lower bound of deferrals is the non-negativity test's business.)
            assert acc["deferrals"] / acc["sent_dedicated"] <= 1.0, (t, acc)
            assert 0.0 <= acc["rejected"] / acc["sent_dedicated"] <= 1.0, (t, acc)


@_PROPERTY_SETTINGS
@_RANDOM_EPISODES
def test_accounting_counts_are_never_negative(
    scenario: str, overrides: list[str], seed: int, actions: list[list[float]]
) -> None:
    for _env, t, _obs, _reward, _terminated, _truncated, info in _episode(
        scenario, overrides, seed, actions
    ):
        negative = {key: value for key, value in info["accounting"].items() if value < 0}
        assert negative == {}, (t, negative)


# ----------------------------------------------------------- registration, scenarios


def test_import_registers_the_env_id() -> None:
    assert ipwarmup.envs.ENV_ID == "ipwarmup/IPWarmup-v0"
    assert ENV_ID in gym.registry
    assert gym.registry[ENV_ID].entry_point == "ipwarmup.envs.env:IPWarmupEnv"


def test_import_in_a_fresh_interpreter_registers_without_sb3_or_torch() -> None:
    code = (
        "import sys, gymnasium as gym\n"
        "assert 'ipwarmup/IPWarmup-v0' not in gym.registry\n"
        "import ipwarmup.envs\n"
        "assert 'ipwarmup/IPWarmup-v0' in gym.registry\n"
        "heavy = sorted({'stable_baselines3', 'torch'} & set(sys.modules))\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_scenario_from_a_yaml_path(tmp_path: Path) -> None:
    path = tmp_path / "tiny_sender.yaml"
    path.write_text(
        "description: a tiny sender for the test\n"
        "daily_volume_messages: [1000.0, 1000.0]\n"
        "volume_noise: 0.0\n"
        "mix_concentration: 0.0\n"
        "provider_mix: {gmail: 1.0, microsoft: 0.0, yahoo: 0.0, apple: 0.0, other: 0.0}\n",
        encoding="utf-8",
    )
    for scenario in (str(path), path):
        env = gym.make(ENV_ID, scenario=scenario)
        config = env.unwrapped.config
        assert config.scenario.name == "tiny_sender"
        assert config.scenario.daily_volume_messages == (1000.0, 1000.0)
        obs, _ = env.reset(seed=0)
        assert env.observation_space.contains(obs)
        # All demand is at gmail: the other providers show no demand at all.
        demand = obs[: 9 * 5].reshape(5, 9)[:, 0]
        assert demand[0] > 0
        np.testing.assert_array_equal(demand[1:], 0.0)
        obs, *_ = env.step(env.action_space.sample())
        assert env.observation_space.contains(obs)


def test_unknown_scenario_suggests_the_closest_name() -> None:
    with pytest.raises(ConfigError, match=r"did you mean 'low_volume'"):
        gym.make(ENV_ID, scenario="low_volum")
    with pytest.raises(ConfigError, match=r"seasonal_spike"):
        IPWarmupEnv(scenario="seasonl_spike")
