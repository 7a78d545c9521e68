"""Baselines across settings: several IPs, 1 h and 6 h decisions, limits, the ceiling.

Observations are encoded from telemetry as the simulator would send them; each test then
applies the predicted cap action to the current per-IP cap with the action codec and
checks the cap the policy aimed at, computed by hand.
"""

import math

import numpy as np
import pytest

from ipwarmup.agents.baselines import (
    BRAZE_MODERATE_DAILY,
    SENDGRID_HOURLY_CAPS,
    SPARKPOST_DAILY_STAGES,
    rule_of_thumb_ips,
)
from ipwarmup.agents.registry import make_policy
from ipwarmup.envs import IPWarmupEnv, build_config
from ipwarmup.observation import Telemetry, encode, obs_size

MIX = np.array([0.5, 0.13, 0.2, 0.03, 0.14])  # the B2C mix of the default providers


def _config(interval=24, horizon=45):
    return build_config(
        scenario="steady_b2c_transactional",
        overrides=[f"decision_interval_hours={interval}", f"horizon_days={horizon}"],
    )


def _observation(
    config,
    *,
    n_ips,
    day,
    demand_per_hour=1000.0,
    cap_per_ip=None,
    sent_share=1.0,
    deferral_rate=0.0,
    reject_rate=0.0,
    bounce_rate=0.0,
    complaint_rate=0.0,
):
    """One period of telemetry over every provider, demand split by MIX, encoded."""
    hours = config.decision_interval_hours
    hourly = demand_per_hour * MIX
    demand = hourly * hours
    sent = demand * sent_share
    deferred, rejected = sent * deferral_rate, sent * reject_rate
    accepted = sent - deferred - rejected
    delivered = accepted * (1.0 - bounce_rate)
    per_ip = hourly if cap_per_ip is None else cap_per_ip * MIX
    t = Telemetry(
        demand_per_hour=hourly[None],
        cap_per_hour=(per_ip * max(n_ips, 1))[None] if n_ips else np.zeros((1, 5)),
        demand=demand[None],
        sent_dedicated=sent[None],
        accepted=accepted[None],
        deferred=deferred[None],
        rejected=rejected[None],
        bounced=(accepted * bounce_rate)[None],
        transmitted=accepted[None],
        complaints=(delivered * complaint_rate)[None],
        delivered=delivered[None],
        queued=np.zeros((1, 5)),
        n_ips=np.array([float(n_ips)]),
        mean_ip_age_days=np.array([day]),
        day=np.array([day]),
        weekday=np.zeros(1),
        hour=np.array([(day * 24) % 24]),
    )
    obs = encode(t, horizon_days=config.horizon_days, max_ips=config.pool.max_ips)
    # The rules read the last period; the history and MTA columns after it stay zero.
    return np.pad(obs, ((0, 0), (0, obs_size(5, config.observation.layout) - obs.shape[1])))


def _per_ip_after(config, action, cap_per_ip):
    """Per-IP cap of every provider after the action (unclipped), as the simulator applies it."""
    factors = config.action_codec.cap_factors(np.asarray(action, dtype=float)[None])[0]
    return cap_per_ip * MIX * factors


# --- fixed schedules --------------------------------------------------------------------


@pytest.mark.parametrize("interval", [1, 6, 24])
@pytest.mark.parametrize("n_ips", [1, 3])
def test_sendgrid_aims_every_ip_at_the_table_of_its_warmup_day(interval, n_ips):
    config = _config(interval)
    policy = make_policy("fixed-sendgrid", config)
    # Day 9 (413/h per IP) at the start of the day and three quarters into it: the table
    # moves once a day, at the day's start.
    for day in (9.0, 9.75 if interval < 24 else 9.0):
        current = SENDGRID_HOURLY_CAPS[9] * 1.01  # within one 1-hour step (2^(1/24)) of it
        obs = _observation(config, n_ips=n_ips, day=day, cap_per_ip=current)
        action, _ = policy.predict(obs[0])
        expected = SENDGRID_HOURLY_CAPS[9] * MIX
        np.testing.assert_allclose(_per_ip_after(config, action, current), expected, rtol=1e-4)


