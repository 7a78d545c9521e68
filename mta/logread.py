"""What reading a log did: lines read, used and skipped by reason, malformed lines by number."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

MALFORMED = "malformed"
"""The skip reason of a line that looks like a delivery record but cannot be read."""

SHOWN_MALFORMED = 20
"""Malformed lines listed one by one in the summary; the rest are counted."""


@dataclass
class ReadReport:
    """Counts of one log read; every line is either used or skipped for one reason.

    Attributes:
        path: the log's name, for messages (``examples/postfix-edge-cases.log``).
        lines: lines read.
        used: lines that gave an event.
        skipped: lines skipped, by reason.
        malformed: ``(line number, what was wrong)`` of each malformed line.
    """

    path: str
    lines: int = 0
    used: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    malformed: list[tuple[int, str]] = field(default_factory=list)

    def skip(self, reason: str) -> None:
        """Count one line skipped for ``reason``."""
        self.skipped[reason] += 1

    def bad(self, line: int, problem: str) -> None:
        """Count one malformed line and remember why."""
        self.skipped[MALFORMED] += 1
        self.malformed.append((line, problem))

    def summary(self) -> str:
        """Return the report as text: one line of counts, then one per malformed line."""
        total = sum(self.skipped.values())
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(self.skipped.items()))
        text = [
            f"{self.path}: {self.lines} lines read, {self.used} used, {total} skipped"
            + (f" ({reasons})" if reasons else "")
        ]
        for number, problem in self.malformed[:SHOWN_MALFORMED]:
            text.append(f"{self.path}:{number}: malformed: {problem}")
        if len(self.malformed) > SHOWN_MALFORMED:
            text.append(f"... and {len(self.malformed) - SHOWN_MALFORMED} more malformed lines")
        return "\n".join(text)

    def as_dict(self) -> dict[str, object]:
        """Return the report as plain data for JSON."""
        return {
            "path": self.path,
            "lines": self.lines,
            "used": self.used,
            "skipped": dict(sorted(self.skipped.items())),
            "malformed": [{"line": n, "problem": p} for n, p in self.malformed],
        }
