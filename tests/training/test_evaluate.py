import dataclasses
import json

import numpy as np
import pytest
from gymnasium.utils import seeding
from stable_baselines3.common.evaluation import evaluate_policy

from ipwarmup.agents.registry import BASELINES, CEILING, REFERENCE, make_policy
from ipwarmup.cli import main
from ipwarmup.envs import build_config, make_vec_env
from ipwarmup.envs.simulator import Simulator
from ipwarmup.errors import ConfigError
from ipwarmup.training.evaluate import (
    GAP_KPIS,
    SuiteEntry,
    evaluate,
    load_suite,
    report,
    run_scenario,
)
from ipwarmup.training.kpis import kpi_names


@pytest.fixture(scope="module")
def validation_run():
    return evaluate(list(BASELINES), load_suite("validation"), seeds=8, seed=100)


def test_no_baseline_beats_the_oracle_on_inbox_share(validation_run):
    data = report(validation_run)
    oracle = data["overall"]["oracle"]["inbox_share"]["mean"]
    for name in BASELINES:
        assert data["overall"][name]["inbox_share"]["mean"] <= oracle, name
    # The oracle is a ceiling, not a tie with everything: it clears the reference.
    assert data["versus"]["oracle"]["inbox_share"]["ci_low"] > 0


def test_report_holds_every_policy_scenario_and_kpi(validation_run):
    data = report(validation_run)
    scenarios = [e.name for e in load_suite("validation").entries]
    assert data["scenarios"] == scenarios
    for name in BASELINES:
        for scenario in scenarios:
            for kpi in kpi_names():
                entry = data["results"][name][scenario][kpi]
                assert set(entry) == {"mean", "ci_low", "ci_high", "iqm"}
                assert entry["ci_low"] <= entry["mean"] + 1e-12
                assert entry["mean"] <= entry["ci_high"] + 1e-12
        assert set(data["overall"][name]) == set(kpi_names())
        assert "prob_improvement" in data["versus"][name]["inbox_share"]
    reference = data["versus"][REFERENCE]["inbox_share"]
    assert reference["mean"] == 0.0 and reference["prob_improvement"] == 0.5
    json.dumps(data)  # serialisable as is


def test_gap_closed_recomputes_from_the_per_seed_values(validation_run):
    from ipwarmup.training.stats import gap_closed

    data = report(validation_run, bootstrap_seed=7)
    assert data["ceiling"] == CEILING and GAP_KPIS == ("objective", "total_inbox_share")
    assert set(data["gap_closed"]) == set(BASELINES) - {REFERENCE, CEILING}

    def seeds(policy, kpi):
        return np.array([data["per_seed"][policy][s][kpi] for s in data["scenarios"]])

    for kpi in GAP_KPIS:
        ours, low, high = (seeds(p, kpi) for p in ("aimd", REFERENCE, CEILING))
        entry = data["gap_closed"]["aimd"][kpi]
        want = (ours - low).mean() / (high - low).mean()
        assert entry["overall"]["mean"] == pytest.approx(want)
        assert entry["overall"]["ci_low"] < want < entry["overall"]["ci_high"]
        for i, scenario in enumerate(data["scenarios"]):
            again = gap_closed(ours[i], low[i], high[i], np.random.default_rng(0))
            got = entry["scenarios"][scenario]
            assert got["gap"] == pytest.approx(again["gap"])
            assert (got["mean"] is None) == (again["mean"] is None), scenario
    # low_volume: the oracle stays shared, as fixed-sendgrid's pool can hardly start:
    # no gap to close; hold-shared closes all of poor_list_quality's (both stay shared).
    assert data["gap_closed"]["aimd"]["objective"]["scenarios"]["low_volume"]["mean"] is None
    poor = data["gap_closed"]["hold-shared"]["objective"]["scenarios"]["poor_list_quality"]
    assert poor["mean"] == pytest.approx(1.0)
    json.dumps(data)
    from ipwarmup.training.report import format_tables

    text = format_tables(data)
    assert "share of the gap from fixed-sendgrid (0) to oracle (1) closed" in text
    assert "objective gap closed by scenario" in text