def test_sendgrid_moves_to_the_next_day_at_midnight_not_at_noon():
    config = _config(6)
    policy = make_policy("fixed-sendgrid", config)
    for day, table_day in ((1.5, 1), (1.75, 1), (2.0, 2), (2.5, 2)):
        current = SENDGRID_HOURLY_CAPS[table_day] * 1.1
        action, _ = policy.predict(_observation(config, n_ips=2, day=day, cap_per_ip=current)[0])
        expected = SENDGRID_HOURLY_CAPS[table_day] * MIX
        np.testing.assert_allclose(
            _per_ip_after(config, action, current), expected, rtol=1e-4, err_msg=str(day)
        )


def test_braze_continues_at_its_last_growth_after_the_table():
    config = _config(24)
    policy = make_policy("fixed-braze", config)
    growth = BRAZE_MODERATE_DAILY[-1] / BRAZE_MODERATE_DAILY[-2]  # 1.0M / 825k
    for day, daily in ((5.0, 4_000.0), (20.0, 1e6), (25.0, 1e6 * growth**5)):
        current = daily / 12 * 0.8
        action, _ = policy.predict(_observation(config, n_ips=2, day=day, cap_per_ip=current)[0])
        expected = daily / 12 * MIX  # 12 sending hours a day
        np.testing.assert_allclose(
            _per_ip_after(config, action, current), expected, rtol=1e-4, err_msg=str(day)
        )


@pytest.mark.parametrize(
    ("daily", "ips"),
    [(3_333.0, 0), (3_334.0, 1), (500_000.0, 1), (500_001.0, 2), (1_500_000.0, 3)],
)
def test_rule_of_thumb_edges(daily, ips):
    # Shared below 100k a month (30 days: 3,333.3 a day); one IP per started 500k a day.
    assert rule_of_thumb_ips(np.array([daily]), 8)[0] == ips


@pytest.mark.parametrize(
    ("n_ips", "target", "pool_action"), [(0, 1, 1.0), (1, 1, 0.0), (3, 1, -1.0)]
)
def test_fixed_schedules_size_the_pool_once_by_the_rule_of_thumb(n_ips, target, pool_action):
    config = _config(24)
    policy = make_policy("fixed-sendgrid", config)
    # 200k a day -> one IP, whatever the pool holds now.
    obs = _observation(config, n_ips=n_ips, day=0.0, demand_per_hour=200_000 / 24)
    action, state = policy.predict(obs)
    assert state[0][0, 0] == target
    assert action[0, -1] == pool_action
    # Later decisions keep the first target even when demand changes tenfold.
    obs = _observation(config, n_ips=n_ips, day=1.0, demand_per_hour=2_000_000 / 24)
    action, state = policy.predict(obs, state, np.array([False]))
    assert state[0][0, 0] == target and action[0, -1] == pool_action


# --- SparkPost --------------------------------------------------------------------------


def _sparkpost_step(policy, config, state, *, n_ips, day, sent_per_ip_per_hour, start=False):
    demand = sent_per_ip_per_hour * n_ips  # every message sent and accepted on dedicated
    obs = _observation(config, n_ips=n_ips, day=day, demand_per_hour=demand)
    action, state = policy.predict(obs, state, np.array([start]))
    return action[0], state


@pytest.mark.parametrize(("per_ip_daily", "advanced"), [(190.0, True), (170.0, False)])
def test_sparkpost_judges_each_ips_volume_not_the_pools(per_ip_daily, advanced):
    # Stage 1 is 200 a day per IP; 90% is 180. Three IPs send 190 (or 170) each: the pool's
    # 570 (510) is far above 180 either way, only the per-IP figure decides.
    config = _config(24)
    policy = make_policy("fixed-sparkpost", config)
    hourly = per_ip_daily / 24
    _, state = _sparkpost_step(policy, config, None, n_ips=3, day=0.0,
                               sent_per_ip_per_hour=hourly, start=True)  # fmt: skip
    assert state[0][0, 1] == 0
    action, state = _sparkpost_step(policy, config, state, n_ips=3, day=1.0,
                                    sent_per_ip_per_hour=hourly)  # fmt: skip
    stage = 1 if advanced else 0
    assert state[0][0, 1] == stage
    # The cap per IP aims at the stage's volume over 12 sending hours, split by the mix
    # (_observation gives each IP a cap equal to the pool's demand: 3 x `hourly`).
    expected = SPARKPOST_DAILY_STAGES[stage] / 12 * MIX
    np.testing.assert_allclose(_per_ip_after(config, action, 3 * hourly), expected, rtol=1e-4)


