"""Compare tracked runs, learned and baseline, on one evaluation suite.

Reads the final-evaluation KPIs (metric keys ``kpi/<kpi>``, ``kpi/<kpi>/ci_low``,
``kpi/<kpi>/ci_high``) of the FINISHED runs tagged ``ipwarmup.suite=<suite>`` and evaluated
on the same seeds (tags ``ipwarmup.seeds`` and ``ipwarmup.eval_seed``), keeps the newest run
per ``ipwarmup.policy`` and ranks them; runs on other seeds are named, not ranked. All
MLflow access goes through :mod:`ipwarmup.training.tracking`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ipwarmup.errors import ConfigError
from ipwarmup.training.kpis import get_kpi, kpi_names
from ipwarmup.training.report import format_interval
from ipwarmup.training.store import StoreError
from ipwarmup.training.tracking import Tracker

WIDTH = 100
SHOWN = ("inbox_share", "lost_share", "block_events", "dedicated_share")
"""KPIs in the text table, two per block so that a block fits in 100 columns."""
_COLORS = {"learned": "tab:orange", "baseline": "tab:blue"}


def compare_runs(
    tracker: Tracker,
    *,
    suite: str = "validation",
    kpi: str = "inbox_share",
    seeds: int | None = None,
) -> list[dict[str, Any]]:
    """Return the newest FINISHED run per policy on ``suite`` and one evaluation, best first.

    Only runs evaluated on the same seeds compare: an interval from 4 seeds ranked beside
    one from 32 says little, and another first seed is another sample of worlds. The
    evaluation is :func:`chosen_evaluation`'s.

    Args:
        tracker: the experiment to read.
        suite: the ``ipwarmup.suite`` tag to select runs by.
        kpi: the KPI to rank by, in its better direction; runs without it come last.
        seeds: rank the runs evaluated on this many seeds per scenario; by default the
            largest count there is.

    Returns:
        Rows ``{"run_id", "name", "policy", "kind", "seeds", "eval_seed", "kpis"}``;
        ``kind`` is the ``ipwarmup.policy_kind`` tag (``learned`` or ``baseline``),
        ``seeds`` and ``eval_seed`` the evaluation's (None for a run without the tags) and
        ``kpis`` maps each KPI the run logged to ``{"mean", "ci_low", "ci_high"}``.

    Raises:
        ConfigError: ``kpi`` is not a KPI name.
    """
    return _rank(_finished(tracker, suite), kpi, seeds)


def _rank(runs: Sequence[dict[str, Any]], kpi: str, seeds: int | None) -> list[dict[str, Any]]:
    """Rank runs (newest first) as :func:`compare_runs` does."""
    higher_is_better = get_kpi(kpi).higher_is_better
    chosen = chosen_evaluation(runs, seeds)
    newest: dict[str, dict[str, Any]] = {}
    for run in runs:  # newest first, so the first run of a policy is its newest
        policy = run["tags"].get("ipwarmup.policy", run["run_name"])
        if policy not in newest and _evaluation(run) == chosen:
            newest[policy] = _row(run, policy)
    sign = -1.0 if higher_is_better else 1.0

    def order(row: dict[str, Any]) -> tuple[bool, float, str]:
        entry = row["kpis"].get(kpi)
        return entry is None, sign * entry["mean"] if entry else 0.0, row["name"]

    return sorted(newest.values(), key=order)


def evaluations(tracker: Tracker, *, suite: str = "validation") -> dict[Evaluation, int]:
    """Return how many FINISHED runs on ``suite`` each evaluation (seeds, first seed) has."""
    return _count(_finished(tracker, suite))


def _count(runs: Sequence[dict[str, Any]]) -> dict[Evaluation, int]:
    """Return how many of ``runs`` each evaluation has."""
    return dict(Counter(_evaluation(run) for run in runs))


Evaluation = tuple[int | None, int | None]
"""An evaluation's seeds per scenario and first seed, from a run's tags (None: untagged)."""


def chosen_evaluation(runs: Sequence[dict[str, Any]], seeds: int | None) -> Evaluation:
    """Return the evaluation to rank: the most seeds (or ``seeds``), its newest first seed.

    ``runs`` come newest first. Runs without seed tags (logged before runs carried them)
    are ranked only when no run has them.

    Raises:
        ConfigError: ``seeds`` is given and no run was evaluated on that many.
    """
    tagged = [(count, first) for count, first in map(_evaluation, runs) if count is not None]
    if seeds is not None:
        matching = [e for e in tagged if e[0] == seeds]
        if not matching:
            counts = sorted({count for count, _ in tagged})
            raise ConfigError(
                f"--seeds: no FINISHED run was evaluated on {seeds} seeds; runs have {counts}"
            )
        return matching[0]
    if not tagged:
        return (None, None)
    most = max(count for count, _ in tagged)
    return next(e for e in tagged if e[0] == most)


def _finished(tracker: Tracker, suite: str) -> list[dict[str, Any]]:
    """Return the FINISHED runs tagged with ``suite``, newest first."""
    if "'" in suite:
        raise ConfigError(f"suite: expected a name without quotes, got {suite!r}")
    runs = tracker.search(
        f"tags.`ipwarmup.suite` = '{suite}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    return [run for run in runs if run["status"] == "FINISHED"]


def _evaluation(run: dict[str, Any]) -> Evaluation:
    """Return a run's (seeds, first seed) from its tags; None where a tag is missing or bad."""
    values = []
    for tag in ("ipwarmup.seeds", "ipwarmup.eval_seed"):
        text = run["tags"].get(tag, "")
        values.append(int(text) if text.lstrip("-").isdigit() else None)
    return values[0], values[1]


