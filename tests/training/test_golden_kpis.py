"""Every KPI of training/evaluate.py pinned to values computed by hand (issue 15, item 1).

The golden sender (golden_kpis.yaml) sends its whole day at midnight: 2400 on day 0,
then a quarter of the day before (600, 150, 37.5) over a 4-day horizon. One provider,
"solo", accepts exactly 100 an hour per IP (cold = full-trust allowance, so it never grows),
never blocks (escalation far away) and places 90% of delivered mail in the inbox whatever
the reputation (placement sensitivity 0). The pool is one IP with a 150/h cap that the
`hold` policy never changes. No noise anywhere, so every seed gives the same numbers.

Shared overflow: only hour 0 carries mail. The cap sends min(demand, 150), the provider
accepts min(sent, 100), what the cap held back goes to the shared pool at once and the
deferred 50 at their retry an hour later (the 1-hour retry interval), still the same day,
so each day's figures are what they were when deferrals went to the shared pool at once:

    day  demand  sent  accepted  deferred  shared
    0    2400    150   100       50        2300
    1     600    150   100       50         500
    2     150    150   100       50          50
    3      37.5   37.5  37.5      0           0
    sum  3187.5  487.5 337.5     150       2850

Queue overflow (max age 4 h, a retry every hour): what is not accepted waits and is
retried every hour; a cohort still queued 4 hours after it arrived expires. Day 0: hours
0-4 each send 150 and get 100 accepted (queue 2300, 2200, 2100, 2000), and after hour 4 the
remaining 1900 expire. Day 1 likewise: 500 accepted, 100 expire. Day 2: hour 0 sends 150,
100 accepted, 50 queued; hour 1 sends the 50, all accepted. Day 3: 37.5 sent and accepted.

    day  demand  sent   accepted  deferred  expired
    0    2400    750    500       250       1900
    1     600    750    500       250        100
    2     150    200    150        50          0
    3      37.5   37.5   37.5       0          0
    sum  3187.5  1737.5 1187.5    550       2000

The continuation (issue 8: ``reward.continuation_days``, 30 by default, simulated on a
copy after the horizon) is pinned too. The sender keeps quartering: 9.375 on day 4, then
2.34375, ... 30 days summing to 12.5 x (1 - 4^-30), which is 12.5 in floating point. In
the continuation the caps are the providers' allowances (100/h), so every message goes out
at midnight on the dedicated IP and is accepted, in both overflow modes (the queue is
empty at the horizon), 90% to the inbox: demand 12.5, inbox 11.25.

The issue-8 dynamics leave every horizon figure as it was before main moved: the list is
clean (bounce, complaint and trap rates 0), so the convex list penalty is 0 as the linear
one was; the day's volume (<= 750 sent) stays under the spike reference (the larger of the
7-day average, the previous day and the 2400/day cold floor); solo places 90% whatever the
reputation (placement sensitivity 0), so the shared pool's standing moving with this
sender's share of its volume changes no placement; `hold` never changes the pool, so the
first decision leaving the pool free to change has no effect.
"""

from pathlib import Path

import numpy as np
import pytest
from gymnasium.utils import seeding

from ipwarmup.agents.registry import CEILING, REFERENCE, make_policy
from ipwarmup.envs import build_config
from ipwarmup.envs.simulator import Simulator
from ipwarmup.training.evaluate import Suite, SuiteEntry, evaluate, report, run_scenario
from ipwarmup.training.kpis import get_kpi, kpi_names, kpi_table

SCENARIO = str(Path(__file__).with_name("golden_kpis.yaml"))
HORIZON = 4
WORLD = (
    f"horizon_days={HORIZON}",
    # null drops a default provider: solo is the only one.
    "providers={gmail: null, microsoft: null, yahoo: null, apple: null, other: null, "
    "solo: {cold_hourly_allowance_messages: [100.0, 100.0], "
    "full_trust_hourly_allowance_messages: [100.0, 100.0], "
    # Pressure that barely decays may sit under a threshold no one reaches in 4 days.
    "escalation_threshold: [1.0e+6, 1.0e+6], pressure_decay_per_hour: 0.999999, "
    "acceptance_noise: 0.0, "
    "cold_reputation: [0.5, 0.5], "
    "reputation_volume_messages: [1.0, 1.0], reputation_memory_days: [2.0, 2.0], "
    "base_inbox_rate: 0.9, placement_sensitivity: 0.0}}",
    "pool.initial_ips=1",
    "pool.initial_hourly_cap_messages=150.0",
    "shared_pool.incident_probability_per_day=0.0",
    "mta.max_age_hours=4",
    "mta.retry_interval_hours=1.0",
)
DEMAND = 2400 + 600 + 150 + 37.5  # 3187.5