@pytest.mark.parametrize("interval", [1, 6])
def test_sparkpost_advances_at_most_once_a_day_with_frequent_decisions(interval):
    config = _config(interval)
    policy = make_policy("fixed-sparkpost", config)
    steps = 24 // interval
    state = None
    stages = []
    for step in range(3 * steps + 1):  # three days of decisions, plenty of volume each
        _, state = _sparkpost_step(
            policy, config, state, n_ips=2, day=step / steps,
            sent_per_ip_per_hour=1e6, start=step == 0,
        )  # fmt: skip
        stages.append(int(state[0][0, 1]))
    # It advances exactly at the start of days 1, 2 and 3, never in between.
    assert stages == [0] * steps + [1] * steps + [2] * steps + [3]


def test_sparkpost_needs_90_percent_of_the_stage_per_period_at_6_hours():
    # At 6 h a period must carry 90% of a quarter of the stage: 45 of stage 1's 200 per IP.
    config = _config(6)
    for per_period, stage in ((46.0, 1), (44.0, 0)):
        policy = make_policy("fixed-sparkpost", config)
        _, state = _sparkpost_step(policy, config, None, n_ips=2, day=0.75,
                                   sent_per_ip_per_hour=per_period / 6, start=True)  # fmt: skip
        _, state = _sparkpost_step(policy, config, state, n_ips=2, day=1.0,
                                   sent_per_ip_per_hour=per_period / 6)  # fmt: skip
        assert state[0][0, 1] == stage, per_period


# --- AIMD -------------------------------------------------------------------------------


@pytest.mark.parametrize("interval", [1, 6, 24])
def test_aimd_adds_500_a_day_per_ip_split_by_the_mix_with_several_ips(interval):
    config = _config(interval)
    policy = make_policy("aimd", config)
    current = 1000.0  # per IP over all providers; demand is three times the pool's caps
    obs = _observation(config, n_ips=3, day=2.0, demand_per_hour=9000.0, cap_per_ip=current,
                       sent_share=1 / 3)  # fmt: skip
    action, _ = policy.predict(obs[0])
    increase = 500.0 * interval / 24  # per decision, per IP and hour, over all providers
    np.testing.assert_allclose(
        _per_ip_after(config, action, current), (current + increase) * MIX, rtol=1e-4
    )
    assert action[-1] == 0.0


@pytest.mark.parametrize(
    ("signal", "value", "cut"),
    [
        ("deferral_rate", 0.06, True),
        ("deferral_rate", 0.04, False),
        ("complaint_rate", 0.0015, True),
        ("complaint_rate", 0.0005, False),
        ("bounce_rate", 0.06, True),
        ("bounce_rate", 0.04, False),
    ],
)
def test_aimd_cuts_every_provider_over_a_limit_by_one_and_a_half(signal, value, cut):
    config = _config(24)
    policy = make_policy("aimd", config)
    current = 1000.0
    obs = _observation(config, n_ips=2, day=3.0, demand_per_hour=4000.0, cap_per_ip=current,
                       sent_share=0.5, **{signal: value})  # fmt: skip
    action, _ = policy.predict(obs[0])
    expected = current / 1.5 if cut else current + 500.0
    np.testing.assert_allclose(_per_ip_after(config, action, current), expected * MIX, rtol=1e-3)


def test_aimd_pauses_a_blocked_provider_as_fast_as_allowed():
    config = _config(6)
    policy = make_policy("aimd", config)
    obs = _observation(config, n_ips=2, day=3.0, demand_per_hour=4000.0, cap_per_ip=1000.0,
                       sent_share=0.5, reject_rate=0.01)  # fmt: skip
    action, _ = policy.predict(obs[0])
    np.testing.assert_array_equal(action[:-1], -1.0)


