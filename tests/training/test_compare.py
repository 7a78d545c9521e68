"""Baseline runs and learned runs compared from a real SQLite MLflow store."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ipwarmup.errors import ConfigError
from ipwarmup.training import kpis
from ipwarmup.training.compare import (
    WIDTH,
    compare_json,
    compare_runs,
    evaluations,
    format_comparison,
    plot_comparison,
    run_compare,
)
from ipwarmup.training.kpis import Kpi, kpi_names
from ipwarmup.training.run_logging import log_baseline_runs, log_evaluation
from ipwarmup.training.tracking import Tracker

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LONG_NAME = "a-learned-policy-with-a-very-long-run-name-that-cannot-fit-in-the-table-20250101"


def _report(inbox: dict[str, float]) -> dict[str, Any]:
    """Return an evaluate-style report whose KPIs derive from each policy's inbox share."""

    def entry(mean: float) -> dict[str, float]:
        return {"mean": mean, "ci_low": mean - 0.02, "ci_high": mean + 0.03, "iqm": mean}

    overall = {
        policy: {kpi: entry(share if kpi != "lost_share" else 1.0 - share) for kpi in kpi_names()}
        for policy, share in inbox.items()
    }
    reference = next(iter(inbox))
    versus = {
        policy: {
            kpi: {**entry(share - inbox[reference]), "prob_improvement": 0.5} for kpi in kpi_names()
        }
        for policy, share in inbox.items()
    }
    return {
        "suite": "validation",
        "seeds": 8,
        "seed": 0,
        "reference": reference,
        "kpis": list(kpi_names()),
        "overall": overall,
        "versus": versus,
    }


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite store with MLflow's tables: making them takes seconds, copying it does not."""
    folder = tmp_path_factory.mktemp("empty-store")
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MLFLOW_TRACKING_URI", raising=False)
        Tracker(f"sqlite:///{folder}/mlflow.db", "template")
    return folder / "mlflow.db"


@pytest.fixture
def tracker(
    empty_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Tracker]:
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)  # Tracker sets it; undo afterwards
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    yield Tracker(f"sqlite:///{tmp_path}/mlflow.db", "compare")


def _learned(
    tracker: Tracker,
    name: str,
    share: float,
    *,
    status_error: bool = False,
    seeds: str | None = "8",
    eval_seed: str = "0",
) -> str:
    tags = {
        "ipwarmup.policy": name,
        "ipwarmup.policy_kind": "learned",
        "ipwarmup.suite": "validation",
    }
    if seeds is not None:  # as a final evaluation tags its run
        tags.update({"ipwarmup.seeds": seeds, "ipwarmup.eval_seed": eval_seed})
    data = _report({"fixed-sendgrid": 0.5, "learned": share})
    if status_error:
        with pytest.raises(RuntimeError), tracker.start(name, tags=tags) as run:
            log_evaluation(run, data, policy="learned", step=100, prefix="kpi/")
            raise RuntimeError("crashed after its evaluation")
        return run.run_id
    with tracker.start(name, tags=tags) as run:
        log_evaluation(run, data, policy="learned", step=100, prefix="kpi/")
    return run.run_id


def test_log_evaluation_writes_means_intervals_and_paired_differences(tracker: Tracker) -> None:
    data = _report({"fixed-sendgrid": 0.5, "ppo": 0.8})
    with tracker.start("eval") as run:
        log_evaluation(run, data, policy="ppo", step=2048)
        with pytest.raises(ConfigError, match="no policy 'nope'"):
            log_evaluation(run, data, policy="nope", step=0)
    metrics = tracker.get_run(run.run_id)["metrics"]
    assert metrics["eval/inbox_share"] == pytest.approx(0.8)
    assert metrics["eval/inbox_share/ci_low"] == pytest.approx(0.78)
    assert metrics["eval/lost_share/ci_high"] == pytest.approx(0.23)
    assert metrics["eval/inbox_share/iqm"] == pytest.approx(0.8)
    assert metrics["eval/versus/inbox_share"] == pytest.approx(0.3)
    assert metrics["eval/versus/inbox_share/prob_improvement"] == 0.5
    assert len(metrics) == len(kpi_names()) * 4 * 2
    assert tracker.metric_history(run.run_id, "eval/ip_days") == [(2048, pytest.approx(0.8))]


