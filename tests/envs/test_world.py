"""The world (issue 10): its transforms by hand, its coverage, its errors, and its VecEnv."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ipwarmup.config import load, to_dict
from ipwarmup.envs.config import EnvConfig, MTAConfig, PoolConfig, ProviderConfig
from ipwarmup.envs.simulator import Simulator
from ipwarmup.envs.vector import make_vec_env
from ipwarmup.envs.world import (
    N_PROVIDER_SCALES,
    N_WORLD_UNIFORMS,
    U,
    WorldSampler,
    floored,
    load_world,
    log_uniform,
    pick,
)
from ipwarmup.envs.world_config import WorldConfig
from ipwarmup.envs.world_vec import make_world_vec_env
from ipwarmup.errors import ConfigError


@pytest.fixture(scope="module")
def sampler() -> WorldSampler:
    return WorldSampler(world=load_world("default"), config=EnvConfig())


def _uniforms(value: float = 0.5, **named: float) -> np.ndarray:
    u = np.full(N_WORLD_UNIFORMS, value)
    for name, v in named.items():
        u[U[name]] = v
    return u


# ----------------------------------------------------------------- transforms by hand
def test_log_uniform_pick_and_floor_by_hand() -> None:
    # 300 * (3e6 / 300) ** 0.5 = 300 * 100 = 30,000
    assert log_uniform((300.0, 3_000_000.0), 0.5) == pytest.approx(30_000.0)
    # 0.001 * 80 ** 0.25 = 0.001 * 2.990698 = 0.002990698
    assert log_uniform((0.001, 0.08), 0.25) == pytest.approx(0.002990698, rel=1e-6)
    assert log_uniform((300.0, 3_000_000.0), 0.0) == pytest.approx(300.0)
    weights = [0.4, 0.25, 0.2, 0.15]  # edges 0.4, 0.65, 0.85 (0.85000...01 in floats), 1.0
    got = [pick(weights, u) for u in (0.0, 0.399, 0.4, 0.649, 0.65, 0.849, 0.851, 0.9999)]
    assert got == [0, 0, 1, 1, 2, 2, 3, 3]
    assert pick([0.0, 1.0], 0.0) == 1  # a zero weight is never picked
    # weights need not sum to 1: edges 0.5, 0.75, 1.0
    assert [pick([2.0, 1.0, 1.0], u) for u in (0.49, 0.5, 0.74, 0.76)] == [0, 1, 1, 2]
    # u at 1 (rounding) keeps to the last weighted entry
    assert pick([1.0, 1.0, 0.0], 1.0) == 1
    assert floored((6.0, 18.0), 0.999) == 17  # 6 + 12 x 0.999 = 17.988
    assert floored((1.0, 8.0), 0.5) == 4  # 4.5
    assert floored((1.0, 8.0), 0.0) == 1


def test_a_draw_at_the_midpoints_by_hand(sampler: WorldSampler) -> None:
    config = sampler.from_uniforms(_uniforms(), np.full((N_PROVIDER_SCALES, 5), 0.5))
    s = config.scenario
    # log-uniform midpoint of [100, 3M]: sqrt(100 x 3e6) = 17,320.5
    assert s.daily_volume_messages == pytest.approx((17_320.508, 17_320.508))
    # growth kind 0.5 is in [0.4, 0.65): multiplicative, 1.01 + 0.07 x 0.5
    assert s.growth_per_day == pytest.approx((1.045, 1.045))
    assert s.growth_messages_per_day == (0.0, 0.0)
    # mix 0.5 is in [0.45, 0.75): b2b_microsoft; concentration 5 x 60 ** 0.5 = 38.7298
    assert s.provider_mix["microsoft"] == 0.40
    assert s.mix_concentration == pytest.approx(38.72983, rel=1e-6)
    # quality 0.5: bounce 0.001 x 80 ** 0.5, complaint 5e-5 x 120 ** 0.5, domain 0.85 - 0.2
    assert s.bounce_rate == pytest.approx((0.0089443, 0.0089443), rel=1e-4)
    assert s.complaint_rate[0] == pytest.approx(0.000547723, rel=1e-5)
    assert s.trap_rate[0] == pytest.approx(1e-6 * 500**0.5, rel=1e-6)
    assert s.domain_reputation == pytest.approx((0.65, 0.65))
    # pattern 0.5 is in [0.4, 0.7): b2c_marketing; noise 0.05 + 0.2 x 0.5
    assert s.weekly_shape == (1.1, 1.2, 1.2, 1.1, 1.0, 0.7, 0.7)
    assert s.volume_noise == pytest.approx(0.15)
    # 0.5 is above the campaign (0.4) and spike (0.15) shares, and not below queue_share 0.5
    assert s.campaign_probability == 0.0 and s.spike_start_day is None
    assert config.mta.overflow == "shared"
    assert s.name == "default-draw"
    assert s.description == "17,321/day, multiplicative growth, b2b_microsoft mix, b2c_marketing"
    # allowance 0.4 x 6.25 ** 0.5 = 1.0; trust growth x 0.9 above 1; escalation x 1.0
    microsoft = config.providers["microsoft"]
    assert microsoft.full_trust_hourly_allowance_messages == pytest.approx((3_000.0, 10_000.0))
    assert microsoft.trust_growth_per_day == pytest.approx((1.315, 1.63))
    assert microsoft.escalation_threshold == pytest.approx((6.0, 12.0))


def test_a_campaign_sender_with_a_spike_on_a_queue_mta_by_hand(sampler: WorldSampler) -> None:
    u = _uniforms(
        growth_kind=0.7, growth=0.5, campaigns=0.1, campaign_days=0.5, multiplier_a=0.9,
        multiplier_b=0.1, campaign_hour=0.5, campaign_duration=0.999, campaign_probability=0.25,
        spike=0.1, spike_start=0.0, spike_duration=0.5, spike_multiplier=0.25, overflow=0.49,
        quality=0.999,
    )  # fmt: skip
    u[len(U) :] = [0.9, 0.1, 0.5, 0.3, 0.8, 0.2, 0.7]  # weekday order: tue, sat, thu, ...
    scales = np.full((N_PROVIDER_SCALES, 5), 0.5)
    scales[:, 4] = [0.0, 0.25, 0.9]  # other: allowance 0.4x, trust 0.7x, escalation 1.4x
    config = sampler.from_uniforms(u, scales)
    s = config.scenario
    # linear growth (0.7 in [0.65, 0.85)): 17,320.5 x (0.005 + 0.045 x 0.5) = 476.31 a day
    assert s.growth_messages_per_day == pytest.approx((476.314, 476.314))
    assert s.growth_per_day == (1.0, 1.0)
    # 1 + int(0.5 x 3) = 2 campaign days, the two smallest weekday uniforms
    assert s.campaign_weekdays == ("tue", "sat")
    assert s.campaign_probability == pytest.approx(0.4)  # 0.2 + 0.8 x 0.25
    assert s.campaign_multiplier == pytest.approx((2.15, 7.35))  # 1.5 + 6.5 x (0.1, 0.9)
    assert (s.campaign_start_hour, s.campaign_duration_hours) == (12, 7)  # 6 + 6, 1 + 6.993
    assert (s.spike_start_day, s.spike_duration_days) == (5, 6)  # 5 + 0, 3 + 3.5
    assert s.spike_multiplier == pytest.approx(3.0)
    assert config.mta.overflow == "queue"
    # the poorest list: bounce near 8%, domain near 0.45
    assert s.bounce_rate[0] == pytest.approx(0.001 * 80**0.999, rel=1e-9)
    assert s.domain_reputation[0] == pytest.approx(0.85 - 0.4 * 0.999)
    other = config.providers["other"]
    assert other.full_trust_hourly_allowance_messages == pytest.approx((4_000.0, 12_000.0))
    assert other.cold_hourly_allowance_messages == pytest.approx((16.0, 48.0))  # (40, 120)
    # 1 + (0.5 + 0.8 x 0.25) x (0.5, 0.9)
    assert other.trust_growth_per_day == pytest.approx((1.35, 1.63))
    # (20, 40) x 1.4 = (28, 56), the high end capped at 0.9 x 5 / (1 - 0.9) = 45
    assert other.escalation_threshold == pytest.approx((28.0, 45.0))


def test_the_shares_are_strict_edges_and_missing_growth_kinds_never_drawn() -> None:
    sampler = WorldSampler(world=load_world("default"), config=EnvConfig())
    scales = np.full((N_PROVIDER_SCALES, 5), 0.5)
    at_edges = sampler.from_uniforms(_uniforms(campaigns=0.4, spike=0.15), scales)
    assert at_edges.scenario.campaign_probability == 0.0
    assert at_edges.scenario.spike_start_day is None
    below = sampler.from_uniforms(_uniforms(campaigns=0.399, spike=0.149), scales).scenario
    assert below.campaign_probability > 0 and below.spike_start_day is not None
    # The draw sets the overflow mode whatever the base env's
    queued = EnvConfig(mta=MTAConfig(overflow="queue"))
    base_queue = WorldSampler(world=load_world("default"), config=queued)
    assert base_queue.from_uniforms(_uniforms(overflow=0.9), scales).mta.overflow == "shared"
    assert base_queue.from_uniforms(_uniforms(overflow=0.1), scales).mta.overflow == "queue"
    steady = WorldSampler(world=WorldConfig(growth_kinds={"none": 1.0}), config=EnvConfig())
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = steady.draw(rng).scenario
        assert (s.growth_per_day, s.growth_messages_per_day) == ((1.0, 1.0), (0.0, 0.0))


# ------------------------------------------------------------------------ coverage
@pytest.fixture(scope="module")
def draws(sampler: WorldSampler) -> list[EnvConfig]:
    rng = np.random.default_rng(2026)
    return [sampler.draw(rng) for _ in range(2000)]


def _share(flags: list[bool]) -> float:
    return float(np.mean(flags))


def test_draws_cover_volume_lists_mta_and_patterns(draws: list[EnvConfig]) -> None:
    volume = np.array([d.scenario.daily_volume_messages[0] for d in draws])
    assert volume.min() >= 100.0 and volume.max() <= 3_000_000.0
    # Log-uniform: P(< 500) = ln 5 / ln 3e4 = 0.156; P(> 1M) = ln 3 / ln 3e4 = 0.107
    # (standard errors over 2,000 draws: 0.008 and 0.007)
    assert 0.13 <= _share(list(volume < 500)) <= 0.18
    assert 0.085 <= _share(list(volume > 1e6)) <= 0.13
    bounce = np.array([d.scenario.bounce_rate[0] for d in draws])
    assert bounce.min() >= 0.001 and bounce.max() <= 0.08
    # Poor lists (poor_list_quality's 3% bounces and up): 1 - ln 30 / ln 80 = 0.224
    assert 0.19 <= _share(list(bounce >= 0.03)) <= 0.26
    assert 0.45 <= _share([d.mta.overflow == "queue" for d in draws]) <= 0.55
    assert 0.36 <= _share([d.scenario.campaign_probability > 0 for d in draws]) <= 0.44
    assert 0.12 <= _share([d.scenario.spike_start_day is not None for d in draws]) <= 0.18
    quiet = [d.scenario.weekly_shape[5] == 0.3 for d in draws]
    assert 0.26 <= _share(quiet) <= 0.34
    growing = [d.scenario.growth_per_day[0] > 1 for d in draws]
    shrinking = [d.scenario.growth_per_day[0] < 1 for d in draws]
    linear = [d.scenario.growth_messages_per_day[0] > 0 for d in draws]
    assert 0.21 <= _share(growing) <= 0.29
    assert 0.12 <= _share(shrinking) <= 0.18
    assert 0.16 <= _share(linear) <= 0.24
    microsoft_heavy = [d.scenario.provider_mix["microsoft"] == 0.40 for d in draws]
    assert 0.26 <= _share(microsoft_heavy) <= 0.34


def test_draws_span_the_shipped_and_test_suite_tolerances(draws: list[EnvConfig]) -> None:
    def ends(provider: str, field: str) -> tuple[float, float]:
        ranges = [getattr(d.providers[provider], field) for d in draws]
        return min(r[0] for r in ranges), max(r[1] for r in ranges)

    # test suite strict_microsoft_b2b: full trust (2,000, 5,000), escalation (4, 8);
    # shipped Microsoft (3,000, 10,000) and (6, 12)
    low, high = ends("microsoft", "full_trust_hourly_allowance_messages")
    assert low <= 2_000.0 and 10_000.0 <= high <= 10_000.0 * 2.5
    low, high = ends("microsoft", "escalation_threshold")
    assert low <= 4.0 and 12.0 <= high <= 18.0
    # test suite slow_trust_startup: Gmail and Yahoo trust growth (1.3, 1.5); shipped
    # Gmail (1.5, 1.9)
    low, high = ends("gmail", "trust_growth_per_day")
    assert 1.25 <= low <= 1.3 and 1.9 <= high <= 1 + 0.9 * 1.3
    for draw in draws[:300]:
        for provider in draw.providers.values():
            # drawn without validation (WorldSampler._scaled): validating again changes nothing
            assert load(ProviderConfig, to_dict(provider)) == provider
            # still reachable: 0.9 of the pressure's ceiling 5 / (1 - 0.9)
            assert provider.escalation_threshold[1] <= 45.0 + 1e-9


# --------------------------------------------------------- suites stay out of training
def test_no_suite_scenario_is_in_the_training_distribution(draws: list[EnvConfig]) -> None:
    from ipwarmup.envs.env import build_config
    from ipwarmup.training.config import TrainingConfig, load_experiment
    from ipwarmup.training.evaluate import load_suite

    suites = [load_suite("validation"), load_suite("test")]
    held_out = {
        entry.name: build_config(scenario=entry.scenario, overrides=entry.overrides).scenario
        for suite in suites
        for entry in suite.entries
    }
    assert len(held_out) == 14
    assert not [d for d in draws if d.scenario in held_out.values()]
    names = set(held_out) | {s.name for s in held_out.values()}
    assert not {d.scenario.name for d in draws} & names
    # The default training config and the shipped experiments train on the world.
    assert TrainingConfig().world == "default" and TrainingConfig().scenarios == ()
    root = Path(__file__).resolve().parents[2] / "configs" / "experiments"
    for name in ("ppo", "smoke", "sac"):
        training = load_experiment(root / f"{name}.yaml").training
        assert training.world == "default" and training.scenarios == ()


def test_training_takes_a_world_or_scenarios_not_both_nor_neither() -> None:
    from ipwarmup.training.config import load_experiment

    with pytest.raises(ConfigError, match=r"training\.world: expected either a world or sc"):
        load_experiment(None, ["training.scenarios=[low_volume]"])
    with pytest.raises(ConfigError, match=r"training\.scenarios: expected at least one scen"):
        load_experiment(None, ["training.world=null"])
    chosen = load_experiment(None, ["training.world=null", "training.scenarios=[low_volume]"])
    assert chosen.training.scenarios == ("low_volume",)


# ------------------------------------------------------------------------- errors
def test_world_file_errors_name_the_field(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("daily_volume_messages: [3000.0, 300.0]\nqueue_share: 2\nvolume: 3\n")
    with pytest.raises(ConfigError) as error:
        load_world(path)
    text = str(error.value)
    assert "world (mine.yaml).daily_volume_messages" in text
    assert "world (mine.yaml).queue_share: expected a number >= 0 and <= 1, got 2.0" in text
    assert "world (mine.yaml).volume" in text
    with pytest.raises(ConfigError, match="unknown world 'defualt'; did you mean 'default'"):
        load_world("defualt")
    with pytest.raises(ConfigError, match=r"unknown world 'zzz'; expected one of \['default'\]"):
        load_world("zzz")
    path.write_text("queue_share: 0.25\n")
    assert (load_world(path).name, load_world(path).queue_share) == ("mine", 0.25)
    path.write_text("growth_kinds: {none: 1.0, exponential: 1.0}\n")
    with pytest.raises(ConfigError, match=r"growth_kinds: expected weights of"):
        load_world(path)
    world = WorldConfig(provider_mixes={"x": load_world("default").provider_mixes["eu"]})
    mix = dict(world.provider_mixes["x"].shares)
    del mix["apple"]
    bad = load_world("default").provider_mixes["eu"].__class__(shares=mix)
    with pytest.raises(ConfigError, match=r"world\.provider_mixes\.x\.shares: expected a share"):
        WorldSampler(world=WorldConfig(provider_mixes={"x": bad}), config=EnvConfig())


def test_simulator_refuses_a_row_config_that_changes_what_the_batch_shares() -> None:
    simulator = Simulator(EnvConfig(), 2)
    other = EnvConfig(pool=PoolConfig(max_ips=4))
    rngs = [np.random.default_rng(i) for i in range(2)]
    with pytest.raises(ValueError, match=r"configs\[row 1\]: pool: expected the batch's"):
        simulator.reset(np.arange(2), rngs, [EnvConfig(), other])


# ------------------------------------------------------------------------ VecEnv
def _rollout(env, steps: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    out = [env.reset()]
    for _ in range(steps):
        obs, reward, _, _ = env.step(rng.uniform(-1, 1, (env.num_envs, 6)))
        out += [obs, reward[:, None]]
    return np.concatenate(out, axis=1)


def test_world_vec_env_is_reproducible_from_its_seed() -> None:
    horizon = ["horizon_days=3"]
    first = _rollout(make_world_vec_env(world="default", overrides=horizon, n_envs=4, seed=3), 7)
    again = _rollout(make_world_vec_env(world="default", overrides=horizon, n_envs=4, seed=3), 7)
    other = _rollout(make_world_vec_env(world="default", overrides=horizon, n_envs=4, seed=4), 7)
    assert np.array_equal(first, again)
    assert not np.allclose(first, other)


def test_each_env_meets_a_new_sender_each_episode_as_a_single_env_would() -> None:
    env = make_world_vec_env(world="default", overrides=["horizon_days=3"], n_envs=6, seed=11)
    env.reset()
    configs = list(env.episode_configs)
    assert {c.mta.overflow for c in configs} == {"shared", "queue"}  # both in one batch
    rng = np.random.default_rng(0)
    actions = [rng.uniform(-1, 1, (6, 6)) for _ in range(3)]
    steps = [env.step(a) for a in actions]
    assert not steps[0][2].any() and steps[-1][2].all()
    for i, config in enumerate(configs):
        single = make_vec_env(config=config, n_envs=1, seed=11 + i)
        single.reset()
        for (obs, reward, done, info), action in zip(steps, actions, strict=True):
            got, got_reward, got_done, got_info = single.step(action[i : i + 1])
            mine = got_info[0]["terminal_observation"] if got_done[0] else got[0]
            theirs = info[i]["terminal_observation"] if done[i] else obs[i]
            np.testing.assert_array_equal(mine, theirs)
            assert got_reward[0] == pytest.approx(reward[i], rel=1e-6)
    # The horizon drew a new sender for every env.
    fresh = [c.scenario for c in env.episode_configs]
    assert all(a != b for a, b in zip(fresh, [c.scenario for c in configs], strict=True))