def test_aimd_adds_an_ip_at_the_per_ip_ceiling_and_not_below():
    config = _config(24)
    policy = make_policy("aimd", config)
    ceiling = 500_000 / 24
    for per_ip, grows in ((ceiling * 1.001, True), (ceiling * 0.99, False)):
        obs = _observation(config, n_ips=2, day=10.0, demand_per_hour=8 * ceiling,
                           cap_per_ip=per_ip, sent_share=0.5)  # fmt: skip
        action, _ = policy.predict(obs[0])
        assert action[-1] == (1.0 if grows else 0.0), per_ip
    # At the ceiling but everything was sent: no IP.
    obs = _observation(config, n_ips=2, day=10.0, demand_per_hour=ceiling,
                       cap_per_ip=ceiling * 1.001, sent_share=1.0)  # fmt: skip
    assert policy.predict(obs[0])[0][-1] == 0.0


def test_aimd_in_the_simulator_grows_from_an_empty_pool_with_6_hour_decisions():
    env = IPWarmupEnv(
        scenario="steady_b2c_transactional",
        overrides=["pool.initial_ips=0", "decision_interval_hours=6"],
    )
    policy = make_policy("aimd", env.config)
    obs, _ = env.reset(seed=0)
    pools = []
    for _ in range(6):
        action, _ = policy.predict(obs)
        assert action[-1] == (1.0 if env.simulator.state.n_ips[0] == 0 else 0.0)
        obs, *_ = env.step(action)
        pools.append(int(env.simulator.state.n_ips[0]))
    # Since issue 8 the pool may change at the very first decision (then once a day,
    # pool_change_min_days): the request at hour 0 is granted, and AIMD stops asking once
    # it has an IP.
    assert pools == [1, 1, 1, 1, 1, 1]
    assert math.isclose(env.simulator.state.hour[0], 36)


def test_monthly_volume_of_exactly_100k_leaves_the_shared_pool():
    # 100,000 / 30 a day is 100,000.0 a month in floating point: not below the line.
    assert rule_of_thumb_ips(np.array([100_000 / 30]), 8)[0] == 1


@pytest.mark.parametrize(("day", "table_day"), [(0.0, 0), (41.0, 41), (44.0, 41)])
def test_sendgrid_starts_at_its_first_value_and_holds_its_last(day, table_day):
    config = _config(24)
    policy = make_policy("fixed-sendgrid", config)
    current = SENDGRID_HOURLY_CAPS[table_day] * 1.2
    action, _ = policy.predict(_observation(config, n_ips=1, day=day, cap_per_ip=current)[0])
    expected = SENDGRID_HOURLY_CAPS[table_day] * MIX
    np.testing.assert_allclose(_per_ip_after(config, action, current), expected, rtol=1e-4)


def test_braze_reaches_the_last_day_of_the_horizon_at_its_growth():
    config = _config(24, horizon=45)
    policy = make_policy("fixed-braze", config)
    growth = BRAZE_MODERATE_DAILY[-1] / BRAZE_MODERATE_DAILY[-2]
    daily = 1e6 * growth**24  # day 44: 24 days after the table's last (day 20)
    current = daily / 12 * 0.8
    action, _ = policy.predict(_observation(config, n_ips=1, day=44.0, cap_per_ip=current)[0])
    np.testing.assert_allclose(_per_ip_after(config, action, current), daily / 12 * MIX, rtol=1e-4)


@pytest.mark.parametrize(
    "name", ["fixed-sendgrid", "fixed-sparkpost", "fixed-braze", "aimd", "hold", "hold-shared"]
)
def test_every_baseline_reports_its_own_name(name):
    policy = make_policy(name, _config(24))
    assert policy.name == name
    assert policy.describe() == {"policy": name}