@pytest.mark.parametrize("hours", [24, 6])
def test_the_objective_is_the_envs_return_per_message_of_demand(hours):
    # The same seed through the gymnasium env: its summed rewards times V (the day's mean
    # volume over the periods in a day) over the demand, horizon and continuation, are the
    # evaluation's objective for that seed.
    import gymnasium as gym

    config = build_config(
        scenario="seasonal_spike",
        overrides=["horizon_days=10", f"decision_interval_hours={hours}"],
    )
    episodes = run_scenario(make_policy("aimd", config), config, 2, 40)
    env = gym.make("ipwarmup/IPWarmup-v0", config=config)
    policy = make_policy("aimd", config)
    for row in range(2):
        obs, _ = env.reset(seed=40 + row)
        from ipwarmup.agents.base import attach

        attach(policy, env.unwrapped.simulator)
        total, state, start, done = 0.0, None, np.ones(1, dtype=bool), False
        while not done:
            action, state = policy.predict(obs[None], state, start)
            obs, reward, terminated, truncated, info = env.step(action[0])
            total += reward
            start, done = np.zeros(1, dtype=bool), terminated or truncated
        c = info["continuation"]
        demand = info["accounting"]["demand"] + c["demand"]
        volume = episodes.record.messages_per_period[row]
        daily = env.unwrapped.simulator.state.sender.daily_volume[0]
        assert volume == pytest.approx(daily * hours / 24)
        assert episodes.record.returns[row] == pytest.approx(total, rel=1e-12)
        assert episodes.kpis["objective"][row] == pytest.approx(total * volume / demand)
        assert 0.3 < episodes.kpis["objective"][row] < 1.0


def test_paired_seeds_meet_identical_worlds_whatever_the_policy():
    config = build_config(scenario="bursty_b2c_marketing")
    sims = []
    for actions in (np.zeros(6), np.array([1.0, -1.0, 1.0, -1.0, 1.0, 1.0])):
        sim = Simulator(config, 4)
        sim.reset(np.arange(4), [seeding.np_random(50 + i)[0] for i in range(4)])
        demand, incidents = [], []
        for _ in range(20):
            sim.step(np.tile(actions, (4, 1)))
            demand.append(sim.state.demand_today.copy())
            incidents.append(sim.state.incident_severity.copy())
        sims.append((sim, np.array(demand), np.array(incidents)))
    (a, demand_a, incident_a), (b, demand_b, incident_b) = sims
    np.testing.assert_array_equal(demand_a, demand_b)
    np.testing.assert_array_equal(incident_a, incident_b)
    for name, value in vars(a.state.draw).items():
        np.testing.assert_array_equal(value, getattr(b.state.draw, name), err_msg=name)
    assert not np.array_equal(a.state.caps, b.state.caps)  # the policies did act differently


def test_run_scenario_pairs_policies_on_the_same_demand():
    config = build_config(scenario="seasonal_spike", overrides=["horizon_days=10"])
    one = run_scenario(make_policy("aimd", config), config, 3, 7)
    two = run_scenario(make_policy("hold-shared", config), config, 3, 7)
    np.testing.assert_array_equal(one.record.daily["demand"], two.record.daily["demand"])
    assert not np.array_equal(one.kpis["dedicated_share"], two.kpis["dedicated_share"])


def test_sb3_evaluate_policy_accepts_a_baseline():
    env = make_vec_env(scenario="steady_b2c_transactional", n_envs=2, seed=3)
    policy = make_policy("fixed-sendgrid", env.config)
    mean, _std = evaluate_policy(policy, env, n_eval_episodes=2, warn=False)
    assert np.isfinite(mean) and mean > 0


def test_load_suite_rejects_bad_entries(tmp_path):
    path = tmp_path / "suite.yaml"
    path.write_text("scenarios:\n  - scenario: low_volume\n    overide: [x]\n  - 3\n")
    with pytest.raises(ConfigError) as error:
        load_suite(path)
    text = str(error.value)
    assert "suite.scenarios[0]: unknown keys ['overide']" in text
    assert "suite.scenarios[1]: expected a mapping with a 'scenario' name, got 3" in text
    with pytest.raises(ConfigError, match="unknown suite 'validaton'"):
        load_suite("validaton")