# Reputation: quality is 0.95 (clean list) minus 0.3 x the day's overshoot / 24, where the
# overshoot adds sent / allowance - 1 over the hours sent above the allowance (0.5 each
# hour at 150/h); the day's volume (<= 500) stays far below the spike floor (24 x 100). With
# a 1-message trust volume and a 2-day memory, r <- (r + quality) / 2 from 0.5, four times.
#   shared: quality 0.94375 (one 0.5 overshoot: 0.95 - 0.3 * 0.5 / 24) on days 0-2, 0.95 on
#           day 3: 0.5 -> 0.721875 -> 0.8328125 -> 0.88828125 -> 0.919140625
#   queue:  quality 0.91875 (five hours: 0.95 - 0.3 * 2.5 / 24) on days 0-1, 0.94375 on
#           day 2, 0.95 on day 3: 0.5 -> 0.709375 -> 0.8140625 -> 0.87890625 -> 0.914453125
# The objective: the return per message of demand (3187.5 + 12.5 = 3200). V is the drawn
# daily volume, 2400 per 24-hour period; the reward's mail is 1.0 x inbox on dedicated +
# 0.9 x inbox on shared - 2.0 x (rejected + expired), over V, less 0.01 per IP-day (4 days
# of the horizon and 30 of the continuation: 0.34). Times V over the demand:
#   shared: (303.75 + 0.9 x 2565 + 11.25 - 0.34 x 2400) / 3200 = 1807.5 / 3200
#   queue:  (1068.75 - 2 x 2000 + 11.25 - 0.34 x 2400) / 3200 = -3736 / 3200
GOLDEN = {
    "shared": {
        "inbox_share": 0.9 * (337.5 + 2850) / DEMAND,  # everything delivered, 90% inbox
        "dedicated_share": 337.5 / DEMAND,  # 9/85 = 0.10588
        "days_to_warm": 4.0,  # accepted >= 95% of demand first on day 3 (37.5 of 37.5)
        "deferral_rate": 150 / 487.5,  # 4/13
        "lost_share": 0.0,
        "block_events": 0.0,
        "ip_days": 4.0,  # one IP for four days
        "final_reputation": 0.919140625,
        # The horizon is 4 days, shorter than the 7-day window: the whole episode.
        "final_dedicated_share": 337.5 / DEMAND,
        "continuation_inbox_share": 11.25 / 12.5,  # 0.9: all accepted, 90% inbox
        "total_inbox_share": (2868.75 + 11.25) / (DEMAND + 12.5),  # 2880/3200 = 0.9
        "objective": 1807.5 / 3200,  # 0.56484375
    },
    "queue": {
        "inbox_share": 0.9 * 1187.5 / DEMAND,  # 0.33529
        "dedicated_share": 1187.5 / DEMAND,  # 19/51 = 0.37255
        "days_to_warm": 3.0,  # day 2: 150 of 150 accepted (the retry in hour 1 counts)
        "deferral_rate": 550 / 1737.5,  # 44/139
        "lost_share": 2000 / DEMAND,  # expired mail is lost: 32/51 = 0.62745
        "block_events": 0.0,
        "ip_days": 4.0,
        "final_reputation": 0.914453125,
        "final_dedicated_share": 1187.5 / DEMAND,  # the whole 4-day horizon again
        "continuation_inbox_share": 11.25 / 12.5,  # 0.9: the queue is empty at the horizon
        "total_inbox_share": (0.9 * 1187.5 + 11.25) / (DEMAND + 12.5),  # 1080/3200 = 0.3375
        "objective": -3736 / 3200,  # -1.1675: expired mail costs twice what it would earn
    },
}


def _config(mode):
    return build_config(scenario=SCENARIO, overrides=[*WORLD, f"mta.overflow={mode}"])


@pytest.mark.parametrize("mode", ["shared", "queue"])
def test_every_kpi_of_the_golden_scenario_matches_the_hand_computation(mode):
    config = _config(mode)
    episodes = run_scenario(make_policy("hold", config), config, 2, 0)
    assert set(episodes.kpis) == set(kpi_names()) == set(GOLDEN[mode])
    for kpi in kpi_names():
        np.testing.assert_allclose(
            episodes.kpis[kpi], [GOLDEN[mode][kpi]] * 2, rtol=1e-9, atol=1e-12, err_msg=kpi
        )
    # The seed-0 trace: accepted and demand per day, one provider.
    accepted = [100.0, 100.0, 100.0, 37.5] if mode == "shared" else [500.0, 500.0, 150.0, 37.5]
    np.testing.assert_allclose(episodes.record.daily["accepted_dedicated"][:, 0, 0], accepted)
    np.testing.assert_allclose(
        episodes.record.daily["demand"][:, 0, 0], [2400.0, 600.0, 150.0, 37.5]
    )


