"""Render an evaluation: terminal tables (at most 100 columns) and PNG plots."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ipwarmup.training.evaluate import Evaluation
from ipwarmup.training.kpis import get_kpi

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH = 100
VERSUS_SHOWN = ("inbox_share", "lost_share", "block_events")
"""KPIs of the paired-difference table, the ones a deployment decision turns on."""
PLOT_COLUMNS = 4
GAP_TARGET = 0.7
"""A share of the reference-to-ceiling gap worth counting scenarios at (issue 10's line)."""


def format_value(kpi: str, value: float, *, signed: bool = False) -> str:
    """Return one value of ``kpi`` in its table format (with a sign for a difference)."""
    fmt = get_kpi(kpi).format
    return (fmt.replace("{:", "{:+", 1) if signed else fmt).format(value)


def format_interval(kpi: str, entry: dict[str, float], *, signed: bool = False) -> str:
    """Return ``mean [ci_low, ci_high]`` of ``kpi`` in its table format."""
    low, high = (format_value(kpi, entry[s], signed=signed) for s in ("ci_low", "ci_high"))
    return f"{format_value(kpi, entry['mean'], signed=signed)} [{low}, {high}]"


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
    names = list(data["kpis"])
    rows = {_short(p): [format_interval(k, data["overall"][p][k]) for k in names] for p in policies}
    lines += _blocks(names, rows, name_width)
    reference = data["reference"]
    lines += ["", f"paired difference against {reference}: mean [95% interval], P(improvement)"]
    shown = [k for k in VERSUS_SHOWN if k in names]
    versus = {
        _short(p): [
            f"{format_interval(k, data['versus'][p][k], signed=True)} "
            f"{data['versus'][p][k]['prob_improvement']:.2f}"
            for k in shown
        ]
        for p in policies
        if p != reference
    }
    lines += _blocks(shown, versus, name_width)[1:]  # the title stands in for the blank line
    lines += _gap_lines(data, name_width)
    lines += ["", "inbox_share by scenario (mean over seeds)"]
    results = data["results"]
    lines += _by_scenario(
        data["scenarios"], policies, lambda p, s: f"{results[p][s]['inbox_share']['mean']:.3f}"
    )
    return "\n".join(lines)


def _by_scenario(
    scenarios: list[str], policies: list[str], cell: Callable[[str, str], str]
) -> list[str]:
    """Return a table of one cell per scenario (rows) and policy (columns).

    Names get 24 columns, each policy ``(WIDTH - 24) / policies`` kept within 8-12, its
    name cut to fit; ``cell(policy, scenario)`` is the text, right-aligned.
    """
    width = max(8, min(12, (WIDTH - 24) // max(len(policies), 1)))
    heads = [_short(p)[: width - 1] for p in policies]
    lines = [f"{'scenario':<24}" + "".join(f"{h:>{width}}" for h in heads)]
    for scenario in scenarios:
        cells = [cell(policy, scenario) for policy in policies]
        lines.append(f"{scenario[:23]:<24}" + "".join(f"{c:>{width}}" for c in cells))
    return lines


def _share(entry: dict[str, Any]) -> str:
    """Return a gap-closed entry as ``mean [low, high]``, or why there is none."""
    if entry["mean"] is None:
        return f"n/a (gap {entry['gap']:+.3f})"
    if entry["ci_low"] is None:
        return f"{entry['mean']:.2f} [no interval]"
    return f"{entry['mean']:.2f} [{entry['ci_low']:.2f}, {entry['ci_high']:.2f}]"


def _gap_lines(data: dict[str, Any], name_width: int) -> list[str]:
    """Return the gap-closed tables: overall per KPI, then the first KPI by scenario."""
    gaps = data.get("gap_closed", {})
    if not gaps:
        return []
    kpis = list(next(iter(gaps.values())))
    lines = [
        "",
        f"share of the gap from {data['reference']} (0) to {data['ceiling']} (1) closed: "
        "mean [95% paired interval]",
        f"scenarios: how many close at least {GAP_TARGET:.0%} of their {kpis[0]} gap "
        "(of those with a gap)",
    ]
    columns = [*kpis, "scenarios"]
    rows = {}
    for policy, entries in gaps.items():
        scenarios = entries[kpis[0]]["scenarios"].values()
        defined = [e for e in scenarios if e["mean"] is not None]
        count = sum(e["mean"] >= GAP_TARGET for e in defined)
        cells = [_share(entries[k]["overall"]) for k in kpis]
        rows[_short(policy)] = [*cells, f"{count} of {len(defined)}"]
    lines += _blocks(columns, rows, name_width)[1:]
    lines += ["", f"{kpis[0]} gap closed by scenario (n/a: the ceiling's lead under 0.005)"]

    def share(policy: str, scenario: str) -> str:
        mean = gaps[policy][kpis[0]]["scenarios"][scenario]["mean"]
        return "n/a" if mean is None else f"{mean:.2f}"

    return lines + _by_scenario(data["scenarios"], list(gaps), share)


def _blocks(columns: list[str], rows: dict[str, list[str]], name_width: int) -> list[str]:
    """Lay a table out in blocks of whole columns no wider than ``WIDTH``.

    Every block starts with a blank line and a header; each row starts with its name
    padded to ``name_width``; each column is as wide as its longest cell.
    """
    widths = [max([len(c), *(len(r[i]) for r in rows.values())]) for i, c in enumerate(columns)]
    blocks: list[list[int]] = []
    used = WIDTH  # forces a first block
    for i, width in enumerate(widths):
        if used + 2 + width > WIDTH:
            blocks.append([])
            used = name_width
        blocks[-1].append(i)
        used += 2 + width
    lines = []
    for block in blocks:
        lines += [
            "",
            f"{'policy':<{name_width}}" + "".join(f"  {columns[i]:>{widths[i]}}" for i in block),
        ]
        for name, cells in rows.items():
            lines.append(
                f"{name:<{name_width}}" + "".join(f"  {cells[i]:>{widths[i]}}" for i in block)
            )
    return lines


def plot_kpis(data: dict[str, Any], path: Path) -> Path:
    """Write ``kpi_figure(data)`` as a PNG and return its path."""
    import matplotlib.pyplot as plt

    fig = kpi_figure(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def kpi_figure(data: dict[str, Any]) -> Figure:
    """Return bars of every KPI of the report per policy with their 95% intervals.

    One panel per KPI, titled with its name and direction, ``PLOT_COLUMNS`` to a row and
    as many rows as the KPIs need; the caller closes the figure.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = list(data["overall"])
    names = list(data["kpis"])
    rows = max(1, -(-len(names) // PLOT_COLUMNS))
    fig, axes = plt.subplots(rows, PLOT_COLUMNS, figsize=(16, 3.5 * rows), squeeze=False)
    for ax in axes.ravel()[len(names) :]:
        ax.set_visible(False)
    x = np.arange(len(policies))
    for ax, kpi in zip(axes.ravel(), names, strict=False):
        entries = [data["overall"][p][kpi] for p in policies]
        means = np.array([e["mean"] for e in entries])
        low = means - np.array([e["ci_low"] for e in entries])
        high = np.array([e["ci_high"] for e in entries]) - means
        ax.bar(x, means, yerr=np.vstack([low, high]), capsize=3, color="tab:blue", alpha=0.8)
        ax.set_xticks(x, policies, rotation=45, ha="right", fontsize=8)
        better = "higher" if data["higher_is_better"][kpi] else "lower"
        ax.set_title(f"{kpi} ({better} is better)")
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"suite {data['suite']}: {data['seeds']} paired seeds, 95% intervals")
    fig.tight_layout()
    return fig


def plot_curves(result: Evaluation, scenario: str, path: Path) -> Path:
    """Write per-provider warmup curves of seed 0 on one scenario, every policy overlaid."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    providers = result.configs[scenario].provider_names
    fig, axes = plt.subplots(len(providers), 1, figsize=(9, 2.3 * len(providers)), sharex=True)
    demand = result.traces[result.policies[0]][scenario].record.daily["demand"][:, 0]
    days = np.arange(1, len(demand) + 1)
    for p, (ax, provider) in enumerate(zip(np.atleast_1d(axes), providers, strict=True)):
        ax.plot(days, demand[:, p], color="black", linewidth=1, label="demand")
        for name in result.policies:
            accepted = result.traces[name][scenario].record.daily["accepted_dedicated"][:, 0]
            ax.plot(days, accepted[:, p], label=name)
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