def test_shipped_suites_load_and_build(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # scenario paths resolve against the suite, not the cwd
    for name in ("validation", "test"):
        suite = load_suite(name)
        for entry in suite.entries:
            build_config(scenario=entry.scenario, overrides=entry.overrides)
    names = {e.name for e in load_suite("test").entries}
    assert not names & {e.name for e in load_suite("validation").entries}


def test_cli_evaluate_writes_json_and_plots(tmp_path, capsys):
    out = tmp_path / "report.json"
    code = main(
        [
            "evaluate",
            "--policy", "aimd",
            "--policy", "oracle",
            "--suite", "validation",
            "--seeds", "2",
            "--set", "horizon_days=5",
            "--json", str(out),
            "--plots", str(tmp_path / "plots"),
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    tables = [line for line in printed.splitlines() if not line.startswith(("report:", "plots:"))]
    assert all(len(line) <= 100 for line in tables)
    data = json.loads(out.read_text())
    assert set(data["overall"]) == {"aimd", "oracle", REFERENCE}
    for png in (tmp_path / "plots").glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list((tmp_path / "plots").glob("*.png"))) == 2


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--policy", "aimdd"], "did you mean 'aimd'"),
        (["--policy", "aimd", "--seeds", "1"], "--seeds: expected at least 2 seeds"),
        (["--policy", "aimd", "--suite", "nope"], "unknown suite 'nope'"),
    ],
)
def test_cli_evaluate_errors_exit_2_with_one_line(argv, message, capsys, tmp_path):
    out = tmp_path / "r.json"
    assert main(["evaluate", *argv, "--json", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_load_suite_takes_a_relative_file_and_names_entries(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.yaml").write_text(
        "scenarios:\n"
        "  - scenario: low_volume\n"
        "  - name: low-queue\n"
        "    scenario: low_volume\n"
        "    overrides: ['mta.overflow=queue']\n"
    )
    suite = load_suite("mine.yaml")  # no folder in the name: still a file, not a shipped suite
    assert suite.name == "mine"  # the file's stem when the suite has no name
    assert suite.entries == (
        SuiteEntry("low_volume", "low_volume", ()),
        SuiteEntry("low-queue", "low_volume", ("mta.overflow=queue",)),
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        suite.name = "other"
    with pytest.raises(dataclasses.FrozenInstanceError):
        suite.entries[0].scenario = "other"


def test_a_suites_scenario_paths_resolve_against_the_suites_folder(tmp_path, monkeypatch):
    suites = tmp_path / "suites"
    (suites / "mine").mkdir(parents=True)
    scenario = suites / "mine" / "queued.yaml"
    scenario.write_text("daily_volume_messages: [5000.0, 6000.0]\nmta: {overflow: queue}\n")
    (suites / "s.yaml").write_text(
        "scenarios:\n  - scenario: mine/queued.yaml\n  - scenario: low_volume\n"
        "  - {name: again, scenario: ../suites/mine/queued.yaml}\n"
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for given in (suites / "s.yaml", "../suites/s.yaml"):
        suite = load_suite(given)
        assert suite.entries == (
            SuiteEntry("queued", str(scenario.resolve()), ()),  # named after the file
            SuiteEntry("low_volume", "low_volume", ()),  # a shipped name stays a name
            SuiteEntry("again", str(scenario.resolve()), ()),
        )
    config = build_config(scenario=suite.entries[0].scenario)
    assert config.mta.overflow == "queue"
    assert config.scenario.daily_volume_messages == (5000.0, 6000.0)
    (suites / "bad.yaml").write_text("scenarios:\n  - scenario: mine/missing.yaml\n")
    with pytest.raises(ConfigError) as error:
        load_suite(suites / "bad.yaml")
    assert error.value.problems == [
        f"{suites / 'bad.yaml'}: suite.scenarios[0].scenario: expected a scenario file, "
        "relative to the suite's folder, got 'mine/missing.yaml' "
        f"(no file {suites.resolve() / 'mine/missing.yaml'})"
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: x\n", "suite.scenarios: expected a non-empty list, got None"),
        ("scenarios: []\n", "suite.scenarios: expected a non-empty list, got []"),
        (
            "scenarios:\n  - scenario: low_volume\n    overrides: mta.overflow=queue\n",
            "suite.scenarios[0].overrides: expected a list of 'key=value' strings",
        ),
        (
            "scenarios:\n  - scenario: low_volume\n    overrides: [3]\n",
            "suite.scenarios[0].overrides: expected a list of 'key=value' strings",
        ),
        # Not a sequence at all (a number, or an empty value): named like the others.
        (
            "scenarios:\n  - scenario: low_volume\n    overrides: 3\n",
            "suite.scenarios[0].overrides: expected a list of 'key=value' strings",
        ),
        (
            "scenarios:\n  - scenario: low_volume\n    overrides:\n",
            "suite.scenarios[0].overrides: expected a list of 'key=value' strings",
        ),
        (
            "scenarios:\n  - scenario: low_volume\n  - scenario: low_volume\n",
            "suite.scenarios: names must be unique, got ['low_volume', 'low_volume']",
        ),
    ],
)
def test_load_suite_names_each_problem(tmp_path, text, message):
    path = tmp_path / "suite.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_suite(path)
    assert f"{path}: {message}" in str(error.value)


def test_the_evaluation_fingerprint_reads_what_decides_a_baselines_numbers(tmp_path):
    from ipwarmup.training.evaluate import suite_inputs
    from ipwarmup.training.provenance import evaluation_files, evaluation_fingerprint

    names = {f"{p.parent.name}/{p.name}" for p in evaluation_files()}
    for read in ("envs/simulator.py", "agents/oracle.py", "core/observation.py",
                 "suites/validation.yaml", "scenarios/low_volume.yaml", "training/kpis.py",
                 "training/evaluate.py", "training/stats.py"):  # fmt: skip
        assert read in names, read
    for unread in ("serving/policy.py", "training/train.py", "experiments/ppo.yaml",
                   "algorithms/ppo.yaml", "mta/control.py"):  # fmt: skip
        assert unread not in names, unread

    validation = evaluation_fingerprint(suite_inputs(load_suite("validation")))
    assert validation == evaluation_fingerprint(suite_inputs(load_suite("validation")))
    assert len(validation) == 16 and int(validation, 16) >= 0
    assert validation != evaluation_fingerprint(suite_inputs(load_suite("test")))
    # A suite's own scenario file counts by its content, not its name.
    scenario = tmp_path / "mine.yaml"
    scenario.write_text("daily_volume_messages: [1000.0, 2000.0]\n")
    (tmp_path / "suite.yaml").write_text("name: mine\nscenarios:\n  - scenario: mine.yaml\n")
    before = evaluation_fingerprint(suite_inputs(load_suite(tmp_path / "suite.yaml")))
    scenario.write_text("daily_volume_messages: [1000.0, 3000.0]\n")
    after = evaluation_fingerprint(suite_inputs(load_suite(tmp_path / "suite.yaml")))
    assert before != after


def test_the_fingerprint_reads_every_file_by_name_and_content(tmp_path, monkeypatch):
    from ipwarmup.training import provenance

    one, two = tmp_path / "a" / "x.py", tmp_path / "b" / "x.py"
    for path in (one, two):
        path.parent.mkdir()
        path.write_text("A = 1\n")
    monkeypatch.setattr(provenance, "evaluation_files", lambda: [one])
    base = provenance.evaluation_fingerprint([])
    one.write_text("A = 2\n")  # the content counts
    assert provenance.evaluation_fingerprint([]) != base
    one.write_text("A = 1\n")
    assert provenance.evaluation_fingerprint([]) == base
    monkeypatch.setattr(provenance, "evaluation_files", lambda: [two])  # so does the folder
    assert provenance.evaluation_fingerprint([]) != base
    monkeypatch.setattr(provenance, "evaluation_files", lambda: [one, two])  # and every file
    assert provenance.evaluation_fingerprint([]) != base
    # Inputs are separated: one text "ab" is not the two texts "a" and "b".
    assert provenance.evaluation_fingerprint(["ab"]) != provenance.evaluation_fingerprint(
        ["a", "b"]
    )
