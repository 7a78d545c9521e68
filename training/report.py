"""Render an evaluation: terminal tables (at most 100 columns) and PNG plots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ipwarmup.training.evaluate import KPIS, Evaluation

WIDTH = 100
KPI_FORMATS = {
    "inbox_share": "{:.3f}",
    "dedicated_share": "{:.3f}",
    "days_to_warm": "{:.1f}",
    "deferral_rate": "{:.4f}",
    "lost_share": "{:.4f}",
    "block_events": "{:.2f}",
    "ip_days": "{:.1f}",
    "final_reputation": "{:.3f}",
}
"""How each KPI is printed in tables."""


def _interval(kpi: str, entry: dict[str, float]) -> str:
    fmt = KPI_FORMATS[kpi]
    low, high = fmt.format(entry["ci_low"]), fmt.format(entry["ci_high"])
    return f"{fmt.format(entry['mean'])} [{low}, {high}]"


def _short(name: str, limit: int = 15) -> str:
    """Keep a long policy name (a model path) to its end, which tells models apart."""
    return name if len(name) <= limit else "~" + name[-(limit - 1) :]


def format_tables(data: dict[str, Any]) -> str:
    """Return the report as text tables no wider than 100 columns."""
    policies = list(data["overall"])
    name_width = max(14, *(len(_short(p)) for p in policies)) + 1
    lines = [
        f"suite {data['suite']}: {len(data['scenarios'])} scenarios x {data['seeds']} seeds "
        f"(paired), mean [95% stratified bootstrap interval]"
    ]
    for group in (KPIS[:3], KPIS[3:6], KPIS[6:]):
        cells = [f"{'policy':<{name_width}}", *(f"{k:>26}" for k in group)]
        lines += ["", "".join(cells)]
        for p in policies:
            row = [f"{_short(p):<{name_width}}"]
            row += [f"{_interval(k, data['overall'][p][k]):>26}" for k in group]
            lines.append("".join(row))
    reference = data["reference"]
    lines += ["", f"paired difference against {reference}: mean [95% interval], P(improvement)"]
    shown = ("inbox_share", "lost_share", "block_events")
    lines.append(f"{'policy':<{name_width}}" + "".join(f"{k:>28}" for k in shown))
    # A cell: mean [low,high] P(improvement).
    for p in policies:
        if p == reference:
            continue
        row = [f"{_short(p):<{name_width}}"]
        for k in shown:
            v = data["versus"][p][k]
            fmt = "{:+.2f}" if k == "block_events" else "{:+.3f}"
            cell = f"{fmt.format(v['mean'])} [{fmt.format(v['ci_low'])},{fmt.format(v['ci_high'])}]"
            row.append(f"{cell} {v['prob_improvement']:.2f}".rjust(28))
        lines.append("".join(row))
    lines += ["", "inbox_share by scenario (mean over seeds)"]
    width = max(8, min(12, (WIDTH - 24) // max(len(policies), 1)))
    heads = [_short(p)[: width - 1] for p in policies]
    lines.append(f"{'scenario':<24}" + "".join(f"{h:>{width}}" for h in heads))
    for scenario in data["scenarios"]:
        means = [data["results"][p][scenario]["inbox_share"]["mean"] for p in policies]
        lines.append(f"{scenario[:23]:<24}" + "".join(f"{m:>{width}.3f}" for m in means))
    return "\n".join(lines)


def plot_kpis(data: dict[str, Any], path: Path) -> Path:
    """Write bars of every KPI per policy with their 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(data["overall"])
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    x = np.arange(len(policies))
    for ax, kpi in zip(axes.ravel(), KPIS, strict=True):
        entries = [data["overall"][p][kpi] for p in policies]
        means = np.array([e["mean"] for e in entries])
        low = means - np.array([e["ci_low"] for e in entries])
        high = np.array([e["ci_high"] for e in entries]) - means
        ax.bar(x, means, yerr=np.vstack([low, high]), capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(x, policies, rotation=45, ha="right", fontsize=8)
        ax.set_title(kpi)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"suite {data['suite']}: {data['seeds']} paired seeds, 95% intervals")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_curves(result: Evaluation, scenario: str, path: Path) -> Path:
    """Write per-provider warmup curves of seed 0 on one scenario, every policy overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    providers = result.configs[scenario].provider_names
    fig, axes = plt.subplots(len(providers), 1, figsize=(9, 2.3 * len(providers)), sharex=True)
    first = result.traces[result.policies[0]][scenario]
    days = np.arange(1, len(first.demand_per_day) + 1)
    for p, (ax, provider) in enumerate(zip(np.atleast_1d(axes), providers, strict=True)):
        ax.plot(days, first.demand_per_day[:, p], color="black", linewidth=1, label="demand")
        for name in result.policies:
            trace = result.traces[name][scenario]
            ax.plot(days, trace.accepted_per_day[:, p], label=name)
        ax.set_yscale("symlog", linthresh=100)
        ax.set_ylabel(f"{provider}\naccepted/day")
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].legend(fontsize=7, ncol=4, loc="upper left")
    np.atleast_1d(axes)[0].set_title(f"{scenario}, seed {result.seed}: dedicated accepted per day")
    np.atleast_1d(axes)[-1].set_xlabel("day")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
