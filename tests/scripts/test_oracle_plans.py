"""scripts/oracle_plans.py: candidate plans scored against the oracle's own set."""

import numpy as np
import pytest

from ipwarmup.agents.registry import make_policy
from ipwarmup.envs import build_config
from ipwarmup.training.evaluate import load_suite, run_scenario


@pytest.fixture(scope="module")
def plans(load_script):
    return load_script("oracle_plans")


def test_compare_counts_the_argmax_and_where_a_candidate_beats_the_set(plans):
    shared = np.array([0.5, 0.5, 0.5])
    own = {"shared": shared, "a": np.array([0.6, 0.4, 0.5]), "b": np.array([0.55, 0.7, 0.5])}
    tried = {"c": np.array([0.7, 0.6, 0.5]), "d": np.array([0.1, 0.1, 0.1])}
    rows = {name: rest for name, *rest in plans.compare(own, tried, shared)}
    # Best of the set per seed: 0.6, 0.7, 0.5 -> lead (0.1 + 0.2 + 0) / 3.
    assert rows["the oracle's set"][0] == pytest.approx(0.1)
    # The tie on seed 2 goes to the earlier plan (shared), as in the oracle.
    assert [rows[n][2] for n in ("shared", "a", "b")] == [1, 1, 1]
    assert rows["a"][0] == pytest.approx(0.0)  # +0.1 and -0.1
    assert rows["b"][0] == pytest.approx(0.25 / 3)
    assert np.isnan(rows["a"][1])
    # c beats the set on seed 0 only (0.7 > 0.6; 0.6 < 0.7; a tie is not a win).
    assert rows["c"][0] == pytest.approx(0.1)
    assert rows["c"][1] == pytest.approx((0.2 + 0.2 + 0.0) / 3)
    assert rows["c"][2] == 1
    assert rows["d"][1] == pytest.approx(0.1)
    assert rows["d"][2] == 0


def test_a_switch_moves_toward_the_second_pool_from_its_day(plans):
    plan = plans.switch(0.0, 2.0, 7)
    assert [plan(day)[0] for day in (0, 6, 7, 30)] == [0.0, 0.0, 2.0, 2.0]
    assert plan(0)[1:] == (0.99, False)


def test_the_best_of_the_oracles_set_is_what_the_oracle_scores(plans):
    # The script replays what the oracle foresees: its best plan per seed is the oracle's
    # own episode, so the leads it prints are the oracle's.
    entry = next(e for e in load_suite("test").entries if e.name == "early_spike_queue_mta")
    config = build_config(scenario=entry.scenario, overrides=list(entry.overrides))
    own = {
        name: plans.score(config, plan, seeds=4, seed=0)
        for name, plan in plans.oracle_set(config.pool.max_ips).items()
    }
    assert len(own) == 16
    oracle = run_scenario(make_policy("oracle", config), config, 4, 0)
    best = np.max(np.stack(list(own.values())), axis=0)
    # Only the oracle's float32 actions (predict's dtype) part them, in the 10th digit.
    np.testing.assert_allclose(best, oracle.kpis["total_inbox_share"], rtol=1e-8)


def test_an_unknown_scenario_names_the_suites_entries(plans, capsys):
    with pytest.raises(SystemExit, match="early_spike_queue_mta"):
        plans.main(["--suite", "test", "--scenario", "nope", "--seeds", "2"])


def test_main_prints_every_plan_with_the_sets_argmax_and_the_candidates(plans, capsys):
    # A suite entry with overrides of its own (volume and weekly shape), from seed 1.
    plans.main(["--suite", "test", "--scenario", "small_b2b_3k", "--seeds", "2", "--seed", "1"])
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "small_b2b_3k, 2 seeds from 1: total_inbox_share lead over shared"
    rows = [line.strip("|").split(" | ") for line in lines[3:]]
    table = {name.strip(): (alone, with_it, int(taken)) for name, alone, with_it, taken in rows}
    own = plans.oracle_set(8)
    tried = plans.candidates(8)
    assert len(rows) == 1 + len(own) + len(tried) == 1 + 16 + 22
    assert set(table) == {"the oracle's set", *own, *tried}
    best = table["the oracle's set"][0]
    assert table["the oracle's set"][2] == 2
    assert sum(table[name][2] for name in own) == 2  # the argmax takes one plan per seed
    assert table["0 IPs at 0.99"][:2] == ("+0.0000", "-")
    for name in tried:
        _, with_it, taken = table[name]
        # A candidate lifts the set only where it beats it, never lowers it.
        assert float(with_it) >= float(best)
        if taken == 0:
            assert with_it == best
    # The figures are the entry's own sender on the seeds asked for.
    entry = next(e for e in load_suite("test").entries if e.name == "small_b2b_3k")
    config = build_config(scenario=entry.scenario, overrides=list(entry.overrides))
    one = plans.score(config, plans.constant(1.0, 0.99, False), seeds=2, seed=1)
    shared = plans.score(config, plans.constant(0.0, 0.99, False), seeds=2, seed=1)
    assert table["1 IPs at 0.99"][0] == f"{(one - shared).mean():+.4f}"


def test_the_candidates_are_the_readmes_families(plans):
    tried = plans.candidates(8)
    # The families the README names, each at the values it gives.
    late = [f"shared until day {d}, then 2 IPs" for d in (7, 14, 21)]
    grow = [f"{n} IPs, {n + 1} from day {d}" for n in (1, 2, 3) for d in (5, 9, 19)]
    head = [
        f"{n} IPs at {h} of the allowance"
        for n in (2, 4)
        for h in ("0.8", "0.95", "1", "1.1", "1.2")
    ]
    assert list(tried) == late + grow + head
    assert tried["shared until day 14, then 2 IPs"](13) == (0.0, 0.99, False)
    assert tried["shared until day 14, then 2 IPs"](14) == (2.0, 0.99, False)
    assert tried["2 IPs, 3 from day 9"](9)[0] == 3.0
    assert tried["4 IPs at 1.1 of the allowance"](0) == (4, 1.1, False)
    # Two IPs at most: the late starts, 1 IP growing to 2, and 2 IPs at each headroom.
    assert len(plans.candidates(2)) == 3 + 3 + 5


def test_a_plans_day_counts_whole_days_at_any_decision_interval(plans):
    config = build_config(scenario="low_volume", overrides=["decision_interval_hours=6"])
    asked = []

    def plan(day):
        asked.append(day)
        return (0.0, 0.99, False)

    plans.score(config, plan, seeds=2, seed=0)
    assert asked == [day for day in range(config.horizon_days) for _ in range(4)]