def test_days_to_warm_waits_for_every_provider():
    # Two providers with the mail split evenly: "solo" warms on day 3 as above; "slow"
    # accepts 10 an hour, so it never takes 95% of its half and the pool is never warm.
    slow = (
        "providers.slow={cold_hourly_allowance_messages: [10.0, 10.0], "
        "full_trust_hourly_allowance_messages: [10.0, 10.0], "
        "escalation_threshold: [1.0e+6, 1.0e+6], pressure_decay_per_hour: 0.999999, "
        "acceptance_noise: 0.0}"
    )
    config = build_config(
        scenario=SCENARIO,
        overrides=[*WORLD, slow, "scenario.provider_mix={solo: 0.5, slow: 0.5}"],
    )
    episodes = run_scenario(make_policy("hold", config), config, 2, 0)
    assert list(episodes.kpis["days_to_warm"]) == [HORIZON + 1.0] * 2


def test_kpi_directions_in_the_report():
    expected = {
        "inbox_share": True,
        "dedicated_share": True,
        "days_to_warm": False,
        "deferral_rate": False,
        "lost_share": False,
        "block_events": False,
        "ip_days": False,
        "final_reputation": True,
        "final_dedicated_share": True,
        "continuation_inbox_share": True,
        "total_inbox_share": True,
        "objective": True,
    }
    assert expected == {k.name: k.higher_is_better for k in kpi_table()}
    assert list(kpi_names()) == list(expected)


@pytest.fixture(scope="module")
def golden_report():
    suite = Suite(
        "golden",
        (
            SuiteEntry("shared", SCENARIO, (*WORLD, "mta.overflow=shared")),
            SuiteEntry("queue", SCENARIO, (*WORLD, "mta.overflow=queue")),
        ),
    )
    return report(evaluate(["hold"], suite, seeds=3, seed=5))


def test_report_holds_the_golden_values_with_zero_width_intervals(golden_report):
    data = golden_report
    assert data["kpis"] == list(kpi_names())
    assert data["higher_is_better"] == {k.name: k.higher_is_better for k in kpi_table()}
    assert data["reference"] == REFERENCE and data["seeds"] == 3 and data["seed"] == 5
    for mode in ("shared", "queue"):
        for kpi in kpi_names():
            entry = data["results"]["hold"][mode][kpi]
            for field in ("mean", "ci_low", "ci_high", "iqm"):
                assert entry[field] == pytest.approx(GOLDEN[mode][kpi], abs=1e-9), (mode, kpi)
    for kpi in kpi_names():
        overall = data["overall"]["hold"][kpi]
        # Overall: the mean of the two scenario means.
        mean = (GOLDEN["shared"][kpi] + GOLDEN["queue"][kpi]) / 2
        assert overall["mean"] == pytest.approx(mean, abs=1e-9), kpi
        assert overall["ci_low"] == pytest.approx(mean, abs=1e-9), kpi
        assert overall["ci_high"] == pytest.approx(mean, abs=1e-9), kpi


def test_versus_is_the_paired_difference_in_the_better_direction(golden_report):
    data = golden_report
    for kpi in kpi_names():
        ours = data["overall"]["hold"][kpi]["mean"]
        theirs = data["overall"][REFERENCE][kpi]["mean"]
        versus = data["versus"]["hold"][kpi]
        assert versus["mean"] == pytest.approx(ours - theirs, abs=1e-9), kpi
        assert versus["ci_low"] <= versus["mean"] + 1e-12 <= versus["ci_high"] + 2e-12
        per_scenario = [
            (data["results"]["hold"][s][kpi]["mean"], data["results"][REFERENCE][s][kpi]["mean"])
            for s in ("shared", "queue")
        ]
        # Each scenario is deterministic: every seed of it wins, ties or loses alike.
        wins = []
        for a, b in per_scenario:
            if abs(a - b) < 1e-12:
                wins.append(0.5)
            else:
                wins.append(float((a > b) == get_kpi(kpi).higher_is_better))
        assert versus["prob_improvement"] == pytest.approx(sum(wins) / 2), kpi