def test_baseline_runs_are_tagged_and_ranked_newest_per_policy_winning(
    tracker: Tracker, tmp_path: Path
) -> None:
    first = log_baseline_runs(
        tracker,
        _report({"fixed-sendgrid": 0.5, "aimd": 0.9, "hold": 0.7}),
        suite="validation",
        tags={"ipwarmup.seeds": "8"},
    )
    got = tracker.get_run(first[1])
    assert got["run_name"] == "aimd@validation" and got["status"] == "FINISHED"
    assert got["tags"]["ipwarmup.policy"] == "aimd"
    assert got["tags"]["ipwarmup.policy_kind"] == "baseline"
    assert got["tags"]["ipwarmup.suite"] == "validation"
    assert got["tags"]["ipwarmup.seeds"] == "8"
    assert got["metrics"]["kpi/inbox_share"] == pytest.approx(0.9)
    assert got["params"]["evaluation.seeds"] == "8"
    rows = compare_runs(tracker, suite="validation")
    assert [r["policy"] for r in rows] == ["aimd", "hold", "fixed-sendgrid"]
    by_lost = compare_runs(tracker, suite="validation", kpi="lost_share")  # lower is better
    assert [r["policy"] for r in by_lost] == ["aimd", "hold", "fixed-sendgrid"]

    # Logged again with hold now best: the newer runs win, the old ones stay in the store.
    second = log_baseline_runs(
        tracker, _report({"fixed-sendgrid": 0.5, "aimd": 0.6, "hold": 0.95}), suite="validation"
    )
    log_baseline_runs(tracker, _report({"fixed-sendgrid": 0.99}), suite="test")  # other suite
    learned = _learned(tracker, LONG_NAME, 0.8)
    _learned(tracker, LONG_NAME, 0.99, status_error=True)  # newer but FAILED: ignored
    rows = compare_runs(tracker, suite="validation")
    assert [r["name"] for r in rows] == [
        "hold@validation",
        LONG_NAME,
        "aimd@validation",
        "fixed-sendgrid@validation",
    ]
    assert [r["run_id"] for r in rows] == [second[2], learned, second[1], second[0]]
    assert [r["kind"] for r in rows] == ["baseline", "learned", "baseline", "baseline"]
    assert rows[0]["kpis"]["inbox_share"] == {
        "mean": pytest.approx(0.95),
        "ci_low": pytest.approx(0.93),
        "ci_high": pytest.approx(0.98),
    }
    assert len(tracker.search()) == 3 + 3 + 1 + 2

    data = compare_json(rows)
    assert set(data) == {"runs"}
    for run, row in zip(data["runs"], rows, strict=True):
        assert set(run) == {"run_id", "name", "policy", "seeds", "eval_seed", "kpis"}
        assert (run["seeds"], run["eval_seed"]) == (8, 0)
        assert (run["run_id"], run["name"], run["policy"]) == (
            row["run_id"],
            row["name"],
            row["policy"],
        )
        assert set(run["kpis"]) == set(kpi_names())
        for entry in run["kpis"].values():
            assert set(entry) == {"mean", "ci_low", "ci_high"}
            assert entry["ci_low"] <= entry["mean"] <= entry["ci_high"]
    json.dumps(data)

    table = format_comparison(rows, "inbox_share")
    lines = table.splitlines()
    assert lines[1] == "evaluated on 8 seeds per scenario from seed 0"
    assert max(len(line) for line in lines) <= WIDTH
    assert "0.950 [0.930, 0.980]" in table  # inbox_share of hold
    assert "0.0500 [0.0300, 0.0800]" in table  # its lost_share
    ranked = [line.split()[:3] for line in lines[1:] if line[:1].isdigit()]
    assert ranked[:4] == [
        ["1", "hold@validation", "baseline"],
        ["2", LONG_NAME[: len(ranked[1][1]) - 1] + "~", "learned"],
        ["3", "aimd@validation", "baseline"],
        ["4", "fixed-sendgrid@validation", "baseline"],
    ]
    assert ranked[4:] == ranked[:4]  # the second block, same order
    png = plot_comparison(rows, tmp_path / "plots" / "compare.png", "inbox_share")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_a_kpi_added_to_the_table_is_logged_ranked_and_shown(
    tracker: Tracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dummy = Kpi("bounced_share", lambda r: r.totals["bounced"], False, "{:.5f}", "bounced / demand")
    monkeypatch.setattr(kpis, "KPI_TABLE", (*kpis.KPI_TABLE, dummy))
    report = _report({"fixed-sendgrid": 0.5, "aimd": 0.9, "hold": 0.7})
    log_baseline_runs(tracker, report, suite="validation")
    rows = compare_runs(tracker, suite="validation", kpi="bounced_share")
    assert [r["policy"] for r in rows] == ["fixed-sendgrid", "hold", "aimd"]  # lower is better
    assert compare_json(rows)["runs"][0]["kpis"]["bounced_share"] == {
        "mean": pytest.approx(0.5),
        "ci_low": pytest.approx(0.48),
        "ci_high": pytest.approx(0.53),
    }
    table = format_comparison(rows, "bounced_share")
    assert table.splitlines()[0].startswith("3 runs ranked by bounced_share (lower is better)")
    assert "0.50000 [0.48000, 0.53000]" in table
    assert max(len(line) for line in table.splitlines()) <= WIDTH
    png = plot_comparison(rows, tmp_path / "compare.png", "bounced_share")
    assert png.read_bytes()[:8] == PNG_MAGIC


def test_unknown_kpi_is_a_config_error(tracker: Tracker) -> None:
    with pytest.raises(ConfigError, match="unknown KPI 'inbox'; expected one of inbox_share"):
        compare_runs(tracker, kpi="inbox")


def test_run_compare_prints_and_writes_json_and_png(
    tracker: Tracker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_baseline_runs(tracker, _report({"fixed-sendgrid": 0.5, "aimd": 0.9}), suite="validation")
    out_json, out_png = tmp_path / "out" / "compare.json", tmp_path / "compare.png"
    code = run_compare("compare", "validation", out_json, out_png, tracker.uri)
    assert code == 0
    out = capsys.readouterr().out
    assert "experiment 'compare'" in out and "aimd@validation" in out
    assert out_png.read_bytes()[:8] == PNG_MAGIC
    data = json.loads(out_json.read_text())
    assert [r["policy"] for r in data["runs"]] == ["aimd", "fixed-sendgrid"]
    assert list(out_json.parent.iterdir()) == [out_json]  # no temporary file left


def test_run_compare_names_a_missing_experiment_or_suite(tracker: Tracker, tmp_path: Path) -> None:
    png = tmp_path / "c.png"
    missing = r"experiment 'nope' at tracking URI sqlite:.*not found; .* on suite 'validation'"
    with pytest.raises(ConfigError, match=missing):
        run_compare("nope", "validation", None, png, tracker.uri)
    empty = r"experiment 'compare' at tracking URI sqlite:.*no FINISHED runs on suite 'holdout'"
    with pytest.raises(ConfigError, match=empty):
        run_compare("compare", "holdout", None, png, tracker.uri)
    no_store = r"experiment 'compare' at .*/elsewhere/mlflow.db: not found \(no database file"
    with pytest.raises(ConfigError, match=no_store):
        run_compare("compare", "validation", None, png, f"sqlite:///{tmp_path}/elsewhere/mlflow.db")
    assert not (tmp_path / "elsewhere").exists()
    assert not png.exists()


def test_baseline_runs_of_the_same_clean_commit_suite_and_seeds_are_reused(
    tracker: Tracker,
) -> None:
    report = _report({"fixed-sendgrid": 0.5, "aimd": 0.9})
    clean = {"ipwarmup.git_commit": "a" * 40, "ipwarmup.git_dirty": "false",
             "ipwarmup.env_version": "0"}  # fmt: skip
    first = log_baseline_runs(tracker, report, suite="validation", tags=clean)
    assert log_baseline_runs(tracker, report, suite="validation", tags=clean) == first
    tags = tracker.get_run(first[1])["tags"]
    assert tags["ipwarmup.seeds"] == "8" and tags["ipwarmup.eval_seed"] == "0"
    assert tags["ipwarmup.git_commit"] == "a" * 40
    # Anything that can change the numbers logs new runs: code, suite, seeds, a dirty tree.
    other_commit = {**clean, "ipwarmup.git_commit": "b" * 40}
    dirty = {**clean, "ipwarmup.git_dirty": "true"}
    unknown = {**clean, "ipwarmup.git_commit": "unknown"}
    more_seeds = {**report, "seeds": 16}
    new = [
        log_baseline_runs(tracker, report, suite="validation", tags=other_commit),
        log_baseline_runs(tracker, report, suite="test", tags=clean),
        log_baseline_runs(tracker, more_seeds, suite="validation", tags=clean),
        log_baseline_runs(tracker, report, suite="validation", tags=dirty),
        log_baseline_runs(tracker, report, suite="validation", tags=dirty),
        log_baseline_runs(tracker, report, suite="validation", tags=unknown),
    ]
    ids = [run_id for batch in new for run_id in batch]
    assert len(set(ids) | set(first)) == 2 * 7
    assert len(tracker.search("tags.`ipwarmup.policy_kind` = 'baseline'")) == 2 * 7


def test_only_runs_on_the_same_seeds_are_ranked_and_the_others_are_named(
    tracker: Tracker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 10: a 4-seed oracle run sat below a 32-seed learned run in one ranking.
    four = {**_report({"fixed-sendgrid": 0.5, "oracle": 0.99}), "seeds": 4}
    log_baseline_runs(tracker, four, suite="validation")
    thirty_two = {**_report({"fixed-sendgrid": 0.6, "oracle": 0.9}), "seeds": 32, "seed": 20000}
    log_baseline_runs(tracker, thirty_two, suite="validation")
    _learned(tracker, "ppo-32", 0.8, seeds="32", eval_seed="20000")
    _learned(tracker, "ppo-32-other-worlds", 0.95, seeds="32", eval_seed="7")  # newer, 1 run
    _learned(tracker, "ppo-untagged", 0.97, seeds=None)
    assert evaluations(tracker, suite="validation") == {
        (4, 0): 2, (32, 20000): 3, (32, 7): 1, (None, None): 1,
    }  # fmt: skip

    # The most seeds by default; among their first seeds the newest run's.
    rows = compare_runs(tracker, suite="validation")
    assert [r["name"] for r in rows] == ["ppo-32-other-worlds"]
    _learned(tracker, "ppo-32-again", 0.7, seeds="32", eval_seed="20000")  # now the newest
    rows = compare_runs(tracker, suite="validation")
    assert [r["name"] for r in rows] == [
        "oracle@validation", "ppo-32", "ppo-32-again", "fixed-sendgrid@validation",
    ]  # fmt: skip
    assert {(r["seeds"], r["eval_seed"]) for r in rows} == {(32, 20000)}
    # --seeds 32 picks the same: the newest 32-seed run's first seed, not an older one's.
    assert compare_runs(tracker, suite="validation", seeds=32) == rows
    assert [r["name"] for r in compare_runs(tracker, suite="validation", seeds=4)] == [
        "oracle@validation", "fixed-sendgrid@validation",
    ]  # fmt: skip
    with pytest.raises(ConfigError, match=r"^--seeds: no FINISHED run was evaluated on 16 "
                       r"seeds; runs have \[4, 32\]$"):  # fmt: skip
        compare_runs(tracker, suite="validation", seeds=16)

    code = run_compare("compare", "validation", None, tmp_path / "c.png", tracker.uri)
    out = capsys.readouterr().out
    assert code == 0
    assert "evaluated on 32 seeds per scenario from seed 20000" in out
    assert "left out: 2 runs evaluated on 4 seeds from seed 0 (--seeds 4 ranks them)" in out
    assert "left out: 1 runs evaluated on 32 seeds from seed 7 (--seeds 32 ranks them)" in out
    assert "left out: 1 runs evaluated on no seed tags" in out
    assert "ppo-untagged" not in out and "ppo-32-other-worlds" not in out


def test_untagged_runs_are_ranked_only_when_no_run_has_seed_tags(tracker: Tracker) -> None:
    _learned(tracker, "old-a", 0.7, seeds=None)
    _learned(tracker, "old-b", 0.8, seeds=None)
    rows = compare_runs(tracker, suite="validation")
    assert [(r["name"], r["seeds"]) for r in rows] == [("old-b", None), ("old-a", None)]
    assert "an unrecorded number of seeds" in format_comparison(rows).splitlines()[1]


def test_baseline_runs_are_reused_across_commits_with_the_same_evaluation_code(
    tracker: Tracker,
) -> None:
    # Training logs baselines with the digest of the evaluation's code and suite: a commit
    # that changed only serving code, or a dirty tree, reuses them; another digest does not.
    report = _report({"fixed-sendgrid": 0.5, "aimd": 0.9})
    tags = {"ipwarmup.git_commit": "a" * 40, "ipwarmup.git_dirty": "false",
            "ipwarmup.version": "0.1.0", "ipwarmup.eval_code": "0123456789abcdef"}  # fmt: skip
    first = log_baseline_runs(tracker, report, suite="validation", tags=tags)
    for changed in (
        {"ipwarmup.git_commit": "b" * 40},
        {"ipwarmup.git_dirty": "true"},
        {"ipwarmup.git_commit": "unknown", "ipwarmup.version": "0.2.0"},
    ):
        again = log_baseline_runs(tracker, report, suite="validation", tags={**tags, **changed})
        assert again == first, changed
    other_code = {**tags, "ipwarmup.eval_code": "fedcba9876543210"}
    assert not set(log_baseline_runs(tracker, report, suite="validation", tags=other_code)) & set(
        first
    )
    more_seeds = {**report, "seeds": 16}
    assert not set(log_baseline_runs(tracker, more_seeds, suite="validation", tags=tags)) & set(
        first
    )
    assert len(tracker.search("tags.`ipwarmup.policy_kind` = 'baseline'")) == 3 * 2


def test_log_evaluation_writes_the_gap_closed_where_the_ceiling_opens_one(
    tracker: Tracker,
) -> None:
    data = _report({"fixed-sendgrid": 0.5, "ppo": 0.8})
    share = {"mean": 0.75, "ci_low": 0.6, "ci_high": 0.9, "gap": 0.04}
    none = {"mean": None, "ci_low": None, "ci_high": None, "gap": 0.001}
    data["gap_closed"] = {
        "ppo": {
            "objective": {"overall": share, "scenarios": {"a": share}},
            "total_inbox_share": {"overall": none, "scenarios": {"a": none}},
        }
    }
    with tracker.start("eval") as run:
        log_evaluation(run, data, policy="ppo", step=5)
    metrics = tracker.get_run(run.run_id)["metrics"]
    assert {k: v for k, v in metrics.items() if "gap_closed" in k} == {
        "eval/gap_closed/objective": pytest.approx(0.75),
        "eval/gap_closed/objective/ci_low": pytest.approx(0.6),
        "eval/gap_closed/objective/ci_high": pytest.approx(0.9),
    }
    assert len(metrics) == len(kpi_names()) * 4 * 2 + 3


def test_a_run_with_a_seed_count_but_no_first_seed_is_ranked_on_its_count(
    tracker: Tracker,
) -> None:
    # A seeds tag without eval_seed still says how many seeds: ranked, and named by count.
    _learned(tracker, "counted", 0.8, seeds=None)
    tags = {"ipwarmup.policy": "counted-8", "ipwarmup.policy_kind": "learned",
            "ipwarmup.suite": "validation", "ipwarmup.seeds": "8"}  # fmt: skip
    with tracker.start("counted-8", tags=tags) as run:
        data = _report({"fixed-sendgrid": 0.5, "learned": 0.7})
        log_evaluation(run, data, policy="learned", step=100, prefix="kpi/")
    rows = compare_runs(tracker, suite="validation")
    assert [(r["name"], r["seeds"], r["eval_seed"]) for r in rows] == [("counted-8", 8, None)]
    with pytest.raises(ConfigError, match=r"runs have \[8\]$"):
        compare_runs(tracker, suite="validation", seeds=16)


def test_a_suite_name_with_a_quote_is_refused(tracker: Tracker) -> None:
    with pytest.raises(ConfigError, match=r"^suite: expected a name without quotes, got \"x'y\"$"):
        compare_runs(tracker, suite="x'y")


def test_run_compare_passes_its_suite_kpi_and_seeds_on(
    tracker: Tracker, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_baseline_runs(tracker, _report({"fixed-sendgrid": 0.5, "aimd": 0.9}), suite="validation")
    four = {**_report({"fixed-sendgrid": 0.6, "aimd": 0.7, "hold": 0.8}), "seeds": 4}
    log_baseline_runs(tracker, four, suite="test")
    log_baseline_runs(tracker, {**four, "seeds": 2}, suite="test")
    out = tmp_path / "c.json"
    assert run_compare("compare", "test", out, tmp_path / "c.png", tracker.uri,
                       kpi="block_events", seeds=2) == 0  # fmt: skip
    data = json.loads(out.read_text())
    # The test suite's 2-seed runs, fewest blocks (the inbox share here) first: the reverse
    # of the inbox_share ranking.
    assert [(r["name"], r["seeds"]) for r in data["runs"]] == [
        ("fixed-sendgrid@test", 2), ("aimd@test", 2), ("hold@test", 2),
    ]  # fmt: skip
    text = capsys.readouterr().out
    assert "ranked by block_events (lower is better)" in text
    # Left out: the test suite's other runs, not the validation suite's.
    assert [line for line in text.splitlines() if line.startswith("left out")] == [
        "left out: 3 runs evaluated on 4 seeds from seed 0 (--seeds 4 ranks them)"
    ]
