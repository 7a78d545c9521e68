"""Output helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def rate(value: float) -> str:
    """Format a rate with thousands separators."""
    return f"{value:,.0f}"


def rule(title: str) -> str:
    """Return a section title underlined to its width."""
    return f"\n{title}\n{'-' * len(title)}"


def load() -> str:
    """Return the 1/5/15-minute load averages, which say how noisy the figures are."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def set_threads(threads: int | None) -> int:
    """Set the simulator's thread count when given one; return the count the run uses.

    The simulator runs a batch's rows on threads (``ipwarmup.envs.threads``); a commit from
    before that (``benchmarks/at_commit.sh``) runs on one thread whatever this says.
    """
    from ipwarmup.envs import simulator

    if not hasattr(simulator, "advance_rows"):  # a commit whose batches run on one thread
        return 1
    from ipwarmup.envs import threads as envs_threads

    if threads is not None:
        envs_threads.set_threads(threads)
    return envs_threads.thread_count()


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write the figures as JSON and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