def test_each_seed_row_is_seeded_seed_plus_its_index():
    config = build_config(scenario="bursty_b2c_marketing", overrides=["horizon_days=3"])
    policy = make_policy("hold", config)
    batch = run_scenario(policy, config, 3, 40)
    assert len(set(batch.kpis["inbox_share"])) == 3  # different worlds per row
    single = run_scenario(make_policy("hold", config), config, 1, 42)
    for kpi in kpi_names():
        assert batch.kpis[kpi][2] == pytest.approx(single.kpis[kpi][0], rel=1e-12), kpi


@pytest.fixture(scope="module")
def noisy_evaluation():
    # Three days of two random scenarios: cheap, and every seed differs.
    suite = Suite(
        "noisy",
        (
            SuiteEntry("bursty", "bursty_b2c_marketing", ("horizon_days=3",)),
            SuiteEntry("small", "low_volume", ("horizon_days=3", "pool.initial_ips=2")),
        ),
    )
    return evaluate(["aimd"], suite, seeds=4)


def test_evaluate_starts_at_seed_0_and_pairs_rows_with_run_scenario(noisy_evaluation):
    result = noisy_evaluation
    assert result.seed == 0 and result.policies == ["aimd", REFERENCE, CEILING]
    config = result.configs["bursty"]
    direct = run_scenario(make_policy("aimd", config), config, 4, 0)
    for kpi in kpi_names():
        np.testing.assert_allclose(result.scores["aimd"]["bursty"][kpi], direct.kpis[kpi])
    np.testing.assert_allclose(result.matrix("aimd", "inbox_share")[1],
                               result.scores["aimd"]["small"]["inbox_share"])  # fmt: skip


def test_report_resamples_with_the_given_bootstrap_seed(noisy_evaluation):
    default = report(noisy_evaluation)
    assert default == report(noisy_evaluation, bootstrap_seed=0)
    other = report(noisy_evaluation, bootstrap_seed=1)
    entry = default["overall"]["aimd"]["inbox_share"]
    moved = other["overall"]["aimd"]["inbox_share"]
    assert entry["mean"] == moved["mean"]
    assert (entry["ci_low"], entry["ci_high"]) != (moved["ci_low"], moved["ci_high"])
    assert entry["ci_low"] < entry["mean"] < entry["ci_high"]  # four different seeds


def test_the_trace_is_seed_0s():
    config = build_config(scenario="bursty_b2c_marketing", overrides=["horizon_days=3"])
    batch = run_scenario(make_policy("aimd", config), config, 3, 40)
    first = run_scenario(make_policy("aimd", config), config, 1, 40)
    second = run_scenario(make_policy("aimd", config), config, 1, 41)
    np.testing.assert_allclose(
        batch.record.daily["demand"][:, 0], first.record.daily["demand"][:, 0]
    )
    np.testing.assert_allclose(
        batch.record.daily["accepted_dedicated"][:, 0],
        first.record.daily["accepted_dedicated"][:, 0],
    )
    assert not np.allclose(batch.record.daily["demand"][:, 0], second.record.daily["demand"][:, 0])


def _golden_world(allowance):
    return [item.replace("[100.0, 100.0]", f"[{allowance}, {allowance}]") for item in WORLD]


@pytest.mark.parametrize(("allowance", "days_to_warm"), [(95.0, 1.0), (94.9, 3.0)])
def test_a_day_is_warm_from_exactly_95_percent_accepted(allowance, days_to_warm):
    # 100 a day, all at midnight, and a provider that takes `allowance` of them: 95 of 100
    # is exactly the line (95.0 == 0.95 * 100 in floating point too); 94.9 stays below.
    config = build_config(
        scenario=SCENARIO,
        overrides=[*_golden_world(allowance), "horizon_days=2",
                   "scenario.growth_per_day=[1.0, 1.0]",
                   "scenario.daily_volume_messages=[100.0, 100.0]"],
    )  # fmt: skip
    episodes = run_scenario(make_policy("hold", config), config, 2, 0)
    assert list(episodes.kpis["days_to_warm"]) == [days_to_warm] * 2
    np.testing.assert_allclose(episodes.kpis["dedicated_share"], allowance / 100)


