"""Compare tracked runs, learned and baseline, on one evaluation suite.

Reads the final-evaluation KPIs (metric keys ``kpi/<kpi>``, ``kpi/<kpi>/ci_low``,
``kpi/<kpi>/ci_high``) of the FINISHED runs tagged ``ipwarmup.suite=<suite>``, keeps the
newest run per ``ipwarmup.policy`` and ranks them. All MLflow access goes through
:mod:`ipwarmup.training.tracking`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ipwarmup.errors import ConfigError
from ipwarmup.training.kpis import get_kpi, kpi_names
from ipwarmup.training.report import format_interval
from ipwarmup.training.tracking import Tracker

WIDTH = 100
SHOWN = ("inbox_share", "lost_share", "block_events", "dedicated_share")
"""KPIs in the text table, two per block so that a block fits in 100 columns."""
_COLORS = {"learned": "tab:orange", "baseline": "tab:blue"}


def compare_runs(
    tracker: Tracker, *, suite: str = "validation", kpi: str = "inbox_share"
) -> list[dict[str, Any]]:
    """Return the newest FINISHED run per policy on ``suite``, best first by ``kpi``.

    Args:
        tracker: the experiment to read.
        suite: the ``ipwarmup.suite`` tag to select runs by.
        kpi: the KPI to rank by, in its better direction; runs without it come last.

    Returns:
        Rows ``{"run_id", "name", "policy", "kind", "kpis"}``; ``kind`` is the
        ``ipwarmup.policy_kind`` tag (``learned`` or ``baseline``) and ``kpis`` maps each
        KPI the run logged to ``{"mean", "ci_low", "ci_high"}``.

    Raises:
        ConfigError: ``kpi`` is not a KPI name.
    """
    higher_is_better = get_kpi(kpi).higher_is_better
    if "'" in suite:
        raise ConfigError(f"suite: expected a name without quotes, got {suite!r}")
    runs = tracker.search(
        f"tags.`ipwarmup.suite` = '{suite}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"],
    )
    newest: dict[str, dict[str, Any]] = {}
    for run in runs:  # newest first, so the first run of a policy is its newest
        policy = run["tags"].get("ipwarmup.policy", run["run_name"])
        if policy not in newest and run["status"] == "FINISHED":
            newest[policy] = _row(run, policy)
    sign = -1.0 if higher_is_better else 1.0

    def order(row: dict[str, Any]) -> tuple[bool, float, str]:
        entry = row["kpis"].get(kpi)
        return entry is None, sign * entry["mean"] if entry else 0.0, row["name"]

    return sorted(newest.values(), key=order)


def _row(run: dict[str, Any], policy: str) -> dict[str, Any]:
    metrics = run["metrics"]
    kpis = {}
    for kpi in kpi_names():
        keys = (f"kpi/{kpi}", f"kpi/{kpi}/ci_low", f"kpi/{kpi}/ci_high")
        if all(key in metrics for key in keys):
            mean, low, high = (metrics[key] for key in keys)
            kpis[kpi] = {"mean": mean, "ci_low": low, "ci_high": high}
    return {
        "run_id": run["run_id"],
        "name": run["run_name"],
        "policy": policy,
        "kind": run["tags"].get("ipwarmup.policy_kind", "unknown"),
        "kpis": kpis,
    }


def format_comparison(rows: Sequence[dict[str, Any]], kpi: str = "inbox_share") -> str:
    """Return the ranked runs as text no wider than 100 columns.

    Blocks of two KPIs each: ``kpi`` (the rank) first, then the others of ``SHOWN``; every
    cell ``mean [low, high]``. Names too long for the width are cut with ``~``.
    """
    better = "higher" if get_kpi(kpi).higher_is_better else "lower"
    lines = [f"{len(rows)} runs ranked by {kpi} ({better} is better); mean [95% interval]"]
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
    """Return ``{"runs": [{"run_id", "name", "policy", "kpis"}]}`` in rank order."""
    return {
        "runs": [
            {
                "run_id": row["run_id"],
                "name": row["name"],
                "policy": row["policy"],
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
) -> int:
    """Print the comparison table, write the PNG and, if asked, the JSON; return 0.

    Raises:
        ConfigError: the experiment does not exist, or has no FINISHED run on ``suite``.
    """
    try:
        tracker = Tracker(tracking_uri, experiment, create=False)
    except ConfigError as error:
        raise ConfigError(f"{error}; no runs to compare on suite '{suite}'") from error
    rows = compare_runs(tracker, suite=suite, kpi=kpi)
    if not rows:
        raise ConfigError(
            f"{tracker.where}: no FINISHED runs on suite '{suite}' (tag ipwarmup.suite); "
            "train a policy or log baselines on it first"
        )
    print(f"suite {suite}, {tracker.where}")
    print(format_comparison(rows, kpi))
    print(f"plot: {plot_comparison(rows, plot_path, kpi)}")
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = json_path.with_name(json_path.name + ".tmp")
        tmp.write_text(json.dumps(compare_json(rows), indent=2) + "\n")
        tmp.replace(json_path)  # never leave a half-written file
        print(f"json: {json_path}")
    return 0


def _cell(kpi: str, entry: dict[str, float] | None) -> str:
    return "n/a" if entry is None else format_interval(kpi, entry)


def _cut(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "~"
