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


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write the figures as JSON and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