def _row(run: dict[str, Any], policy: str) -> dict[str, Any]:
    metrics = run["metrics"]
    kpis = {}
    for kpi in kpi_names():
        keys = (f"kpi/{kpi}", f"kpi/{kpi}/ci_low", f"kpi/{kpi}/ci_high")
        if all(key in metrics for key in keys):
            mean, low, high = (metrics[key] for key in keys)
            kpis[kpi] = {"mean": mean, "ci_low": low, "ci_high": high}
    seeds, eval_seed = _evaluation(run)
    return {
        "run_id": run["run_id"],
        "name": run["run_name"],
        "policy": policy,
        "kind": run["tags"].get("ipwarmup.policy_kind", "unknown"),
        "seeds": seeds,
        "eval_seed": eval_seed,
        "kpis": kpis,
    }


def format_comparison(rows: Sequence[dict[str, Any]], kpi: str = "inbox_share") -> str:
    """Return the ranked runs as text no wider than 100 columns.

    Blocks of two KPIs each: ``kpi`` (the rank) first, then the others of ``SHOWN``; every
    cell ``mean [low, high]``. Names too long for the width are cut with ``~``.
    """
    better = "higher" if get_kpi(kpi).higher_is_better else "lower"
    lines = [f"{len(rows)} runs ranked by {kpi} ({better} is better); mean [95% interval]"]
    if rows:
        lines.append(f"evaluated on {_seeds(rows[0])}")
    rank_width = max(4, len(str(len(rows))) + 1)
    kind_width = max([4, *(len(row["kind"]) for row in rows)])
    blocks = []
    shown = [kpi, *(k for k in SHOWN if k != kpi)]
    for group in (shown[i : i + 2] for i in range(0, len(shown), 2)):
        cells = [[_cell(k, row["kpis"].get(k)) for k in group] for row in rows]
        widths = [max([len(k), *(len(c[i]) for c in cells)]) for i, k in enumerate(group)]
        blocks.append((group, cells, widths))
    fixed = rank_width + 2 + kind_width + max(sum(2 + w for w in b[2]) for b in blocks)
    longest = max([4, *(len(row["name"]) for row in rows)])
    name_width = max(8, min(longest, WIDTH - fixed))
    for group, cells, widths in blocks:
        header = f"{'#':<{rank_width}}{'name':<{name_width}}  {'kind':<{kind_width}}"
        lines += ["", header + "".join(f"  {k:>{w}}" for k, w in zip(group, widths, strict=True))]
        for rank, (row, row_cells) in enumerate(zip(rows, cells, strict=True), start=1):
            line = f"{rank:<{rank_width}}{_cut(row['name'], name_width):<{name_width}}  "
            line += f"{row['kind']:<{kind_width}}"
            line += "".join(f"  {c:>{w}}" for c, w in zip(row_cells, widths, strict=True))
            lines.append(line)
    return "\n".join(lines)


