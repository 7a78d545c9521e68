"""The KPI table: hand-computed KPI values, a dummy KPI seen everywhere, the README in sync."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pytest

from ipwarmup.errors import ConfigError
from ipwarmup.training import kpis
from ipwarmup.training.evaluate import Evaluation, evaluate, load_suite, report
from ipwarmup.training.kpis import (
    DAILY_KEYS,
    EpisodeRecord,
    Kpi,
    compute_kpis,
    get_kpi,
    kpi_names,
    markdown,
)
from ipwarmup.training.report import format_tables, kpi_figure, plot_kpis

README = Path(__file__).resolve().parents[2] / "README.md"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _record() -> EpisodeRecord:
    """Three seeds, three days, two providers, numbers small enough to check by hand."""
    demand = np.array(
        [
            [[100, 100], [100, 0], [0, 0]],  # day 1: seeds 0, 1, 2
            [[100, 100], [100, 100], [0, 0]],
            [[100, 100], [100, 100], [0, 0]],
        ],
        dtype=float,
    )
    accepted = np.array(
        [
            [[50, 100], [10, 0], [0, 0]],
            [[95, 100], [94, 100], [0, 0]],  # seed 0 warm on day 2 (95 >= 0.95 * 100)
            [[0, 0], [100, 50], [0, 0]],  # seed 1 never warm; seed 2 warm from day 1
        ],
        dtype=float,
    )
    daily = {key: np.zeros_like(demand) for key in DAILY_KEYS}
    daily.update(demand=demand, accepted_dedicated=accepted)
    totals = {
        "demand": np.array([600.0, 400.0, 0.0]),
        "delivered_inbox": np.array([480.0, 100.0, 0.0]),
        "accepted_dedicated": np.array([345.0, 354.0, 0.0]),
        "sent_dedicated": np.array([400.0, 0.0, 0.0]),
        "deferrals": np.array([55.0, 0.0, 0.0]),
        "rejected": np.array([6.0, 2.0, 0.0]),
        "expired": np.array([6.0, 0.0, 0.0]),
        "block_events": np.array([1.0, 0.0, 0.0]),
        "ip_days": np.array([3.0, 1.5, 0.0]),
    }
    return EpisodeRecord(
        totals=totals,
        daily=daily,
        final_reputation=np.array([0.7, 0.5, 0.6]),
        horizon_days=3,
        provider_names=("gmail", "other"),
        continuation={
            "demand": np.array([1000.0, 0.0, 500.0]),
            "delivered_inbox": np.array([900.0, 0.0, 100.0]),
            "accepted_dedicated": np.array([800.0, 0.0, 0.0]),
            "rejected": np.zeros(3),
            "expired": np.zeros(3),
        },
        returns=np.array([66.0, -12.0, 0.0]),
        messages_per_period=np.array([20.0, 50.0, 7.0]),
    )


def test_every_kpi_on_a_record_computed_by_hand() -> None:
    values = compute_kpis(_record())
    assert list(values) == list(kpi_names())
    expected = {
        "inbox_share": [0.8, 0.25, 0.0],  # an episode without demand scores 0, not nan
        "dedicated_share": [0.575, 0.885, 0.0],
        "days_to_warm": [2.0, 4.0, 1.0],  # never warm: horizon + 1; no demand counts as warm
        "deferral_rate": [0.1375, 0.0, 0.0],  # no attempts: 0
        "lost_share": [0.02, 0.005, 0.0],
        "block_events": [1.0, 0.0, 0.0],
        "ip_days": [3.0, 1.5, 0.0],
        "final_reputation": [0.7, 0.5, 0.6],
        # Horizon 3 < 7 days: the whole horizon. Seed 1: (10 + 194 + 150) / 500.
        "final_dedicated_share": [0.575, 0.708, 0.0],
        "continuation_inbox_share": [0.9, 0.0, 0.2],  # no continuation demand: 0
        # (480 + 900) / (600 + 1000); (100 + 0) / (400 + 0); (0 + 100) / (0 + 500)
        "total_inbox_share": [0.8625, 0.25, 0.2],
        # 66 x 20 / (600 + 1000); -12 x 50 / 400; 0 x 7 / 500
        "objective": [0.825, -1.5, 0.0],
    }
    for name, want in expected.items():
        np.testing.assert_allclose(values[name], want, err_msg=name)


def test_a_kpi_returning_another_shape_is_named() -> None:
    bad = Kpi("total_demand", lambda r: r.totals["demand"].sum(), True, "{:.0f}", "a bug")
    with (
        pytest.MonkeyPatch.context() as patch,
        pytest.raises(
            ValueError,
            match=r"^KPI total_demand: expected one value per seed, shape \(3,\), got shape \(\)$",
        ),
    ):
        patch.setattr(kpis, "KPI_TABLE", (*kpis.KPI_TABLE, bad))
        compute_kpis(_record())


def test_an_unknown_kpi_suggests_the_closest() -> None:
    with pytest.raises(ConfigError) as error:
        get_kpi("inbox_shar")
    assert str(error.value) == (
        "kpi: unknown KPI 'inbox_shar'; expected one of inbox_share, dedicated_share, "
        "days_to_warm, deferral_rate, lost_share, block_events, ip_days, final_reputation, "
        "final_dedicated_share, continuation_inbox_share, total_inbox_share, objective; "
        "did you mean 'inbox_share'?"
    )


def bounced_share(record: EpisodeRecord) -> np.ndarray:
    result: np.ndarray = record.totals["bounced"] / np.maximum(record.totals["demand"], 1.0)
    return result


DUMMY = Kpi("bounced_share", bounced_share, False, "{:.5f}", "bounced / demand")


@pytest.fixture(scope="module")
def dummy_run(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Evaluation, dict[str, Any]]]:
    """A short evaluation with a ninth KPI patched into the table while it runs."""
    folder = tmp_path_factory.mktemp("suite")
    (folder / "suite.yaml").write_text(
        "name: tiny\nscenarios:\n"
        "  - scenario: steady_b2c_transactional\n    overrides: [horizon_days=6]\n"
        "  - scenario: seasonal_spike\n    overrides: [horizon_days=6]\n"
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kpis, "KPI_TABLE", (*kpis.KPI_TABLE, DUMMY))
        result = evaluate(["aimd"], load_suite(folder / "suite.yaml"), seeds=3, seed=5)
        data = report(result)
    yield result, data


def test_a_dummy_kpi_reaches_the_json(dummy_run: tuple[Evaluation, dict[str, Any]]) -> None:
    result, data = dummy_run
    data = json.loads(json.dumps(data))  # as the file holds it
    assert data["kpis"] == [*kpi_names(), "bounced_share"]
    assert data["higher_is_better"]["bounced_share"] is False
    for policy in ("aimd", "fixed-sendgrid"):
        for scenario in ("steady_b2c_transactional", "seasonal_spike"):
            totals = result.traces[policy][scenario].record.totals
            # Every message of demand ends delivered, bounced, rejected, expired or queued.
            others = ("delivered_inbox", "delivered_spam", "rejected", "expired", "queued")
            rest = sum(totals[k] for k in others)
            values = data["per_seed"][policy][scenario]["bounced_share"]
            np.testing.assert_allclose(values, 1.0 - rest / totals["demand"], rtol=1e-9)
            assert all(0.001 < v < 0.2 for v in values)
            entry = data["results"][policy][scenario]["bounced_share"]
            assert entry["mean"] == pytest.approx(np.mean(values))
        assert set(data["versus"][policy]["bounced_share"]) == {
            "mean", "ci_low", "ci_high", "iqm", "prob_improvement",
        }  # fmt: skip


def test_per_seed_values_recompute_the_paired_figures(
    dummy_run: tuple[Evaluation, dict[str, Any]],
) -> None:
    _, data = dummy_run
    ours = np.array([data["per_seed"]["aimd"][s]["inbox_share"] for s in data["scenarios"]])
    theirs = np.array(
        [data["per_seed"]["fixed-sendgrid"][s]["inbox_share"] for s in data["scenarios"]]
    )
    assert ours.shape == (2, 3)
    assert data["overall"]["aimd"]["inbox_share"]["mean"] == pytest.approx(ours.mean())
    versus = data["versus"]["aimd"]["inbox_share"]
    assert versus["mean"] == pytest.approx((ours - theirs).mean())
    assert versus["prob_improvement"] == pytest.approx(
        np.mean((ours > theirs) + 0.5 * (ours == theirs))
    )
    assert not np.allclose(ours, theirs)  # the pairing compares different policies


def test_a_dummy_kpi_reaches_the_tables(dummy_run: tuple[Evaluation, dict[str, Any]]) -> None:
    _, data = dummy_run
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(kpis, "KPI_TABLE", (*kpis.KPI_TABLE, DUMMY))
        text = format_tables(data)
    assert all(len(line) <= 100 for line in text.splitlines())
    entry = data["overall"]["aimd"]["bounced_share"]
    cell = f"{entry['mean']:.5f} [{entry['ci_low']:.5f}, {entry['ci_high']:.5f}]"
    aimd_rows = [line for line in text.splitlines() if line.startswith("aimd ")]
    assert any(line.endswith(cell) for line in aimd_rows), text
    overall = text.split("paired difference")[0].splitlines()
    headers = [line.split() for line in overall if line.startswith("policy")]
    columns = [name for header in headers for name in header[1:]]
    assert columns == [*kpi_names(), "bounced_share"]  # every KPI once, in table order


def test_a_dummy_kpi_reaches_the_plots(
    dummy_run: tuple[Evaluation, dict[str, Any]], tmp_path: Path
) -> None:
    _, data = dummy_run
    fig = kpi_figure(data)
    try:
        titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
        n = len(kpi_names()) + 1  # the table and the dummy
        assert len(fig.axes) == -(-n // 4) * 4  # rows of four panels
    finally:
        plt.close(fig)
    assert titles[-1] == "bounced_share (lower is better)"
    assert titles[:2] == ["inbox_share (higher is better)", "dedicated_share (higher is better)"]
    assert len(titles) == len(kpi_names()) + 1
    assert plot_kpis(data, tmp_path / "kpis.png").read_bytes()[:8] == PNG_MAGIC


def test_the_readme_lists_every_kpi_as_the_table_says() -> None:
    text = README.read_text()
    assert markdown() in text, "run: python -m ipwarmup.training.kpis README.md"
    for name in kpi_names():
        assert f"- `{name}` (" in markdown()


def test_final_dedicated_share_reads_only_the_last_seven_days() -> None:
    days, seeds = 10, 1
    demand = np.full((days, seeds, 1), 100.0)
    accepted = np.zeros_like(demand)
    accepted[:3] = 100.0  # all on dedicated early, then back to shared: no destination
    accepted[3] = 50.0  # day 4 is the first of the last seven
    daily = {key: np.zeros_like(demand) for key in DAILY_KEYS}
    daily.update(demand=demand, accepted_dedicated=accepted)
    record = EpisodeRecord(
        totals={"demand": np.array([1000.0])},
        daily=daily,
        final_reputation=np.array([0.5]),
        horizon_days=days,
        provider_names=("gmail",),
        continuation={},
        returns=np.zeros(1),
        messages_per_period=np.array([100.0]),
    )
    # Days 4-10: 50 accepted of 700.
    np.testing.assert_allclose(kpis.final_dedicated_share(record), [50.0 / 700.0])


def test_records_and_table_entries_are_frozen() -> None:
    # The table is read by every module at call time: an entry or record changed in place
    # would change every later report, so neither can be.
    record = _record()
    with pytest.raises(dataclasses.FrozenInstanceError):
        record.horizon_days = 4  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_kpi("inbox_share").higher_is_better = False  # type: ignore[misc]


def test_shares_over_less_than_a_message_or_none_divide_by_one() -> None:
    # Seed 0 has no demand at all, in the horizon or after it: every share is 0, not 0/0.
    # Seed 1 has half a message in its one day and one in the continuation: a share divides
    # by the demand once it is at least one message, by 1 below that.
    zeros = np.zeros(2)
    daily = {key: np.zeros((1, 2, 1)) for key in DAILY_KEYS}
    daily["demand"][0, 1, 0] = 0.5
    daily["accepted_dedicated"][0, 1, 0] = 0.3
    record = EpisodeRecord(
        totals={
            "demand": np.array([0.0, 0.5]),
            "delivered_inbox": np.array([0.0, 0.3]),
            "accepted_dedicated": np.array([0.0, 0.3]),
            **{key: zeros for key in ("sent_dedicated", "deferrals", "rejected", "expired")},
            **{key: zeros for key in ("block_events", "ip_days")},
        },
        daily=daily,
        final_reputation=np.array([0.5, 0.5]),
        horizon_days=1,
        provider_names=("gmail",),
        continuation={
            "demand": np.array([0.0, 1.0]),
            "delivered_inbox": np.array([0.0, 0.6]),
            **{key: zeros for key in ("accepted_dedicated", "rejected", "expired")},
        },
        returns=np.array([3.0, 0.5]),
        messages_per_period=np.array([2.0, 1.0]),
    )
    values = compute_kpis(record)
    np.testing.assert_allclose(values["final_dedicated_share"], [0.0, 0.3 / 1.0])
    # 3 x 2 / 1 (no demand at all: divide by 1); 0.5 x 1 / (0.5 + 1) = 1/3
    np.testing.assert_allclose(values["objective"], [6.0, 1.0 / 3.0])
    np.testing.assert_allclose(values["continuation_inbox_share"], [0.0, 0.6 / 1.0])
    np.testing.assert_allclose(values["total_inbox_share"], [0.0, (0.3 + 0.6) / 1.5])


def test_kpi_values_are_floats_whatever_a_function_returns(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    count = Kpi("count", lambda record: np.arange(record.seeds), False, "{}", "a count")
    monkeypatch.setattr(kpis, "KPI_TABLE", (count,))
    values = compute_kpis(_record())
    assert values["count"].dtype == np.float64
    np.testing.assert_array_equal(values["count"], [0.0, 1.0, 2.0])


def test_rewrite_readme_replaces_only_the_marked_block(tmp_path: Path) -> None:
    stale = (
        f"# Title\n\n{kpis.README_START}\n- `old` (higher is better).\n{kpis.README_END}\ntail\n"
    )
    path = tmp_path / "README.md"
    path.write_text(stale)
    result = subprocess.run(
        [sys.executable, "-m", "ipwarmup.training.kpis", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == f"rewrote the KPI list in {path}\n"
    assert path.read_text() == f"# Title\n\n{markdown()}\ntail\n"
    assert kpis.rewrite_readme(path.read_text()) == path.read_text()  # idempotent
    assert kpis.rewrite_readme(markdown()) == markdown()  # a block at offset 0 is found
    for text in ("no markers", f"{kpis.README_END}\n{kpis.README_START}", kpis.README_START):
        with pytest.raises(ValueError, match="expected the markers"):
            kpis.rewrite_readme(text)
