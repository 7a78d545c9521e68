"""Print the README's "Does warming pay?" table from an ``ipwarmup evaluate --json`` report.

Usage: ``python scripts/warming_table.py eval.json`` (the report must hold ``oracle`` and
``hold-shared``; every other policy in it gets a column too).

Per scenario: each policy's mean ``total_inbox_share`` (horizon plus continuation), the
oracle's ``final_dedicated_share``, and the oracle's paired lead over ``hold-shared`` on
``total_inbox_share`` with its 95% bootstrap interval over the seeds (the seeds are paired:
seed ``i`` is the same sender and providers for every policy). Issue 8 asks a lead of at
least 0.03 with the interval above zero where warming pays, and a final dedicated share of
at least 0.9.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ipwarmup.training.stats import stratified_bootstrap

KPI = "total_inbox_share"


def paired_lead(ours: Sequence[float], theirs: Sequence[float]) -> tuple[float, float, float]:
    """Return the mean of ``ours - theirs`` seed by seed and its 95% bootstrap interval."""
    diff = np.asarray(ours, dtype=float) - np.asarray(theirs, dtype=float)
    low, high = stratified_bootstrap(diff[None, :], np.random.default_rng(0))
    return float(diff.mean()), low, high


def table(report: dict[str, Any]) -> str:
    """Return the markdown table of one evaluate report."""
    per_seed = report["per_seed"]
    for needed in ("oracle", "hold-shared"):
        if needed not in per_seed:
            raise SystemExit(f"report: expected a policy {needed!r}, got {sorted(per_seed)}")
    first = ("oracle", "hold-shared")
    policies = [*first, *(p for p in per_seed if p not in first)]
    head = ["scenario", *policies, "oracle final_dedicated_share", "oracle - hold-shared [95%]"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for scenario in report["scenarios"]:
        cells = [f"`{scenario}`"]
        cells += [f"{np.mean(per_seed[p][scenario][KPI]):.3f}" for p in policies]
        cells.append(f"{np.mean(per_seed['oracle'][scenario]['final_dedicated_share']):.2f}")
        mean, low, high = paired_lead(
            per_seed["oracle"][scenario][KPI], per_seed["hold-shared"][scenario][KPI]
        )
        cells.append(f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]")
        lines.append("| " + " | ".join(cells) + " |")

    # Overall: the mean of scenario means, the interval stratified by scenario.
    def scores(policy: str, kpi: str) -> np.ndarray:
        return np.array([per_seed[policy][s][kpi] for s in report["scenarios"]], dtype=float)

    cells = ["overall", *(f"{scores(p, KPI).mean():.3f}" for p in policies)]
    cells.append(f"{scores('oracle', 'final_dedicated_share').mean():.2f}")
    diff = scores("oracle", KPI) - scores("hold-shared", KPI)
    low, high = stratified_bootstrap(diff, np.random.default_rng(0))
    cells.append(f"{diff.mean():+.3f} [{low:+.3f}, {high:+.3f}]")
    lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the table of the report named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="ipwarmup evaluate --json output")
    args = parser.parse_args(argv)
    print(table(json.loads(args.report.read_text())))


if __name__ == "__main__":
    main()
