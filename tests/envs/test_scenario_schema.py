"""The scenario schema for real senders (issue 9, item 5).

Campaign weekdays, linear growth, provider tolerances and the MTA's overflow set inside a
scenario file; each pinned to values computed by hand, and each bad value named.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils import seeding
from hypothesis import given
from hypothesis import strategies as st

from ipwarmup.config import load, to_dict
from ipwarmup.envs import build_config
from ipwarmup.envs.config import ScenarioConfig, default_providers
from ipwarmup.envs.scenarios import load_scenario, read_scenario
from ipwarmup.envs.sender import (
    N_DAILY_UNIFORMS,
    N_SENDER_UNIFORMS,
    SenderDraw,
    daily_demand,
    day_shapes,
    draw_sender,
)
from ipwarmup.envs.simulator import Simulator
from ipwarmup.errors import ConfigError

FLAT_SOLO = {
    "daily_volume_messages": [1000.0, 1000.0],
    "provider_mix": {"solo": 1.0},
    "mix_concentration": 0.0,
    "volume_noise": 0.0,
}


def _scenario(**fields: object) -> ScenarioConfig:
    return load(ScenarioConfig, {**FLAT_SOLO, **fields})


def _week(
    scenario: ScenarioConfig, *, growth: float = 1.0, growth_messages: float = 0.0
) -> np.ndarray:
    """Return the daily demand of days 0..6 of a sender starting on a Monday, (7,)."""
    days = 7
    sender = SenderDraw(
        daily_volume=np.full(days, 1000.0),
        growth=np.full(days, growth),
        growth_messages=np.full(days, growth_messages),
        bounce_rate=np.zeros(days),
        complaint_rate=np.zeros(days),
        trap_rate=np.zeros(days),
        start_weekday=np.zeros(days, dtype=np.int64),
        mix=np.ones((days, 1)),
        domain_reputation=np.ones((days, 1)),
    )
    uniforms = np.full((days, N_DAILY_UNIFORMS), 0.5)
    uniforms[:, 3] = 0.1  # the multiplier's uniform, apart from the campaign's (column 2)
    demand = daily_demand(scenario, day_shapes(scenario), sender, np.arange(days), uniforms)
    total: np.ndarray = demand.sum(axis=(1, 2))
    return total


def test_campaigns_fall_only_on_the_campaign_weekdays() -> None:
    # Every day draws a campaign (probability 1) at 3x, but only Tuesday and Thursday may.
    scenario = _scenario(
        campaign_probability=1.0, campaign_multiplier=[3.0, 3.0], campaign_weekdays=["tue", "thu"]
    )
    np.testing.assert_allclose(_week(scenario), [1000, 3000, 1000, 3000, 1000, 1000, 1000])
    # The default keeps today's rule: any day may carry one.
    every_day = _scenario(campaign_probability=1.0, campaign_multiplier=[3.0, 3.0])
    np.testing.assert_allclose(_week(every_day), [3000] * 7)


def test_campaign_probability_still_applies_on_a_campaign_weekday() -> None:
    # The day's campaign uniform is 0.5: a probability of 0.5 draws none (a campaign needs
    # a uniform below it), even on Tuesday.
    scenario = _scenario(campaign_probability=0.5, campaign_weekdays=["tue"])
    np.testing.assert_allclose(_week(scenario), [1000] * 7)


def test_linear_growth_adds_messages_per_day_and_never_goes_below_zero() -> None:
    scenario = _scenario()
    np.testing.assert_allclose(
        _week(scenario, growth_messages=250.0), [1000, 1250, 1500, 1750, 2000, 2250, 2500]
    )
    # A shrinking list: 1000 - 400 d, floored at 0 from day 3 on (day 3 would be -200).
    np.testing.assert_allclose(
        _week(scenario, growth_messages=-400.0), [1000, 600, 200, 0, 0, 0, 0]
    )
    # The multiplicative kind, for comparison: 1000 x 1.1 ** d.
    np.testing.assert_allclose(_week(scenario, growth=1.1), 1000 * 1.1 ** np.arange(7))


@given(
    growth_messages=st.floats(-1.0e6, 1.0e6),
    volume_noise=st.floats(0.0, 2.0),
    campaign_probability=st.floats(0.0, 1.0),
)
def test_demand_is_never_negative_whatever_the_linear_growth(
    growth_messages: float, volume_noise: float, campaign_probability: float
) -> None:
    scenario = _scenario(volume_noise=volume_noise, campaign_probability=campaign_probability)
    week = _week(scenario, growth_messages=growth_messages)
    assert np.all(np.isfinite(week)) and np.all(week >= 0.0), week
    expected = np.maximum(1000.0 + growth_messages * np.arange(7), 0.0)
    assert np.all((week == 0.0) == (expected == 0.0))  # zero exactly where the mean is


def test_linear_growth_is_drawn_per_episode_from_its_range() -> None:
    scenario = _scenario(growth_messages_per_day=[100.0, 300.0])
    uniforms = np.full((2, N_SENDER_UNIFORMS), 0.9)
    uniforms[:, 1] = [0.25, 1.0]  # the growth uniform, apart from the others
    draw = draw_sender(scenario, ("solo",), uniforms, np.ones((2, 1)), np.full((2, 1), 0.5))
    np.testing.assert_allclose(draw.growth_messages, [150.0, 300.0])
    np.testing.assert_allclose(draw.growth, [1.0, 1.0])  # the multiplicative kind stays 1x
    # The multiplicative kind draws from the same uniform, and the linear one then stays 0.
    multiplicative = _scenario(growth_per_day=[1.0, 1.2])
    draw = draw_sender(multiplicative, ("solo",), uniforms, np.ones((2, 1)), np.full((2, 1), 0.5))
    np.testing.assert_allclose(draw.growth, [1.05, 1.2])
    np.testing.assert_allclose(draw.growth_messages, [0.0, 0.0])


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_a_scenario_files_campaign_weekdays_shape_the_simulated_week(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "tuesdays.yaml",
        "daily_volume_messages: [1000.0, 1000.0]\n"
        "mix_concentration: 0.0\nvolume_noise: 0.0\n"
        "campaign_probability: 1.0\ncampaign_multiplier: [3.0, 3.0]\n"
        "campaign_weekdays: [tue, thu]\n",
    )
    config = build_config(scenario=path, overrides=["horizon_days=14"])
    rows = 4
    sim = Simulator(config, rows)
    sim.reset(np.arange(rows), [seeding.np_random(i)[0] for i in range(rows)])
    start = sim.state.sender.start_weekday.copy()
    hold = np.zeros((rows, len(config.providers) + 1))
    for day in range(config.horizon_days - 1):
        weekday = (start + day) % 7
        expected = np.where((weekday == 1) | (weekday == 3), 3000.0, 1000.0)
        np.testing.assert_allclose(sim.state.demand_today.sum(axis=(1, 2)), expected)
        sim.step(hold)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"growth_per_day": [1.01, 1.02], "growth_messages_per_day": [10.0, 20.0]},
            "scenario.growth_messages_per_day: expected [0.0, 0.0] when growth_per_day is set "
            "(linear and multiplicative growth are exclusive), got [10.0, 20.0] with "
            "growth_per_day [1.01, 1.02]",
        ),
        (
            {"growth_messages_per_day": [20.0, 10.0]},
            "scenario.growth_messages_per_day: expected low <= high",
        ),
        (
            {"campaign_weekdays": ["mon", "tues"]},
            "scenario.campaign_weekdays[1]: expected one of 'mon', 'tue', 'wed', 'thu', 'fri', "
            "'sat', 'sun', got 'tues' (str); did you mean 'tue'?",
        ),
        (
            {"campaign_weekdays": [1, 3]},
            "scenario.campaign_weekdays[0]: expected one of 'mon'",
        ),
        (
            {"campaign_weekdays": []},
            "scenario.campaign_weekdays: expected distinct weekday names (mon..sun), at least "
            "one, got []",
        ),
        (
            {"campaign_weekdays": ["tue", "tue"]},
            "scenario.campaign_weekdays: expected distinct weekday names (mon..sun), at least "
            "one, got ['tue', 'tue']",
        ),
    ],
)
def test_bad_growth_and_weekdays_are_named(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load(ScenarioConfig, {**FLAT_SOLO, **fields}, path="scenario")
    assert any(problem.startswith(message) for problem in error.value.problems), error.value


STRICT_MICROSOFT = (
    "provider_mix: {gmail: 0.33, microsoft: 0.40, yahoo: 0.03, apple: 0.02, other: 0.22}\n"
    "providers:\n  microsoft: {escalation_threshold: [4.0, 8.0]}\n"
)


def test_a_scenario_files_provider_tolerances_merge_over_the_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, "strict.yaml", STRICT_MICROSOFT)
    config = build_config(scenario=path)
    defaults = default_providers()
    microsoft = config.providers["microsoft"]
    assert microsoft.escalation_threshold == (4.0, 8.0)
    # Every other field keeps Microsoft's own default, not the class default.
    assert microsoft.cold_hourly_allowance_messages == (10.0, 40.0)
    assert microsoft == dataclasses.replace(defaults["microsoft"], escalation_threshold=(4.0, 8.0))
    for name in ("gmail", "yahoo", "apple", "other"):
        assert config.providers[name] == defaults[name], name
    # The sender part is the same as load_scenario's, which leaves the env's sections out.
    assert config.scenario == load_scenario(path)


def test_a_scenario_file_refines_the_config_and_overrides_refine_both(tmp_path: Path) -> None:
    path = _write(tmp_path, "strict.yaml", STRICT_MICROSOFT)
    base = build_config(
        overrides=[
            "providers.microsoft.escalation_threshold=[1.0, 2.0]",
            "providers.microsoft.block_duration_days=[9.0, 10.0]",
        ]
    )
    config = build_config(scenario=path, config=base)
    assert config.providers["microsoft"].escalation_threshold == (4.0, 8.0)  # the file's
    assert config.providers["microsoft"].block_duration_days == (9.0, 10.0)  # the config's
    last = build_config(
        scenario=path,
        config=base,
        overrides=["providers.microsoft.escalation_threshold=[5.0, 6.0]"],
    )
    assert last.providers["microsoft"].escalation_threshold == (5.0, 6.0)


def test_a_scenario_file_may_add_and_remove_providers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "gateways.yaml",
        "provider_mix: {gmail: 0.4, microsoft: 0.4, proofpoint: 0.2}\n"
        "providers:\n  yahoo: null\n  apple: null\n  other: null\n"
        "  proofpoint: {escalation_threshold: [5.0, 9.0]}\n",
    )
    config = build_config(scenario=path)
    assert config.provider_names == ("gmail", "microsoft", "proofpoint")
    assert config.providers["proofpoint"].escalation_threshold == (5.0, 9.0)


def test_bad_provider_tolerances_in_a_scenario_file_are_named_as_in_the_env(
    tmp_path: Path,
) -> None:
    path = _write(
        tmp_path,
        "bad.yaml",
        "providers:\n  microsoft: {escalation_threshold: [8.0, 4.0], cooling_dayz: [1.0, 2.0]}\n"
        "campaign_weekdays: [funday]\n",
    )
    with pytest.raises(ConfigError) as error:
        read_scenario(path)
    problems = error.value.problems
    with pytest.raises(ConfigError) as env_error:
        build_config(overrides=["providers.microsoft.escalation_threshold=[8.0, 4.0]"])
    (env_problem,) = env_error.value.problems
    # Every problem at once, each with the file and the same words as the env's loader.
    assert env_problem.startswith("env.providers.microsoft.escalation_threshold: expected")
    assert "scenario (bad.yaml)" + env_problem.removeprefix("env") in problems
    assert (
        "scenario (bad.yaml).providers.microsoft.cooling_dayz: unknown key; "
        "did you mean 'cooling_days'?" in problems
    )
    assert any(
        p.startswith("scenario (bad.yaml).campaign_weekdays[0]: expected one of") for p in problems
    )


def test_a_scenario_file_sets_the_mtas_overflow(tmp_path: Path) -> None:
    path = _write(tmp_path, "queued.yaml", "mta: {overflow: queue}\n")
    assert build_config(scenario=path).mta.overflow == "queue"
    assert build_config(scenario="low_volume").mta.overflow == "shared"  # the default
    assert build_config(scenario=path, overrides=["mta.overflow=shared"]).mta.overflow == "shared"
    bad = _write(tmp_path, "typo.yaml", "mta: {overflow: queu}\nmtaa: {}\n")
    with pytest.raises(ConfigError) as error:
        read_scenario(bad)
    assert error.value.problems == [
        "scenario (typo.yaml).mtaa: unknown key; did you mean 'mta'?",
        "scenario (typo.yaml).mta.overflow: expected one of 'shared', 'queue', got 'queu' (str); "
        "did you mean 'queue'?",
    ]


def test_the_test_suites_queue_scenario_is_the_old_override_pair_as_a_file() -> None:
    # Migrated from `seasonal_spike` + ["scenario.spike_start_day=12", "mta.overflow=queue"]:
    # the same env but for the scenario's name and description.
    from ipwarmup.training.evaluate import load_suite

    entry = next(e for e in load_suite("test").entries if e.name == "early_spike_queue_mta")
    assert entry.overrides == ()
    migrated = build_config(scenario=entry.scenario)
    old = build_config(
        scenario="seasonal_spike", overrides=["scenario.spike_start_day=12", "mta.overflow=queue"]
    )
    assert migrated.mta.overflow == "queue"
    assert migrated.scenario.spike_start_day == 12
    assert migrated.scenario.name == "early_spike_queue_mta"
    plain_migrated, plain_old = to_dict(migrated), to_dict(old)
    for plain in (plain_migrated, plain_old):
        del plain["scenario"]["name"], plain["scenario"]["description"]
    assert plain_migrated == plain_old


def _readme_scenarios() -> str:
    text = (Path(__file__).parents[2] / "README.md").read_text()
    start = text.index("### Scenarios")
    return text[start : text.index("\n### ", start + 1)]


def test_the_readme_names_every_scenario_field_and_its_example_loads(tmp_path: Path) -> None:
    section = _readme_scenarios()
    missing = [name for name in ScenarioConfig.docs() if f"`{name}`" not in section]
    assert not missing, f"README's Scenarios section does not name {missing}"
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    config = build_config(scenario=_write(tmp_path, "readme.yaml", example))
    assert config.providers["microsoft"].escalation_threshold == (4.0, 8.0)
    assert config.mta.overflow == "queue"


def test_scenarios_are_found_by_name_or_by_path(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write(tmp_path, "mine.yml", "daily_volume_messages: [10.0, 20.0]\n")
    _write(tmp_path, "plain", "daily_volume_messages: [30.0, 40.0]\n")
    assert load_scenario("mine.yml").daily_volume_messages == (10.0, 20.0)  # no folder
    assert load_scenario("plain").name == "plain"  # a file in the cwd, no suffix
    assert load_scenario("low_volume").name == "low_volume"  # a shipped name
    with pytest.raises(ConfigError) as error:
        load_scenario("missing.yaml")  # a suffix makes it a path, even without a file
    assert error.value.problems == ["missing.yaml: no such file"]
    with pytest.raises(ConfigError) as error:
        load_scenario("low_volum")
    assert error.value.problems == [
        "scenario: unknown scenario 'low_volum'; did you mean 'low_volume'?"
    ]
    with pytest.raises(ConfigError) as error:
        load_scenario("zzz")
    assert error.value.problems[0].startswith(
        "scenario: unknown scenario 'zzz'; expected one of ['b2b_microsoft_heavy', "
    )


def test_a_read_scenario_file_is_frozen(tmp_path: Path) -> None:
    read = read_scenario(_write(tmp_path, "queued.yaml", "mta: {overflow: queue}\n"))
    assert read.sections == {"mta": {"overflow": "queue"}}
    with pytest.raises(dataclasses.FrozenInstanceError):
        read.sections = {}  # type: ignore[misc]