def test_an_episode_without_demand_scores_zeros_not_nan():
    # Mail only on Mondays and a one-day horizon: rows that start on another weekday see
    # no demand at all. Their shares are 0 (not 0/0) and their only day counts as warm.
    config = build_config(
        scenario=SCENARIO,
        overrides=[
            *WORLD,
            "horizon_days=1",
            "scenario.weekly_shape=[1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]",
        ],
    )
    episodes = run_scenario(make_policy("hold", config), config, 16, 0)
    idle = episodes.kpis["dedicated_share"] == 0.0
    assert 0 < idle.sum() < 16  # both kinds of rows are there (a seventh start on Monday)
    for kpi in ("inbox_share", "dedicated_share", "deferral_rate", "lost_share"):
        np.testing.assert_array_equal(episodes.kpis[kpi][idle], 0.0, err_msg=kpi)
    np.testing.assert_array_equal(episodes.kpis["days_to_warm"][idle], 1.0)
    # A Monday start: the week's weights average 1, so Monday carries 7 x 2400 = 16,800,
    # all at midnight, of which the one IP's 100 are accepted.
    np.testing.assert_allclose(episodes.kpis["dedicated_share"][~idle], 100 / 16_800)
    np.testing.assert_array_equal(episodes.kpis["days_to_warm"][~idle], 2.0)  # never warm


def test_a_sender_of_one_and_a_half_messages_is_scored_over_its_demand():
    # Shares divide by the demand (at least one message): 1.5 sent, accepted, 90% inbox.
    config = build_config(
        scenario=SCENARIO,
        overrides=[*WORLD, "horizon_days=1", "scenario.daily_volume_messages=[1.5, 1.5]"],
    )
    episodes = run_scenario(make_policy("hold", config), config, 2, 0)
    np.testing.assert_allclose(episodes.kpis["inbox_share"], 0.9)
    np.testing.assert_allclose(episodes.kpis["dedicated_share"], 1.0)


def test_a_provider_with_less_than_a_message_a_day_still_has_to_be_warm():
    # 100 a day: solo gets 99.5 and takes them all; "tiny" gets 0.5 a day but accepts 0.1
    # an hour, 20% of its mail: the pool is never warm, however small tiny's demand.
    tiny = (
        "providers.tiny={cold_hourly_allowance_messages: [0.1, 0.1], "
        "full_trust_hourly_allowance_messages: [0.1, 0.1], "
        "escalation_threshold: [1.0e+6, 1.0e+6], pressure_decay_per_hour: 0.999999, "
        "acceptance_noise: 0.0}"
    )
    config = build_config(
        scenario=SCENARIO,
        overrides=[*WORLD, tiny, "horizon_days=2", "scenario.growth_per_day=[1.0, 1.0]",
         "scenario.daily_volume_messages=[100.0, 100.0]",
         "scenario.provider_mix={solo: 0.995, tiny: 0.005}"],
    )  # fmt: skip
    episodes = run_scenario(make_policy("hold", config), config, 2, 0)
    np.testing.assert_allclose(
        episodes.record.daily["accepted_dedicated"][:, 0], [[99.5, 0.1], [99.5, 0.1]]
    )
    assert list(episodes.kpis["days_to_warm"]) == [3.0, 3.0]


class _Recorder:
    """A policy that holds everything and records what run_scenario hands it."""

    def __init__(self):
        self.calls = []

    def predict(self, observation, state=None, episode_start=None, deterministic=True):
        self.calls.append((observation.copy(), episode_start.copy()))
        return np.zeros((observation.shape[0], 2), dtype=np.float32), state


def test_run_scenario_hands_the_policy_each_new_observation_as_sb3_does():
    config = _config("queue")
    recorder = _Recorder()
    run_scenario(recorder, config, 2, 0)
    assert len(recorder.calls) == config.steps_per_episode
    starts = [start for _, start in recorder.calls]
    assert all(s.dtype == bool for s in starts)
    assert starts[0].all() and not any(s.any() for s in starts[1:])
    # The observations are the simulator's, step after step (hold: zero actions).
    sim = Simulator(config, 2)
    expected = sim.reset(np.arange(2), [seeding.np_random(i)[0] for i in range(2)])
    for observation, _ in recorder.calls:
        np.testing.assert_array_equal(observation, expected)
        expected = sim.step(np.zeros((2, 2))).observation


def test_deferrals_of_less_than_a_message_are_still_a_rate():
    # 0.8 messages in the whole episode, 0.5 accepted: 0.3 of 0.8 sent were deferred.
    config = build_config(
        scenario=SCENARIO,
        overrides=[
            *_golden_world(0.5),
            "horizon_days=1",
            "scenario.daily_volume_messages=[0.8, 0.8]",
        ],
    )
    episodes = run_scenario(make_policy("hold", config), config, 2, 0)
    np.testing.assert_allclose(episodes.kpis["deferral_rate"], 0.3 / 0.8)
    # Shares are taken over at least one message: 0.5 accepted of max(0.8, 1).
    np.testing.assert_allclose(episodes.kpis["dedicated_share"], 0.5)
