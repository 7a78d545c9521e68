"""Print one policy's paired lead over every other policy of an ``ipwarmup evaluate`` JSON.

``ipwarmup evaluate`` reports paired differences against ``fixed-sendgrid`` only. Issue
10 asks more of a shipped policy: beat every baseline on the objective and on inbox share
(95% interval above zero) and lose no more mail than fixed-sendgrid in any scenario.
This recomputes both from the file's per-seed KPIs (``per_seed[policy][scenario][kpi]``,
seed ``seed + i`` at index ``i``), with the same stratified bootstrap as the report.

    python scripts/versus_table.py eval.json --policy models/default
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from ipwarmup.training.stats import estimate

KPIS = ("objective", "inbox_share", "total_inbox_share")
REFERENCE = "fixed-sendgrid"


def scores(report: dict[str, Any], policy: str, kpi: str) -> np.ndarray:
    """Return a policy's (scenarios, seeds) values of one KPI, in the report's order."""
    per_seed = report["per_seed"][policy]
    return np.array([per_seed[s][kpi] for s in report["scenarios"]], dtype=float)


def lead_lines(report: dict[str, Any], policy: str, *, seed: int = 0) -> list[str]:
    """Return the policy's paired lead over each other policy, per KPI, with its interval."""
    lines = [f"{'versus':<18}" + "".join(f"{k:>30}" for k in KPIS)]
    for other in report["per_seed"]:
        if other == policy:
            continue
        cells = []
        for kpi in KPIS:
            lead = scores(report, policy, kpi) - scores(report, other, kpi)
            # As the report's own `versus` entries: the estimate of the paired difference.
            paired = estimate(lead, np.random.default_rng(seed))
            mark = "*" if paired.ci_low > 0 else " "
            cells.append(f"{paired.mean:+.4f} [{paired.ci_low:+.4f}, {paired.ci_high:+.4f}]{mark}")
        lines.append(f"{other[-18:]:<18}" + "".join(f"{c:>30}" for c in cells))
    lines.append("* the 95% interval is above zero")
    return lines


def lost_lines(report: dict[str, Any], policy: str) -> list[str]:
    """Return each scenario's lost share for the policy and the reference, flagged if worse."""
    lines = [f"{'scenario':<26}{'policy':>10}{REFERENCE:>16}"]
    ours, theirs = scores(report, policy, "lost_share"), scores(report, REFERENCE, "lost_share")
    for name, mine, ref in zip(report["scenarios"], ours.mean(1), theirs.mean(1), strict=True):
        flag = "  loses more" if mine > ref else ""
        lines.append(f"{name[:25]:<26}{mine:>10.4f}{ref:>16.4f}{flag}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the lead table and the lost-mail table; exit 2 on a missing policy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", type=Path, help="JSON written by ipwarmup evaluate --json")
    parser.add_argument("--policy", required=True, help="the policy name as in the report")
    args = parser.parse_args(argv)
    report = json.loads(args.report.read_text())
    if args.policy not in report["per_seed"]:
        known = ", ".join(report["per_seed"])
        print(f"--policy: expected one of {known}, got {args.policy!r}", file=sys.stderr)
        return 2
    print(f"{args.policy} on {report['suite']}, {report['seeds']} paired seeds per scenario")
    print("\n".join(lead_lines(report, args.policy)))
    print()
    print("\n".join(lost_lines(report, args.policy)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
