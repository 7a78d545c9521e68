"""Open an MTA log and read its events with the right parser."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from ipwarmup.errors import MTAError
from ipwarmup.mta.events import Event
from ipwarmup.mta.kumomta_log import read_kumomta
from ipwarmup.mta.logread import ReadReport
from ipwarmup.mta.postfix_log import first_month, read_postfix

MTA = Literal["postfix", "kumomta"]
MTAS: tuple[MTA, ...] = ("postfix", "kumomta")


def guess_year(path: Path, lines: Iterable[str]) -> int:
    """Return the year of a syslog file's first stamp: the file's, or the one before.

    Traditional syslog stamps have no year. A file last written in a year holds stamps of
    that year, unless its first stamp's month is later than the file's, which means the
    log began the year before.
    """
    written = dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
    month = first_month(itertools.islice(lines, 1000))
    return written.year - 1 if month is not None and month > written.month else written.year


def read_lines(path: Path) -> list[str]:
    """Return a log's lines.

    Raises:
        MTAError: the file is missing or unreadable, naming it.
    """
    try:
        with path.open(encoding="utf-8", errors="replace", newline="") as handle:
            return handle.read().splitlines()
    except OSError as error:
        raise MTAError(f"{path}: cannot read the log: {error.strerror or error}") from error


def read_events(mta: MTA, path: Path, *, year: int | None = None) -> tuple[list[Event], ReadReport]:
    """Read every event of a log file and the report of what was read.

    Args:
        mta: ``postfix`` or ``kumomta``.
        path: the log file.
        year: the year of a Postfix log's first traditional stamp; None guesses it.
    """
    lines = read_lines(path)
    report = ReadReport(str(path))
    if mta == "postfix":
        first_year = guess_year(path, lines) if year is None else year
        events = list(read_postfix(lines, report, year=first_year))
    elif mta == "kumomta":
        events = list(read_kumomta(lines, report))
    else:
        raise MTAError(f"--mta: expected one of {list(MTAS)}, got {mta!r}")
    return events, report