@pytest.mark.parametrize(
    ("daily", "ips"), [(3_300.0, 0), (3_400.0, 1), (990_000.0, 2), (1_010_000.0, 3)]
)
def test_fixed_schedules_size_the_pool_from_a_days_demand(daily, ips):
    config = _config(24)
    obs = _observation(config, n_ips=1, day=0.0, demand_per_hour=daily / 24)
    for name in ("fixed-sendgrid", "fixed-sparkpost"):
        action, state = make_policy(name, config).predict(obs)
        assert state[0][0, 0] == ips, name
        assert action[0, -1] == np.sign(ips - 1), name  # one IP now: grow, hold or shrink


@pytest.mark.parametrize(
    "failure", [{"deferral_rate": 0.1}, {"reject_rate": 0.1}], ids=["deferred", "rejected"]
)
def test_sparkpost_counts_only_accepted_mail_toward_the_stage(failure):
    # 190 a day per IP sent, 10% of it deferred or rejected: 171 accepted, below 180.
    config = _config(24)
    policy = make_policy("fixed-sparkpost", config)
    obs = _observation(config, n_ips=2, day=0.0, demand_per_hour=2 * 190 / 24, **failure)
    _, state = policy.predict(obs, None, np.array([True]))
    obs = _observation(config, n_ips=2, day=1.0, demand_per_hour=2 * 190 / 24, **failure)
    _, state = policy.predict(obs, state, np.array([False]))
    assert state[0][0, 1] == 0


def test_sparkpost_judges_each_row_of_a_batch_on_its_own():
    config = _config(24)
    policy = make_policy("fixed-sparkpost", config)
    rows = [(190.0, 1), (170.0, 0)]  # per IP and day; the expected stage after a day
    obs = np.concatenate(
        [_observation(config, n_ips=2, day=0.0, demand_per_hour=2 * v / 24) for v, _ in rows]
    )
    _, state = policy.predict(obs, None, np.array([True, True]))
    obs = np.concatenate(
        [_observation(config, n_ips=2, day=1.0, demand_per_hour=2 * v / 24) for v, _ in rows]
    )
    _, state = policy.predict(obs, state, np.array([False, False]))
    assert list(state[0][:, 1]) == [stage for _, stage in rows]


@pytest.mark.parametrize(("per_hour", "stage"), [(2850.0, 10), (2775.0, 9)])
def test_sparkpost_at_1_hour_needs_90_percent_of_a_24th_of_the_stage(per_hour, stage):
    # Stage 10 is 75,000 a day: 0.9 x 75,000 / 24 = 2812.5 per IP in an hour-long period.
    # (Volumes this large: the encoder counts rates over at least one message per provider.)
    config = _config(1)
    policy = make_policy("fixed-sparkpost", config)
    _, state = _sparkpost_step(policy, config, None, n_ips=2, day=23 / 24,
                               sent_per_ip_per_hour=per_hour, start=True)  # fmt: skip
    state[0][0, 1] = 9
    _, state = _sparkpost_step(policy, config, state, n_ips=2, day=1.0,
                               sent_per_ip_per_hour=per_hour)  # fmt: skip
    assert state[0][0, 1] == stage


def test_sparkpost_stays_at_its_last_stage():
    config = _config(24)
    policy = make_policy("fixed-sparkpost", config)
    last = len(SPARKPOST_DAILY_STAGES) - 1
    _, state = _sparkpost_step(policy, config, None, n_ips=1, day=0.0,
                               sent_per_ip_per_hour=1e7, start=True)  # fmt: skip
    state[0][0, 1] = last - 1
    for day in (1.0, 2.0):
        _, state = _sparkpost_step(policy, config, state, n_ips=1, day=day,
                                   sent_per_ip_per_hour=1e7)  # fmt: skip
    assert state[0][0, 1] == last


def test_sparkpost_with_an_empty_pool_holds_its_stage_without_dividing_by_zero():
    config = _config(24)
    policy = make_policy("fixed-sparkpost", config)
    obs = _observation(config, n_ips=0, day=0.0, demand_per_hour=1000.0, sent_share=0.0)
    _, state = policy.predict(obs, None, np.array([True]))
    obs = _observation(config, n_ips=0, day=1.0, demand_per_hour=1000.0, sent_share=0.0)
    action, state = policy.predict(obs, state, np.array([False]))
    assert state[0][0, 1] == 0
    assert np.isfinite(action).all()