def plot_comparison(rows: Sequence[dict[str, Any]], path: Path, kpi: str = "inbox_share") -> Path:
    """Write a horizontal bar chart of ``kpi`` with 95% whiskers, best run at the top.

    Learned and baseline runs have different colors; runs without the KPI are left out.
    """
    better = "higher" if get_kpi(kpi).higher_is_better else "lower"
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    shown = [row for row in rows if kpi in row["kpis"]]
    fig, ax = plt.subplots(figsize=(9, 1.4 + 0.4 * max(len(shown), 1)))
    y = np.arange(len(shown))
    means = np.array([row["kpis"][kpi]["mean"] for row in shown])
    low = np.array([row["kpis"][kpi]["ci_low"] for row in shown])
    high = np.array([row["kpis"][kpi]["ci_high"] for row in shown])
    colors = [_COLORS.get(row["kind"], "tab:gray") for row in shown]
    whiskers = np.vstack([np.maximum(means - low, 0.0), np.maximum(high - means, 0.0)])
    ax.barh(y, means, xerr=whiskers if shown else None, capsize=3, color=colors, alpha=0.85)
    ax.set_yticks(y, [_cut(row["name"], 40) for row in shown], fontsize=8)
    ax.invert_yaxis()  # rank 1 at the top
    ax.grid(axis="x", alpha=0.3)
    ax.set_xlabel(f"{kpi} ({better} is better)")
    ax.set_title(f"{kpi}: mean and 95% interval, rank 1 at the top", fontsize=10)
    kinds = [kind for kind in _COLORS if any(row["kind"] == kind for row in shown)]
    if kinds:
        ax.legend(handles=[Patch(color=_COLORS[k], label=k) for k in kinds], fontsize=8)
    if not shown:
        ax.text(0.5, 0.5, f"no run reports {kpi}", ha="center", va="center")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def compare_json(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Return ``{"runs": [{"run_id", "name", "policy", "seeds", "eval_seed", "kpis"}]}``."""
    return {
        "runs": [
            {
                "run_id": row["run_id"],
                "name": row["name"],
                "policy": row["policy"],
                "seeds": row["seeds"],
                "eval_seed": row["eval_seed"],
                "kpis": {
                    kpi: {stat: entry[stat] for stat in ("mean", "ci_low", "ci_high")}
                    for kpi, entry in row["kpis"].items()
                },
            }
            for row in rows
        ]
    }


def run_compare(
    experiment: str,
    suite: str,
    json_path: Path | None,
    plot_path: Path,
    tracking_uri: str | None,
    *,
    kpi: str = "inbox_share",
    seeds: int | None = None,
) -> int:
    """Print the comparison table, write the PNG and, if asked, the JSON; return 0.

    Raises:
        ConfigError: the experiment does not exist, or has no FINISHED run on ``suite``.
    """
    try:
        tracker = Tracker(tracking_uri, experiment, create=False)
    except StoreError:
        raise  # an unusable store says so itself; there is nothing to compare
    except ConfigError as error:
        raise ConfigError(f"{error}; no runs to compare on suite '{suite}'") from error
    runs = _finished(tracker, suite)  # one search serves the ranking and what it leaves out
    rows = _rank(runs, kpi, seeds)
    if not rows:
        raise ConfigError(
            f"{tracker.where}: no FINISHED runs on suite '{suite}' (tag ipwarmup.suite); "
            "train a policy or log baselines on it first"
        )
    print(f"suite {suite}, {tracker.where}")
    print(format_comparison(rows, kpi))
    shown = (rows[0]["seeds"], rows[0]["eval_seed"])
    for (count, first), number in sorted(_count(runs).items(), key=str):
        if (count, first) != shown:
            where = f"{count} seeds from seed {first}" if count is not None else "no seed tags"
            hint = f" (--seeds {count} ranks them)" if count is not None else ""
            print(f"left out: {number} runs evaluated on {where}{hint}")
    print(f"plot: {plot_comparison(rows, plot_path, kpi)}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_path.with_name(json_path.name + ".tmp")
        tmp.write_text(json.dumps(compare_json(rows), indent=2) + "\n")
        tmp.replace(json_path)  # never leave a half-written file
        print(f"json: {json_path}")
    return 0


def _seeds(row: dict[str, Any]) -> str:
    """Return a row's evaluation as words: ``32 seeds per scenario from seed 20000``."""
    if row["seeds"] is None:
        return "an unrecorded number of seeds (runs logged before runs carried it)"
    return f"{row['seeds']} seeds per scenario from seed {row['eval_seed']}"


def _cell(kpi: str, entry: dict[str, float] | None) -> str:
    return "n/a" if entry is None else format_interval(kpi, entry)


def _cut(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "~"
