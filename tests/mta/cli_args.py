"""Command lines of the MTA commands for the tests, with the shipped examples as defaults."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
EDGE_CASES = EXAMPLES / "postfix-edge-cases.log"
SOURCES = EXAMPLES / "sources.yaml"
MODEL = ROOT / "models" / "last-period"


def mta_args(
    command: str,
    *,
    mta: str = "postfix",
    log: Path = EDGE_CASES,
    sources: Path = SOURCES,
    **options: object,
) -> list[str]:
    """Return ``[command, --mta, --log, --sources, --option value...]`` (``year=2026``)."""
    args = [command, "--mta", mta, "--log", str(log), "--sources", str(sources)]
    for name, value in options.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return args
