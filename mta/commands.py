"""The ``ipwarmup telemetry``, ``shadow`` and ``control`` commands (argument parsing in cli)."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from ipwarmup.errors import MTAError
from ipwarmup.mta.logs import MTA, read_events
from ipwarmup.mta.providers import ProviderMap
from ipwarmup.mta.sources import Sources, load_sources
from ipwarmup.mta.telemetry import Period, Totals, build_periods


def write_atomic(path: Path, text: str) -> None:
    """Write a file whole or not at all: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if path.exists():
            os.chmod(tmp, path.stat().st_mode & 0o7777)
        else:
            os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def ledger(totals: Totals) -> str:
    """Return the recipient ledger as one line."""
    return (
        f"recipients: {totals.seen} seen = {totals.delivered} delivered + {totals.bounced} "
        f"bounced + {totals.rejected} rejected + {totals.expired} expired + {totals.queued} "
        "still queued"
    )


def periods_from_log(
    mta: MTA, log: Path, sources_path: Path, period_hours: int, year: int | None
) -> tuple[list[Period], Totals, str, Sources]:
    """Read a log into periods; return them, the ledger, the read summary and the sources."""
    sources = load_sources(sources_path)
    if not log.is_file():
        raise MTAError(f"--log: no log file at '{log}'")
    events, report = read_events(mta, log, year=year)
    periods, totals = build_periods(
        events,
        sources=sources,
        period_hours=period_hours,
        provider_map=ProviderMap(sources.providers),
    )
    return periods, totals, report.summary(), sources


def write_jsonl(records: Iterable[dict[str, Any]], out: Path | None, stream: TextIO) -> None:
    """Write records as JSON Lines to ``out`` atomically, or to ``stream``."""
    text = "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records)
    if out is None:
        stream.write(text)
    else:
        write_atomic(out, text)


def telemetry_command(
    *,
    mta: MTA,
    log: Path,
    sources: Path,
    period_hours: int,
    out: Path | None,
    year: int | None,
) -> int:
    """Run ``ipwarmup telemetry``: records to ``out`` (or stdout), the summary to stderr."""
    periods, totals, summary, _ = periods_from_log(mta, log, sources, period_hours, year)
    write_jsonl((p.record for p in periods), out, sys.stdout)
    print(summary, file=sys.stderr)
    print(
        f"{len(periods)} telemetry records of {period_hours} h"
        + (f" written to {out}" if out else ""),
        file=sys.stderr,
    )
    print(ledger(totals), file=sys.stderr)
    return 0


def model_period_hours(policy: Any) -> int:
    """Return how often a served policy decides (the record's ``period_hours``)."""
    return int(policy.period_hours)


def shadow_command(
    *,
    mta: MTA,
    log: Path,
    sources: Path,
    model: Path,
    json_out: Path | None,
    year: int | None,
) -> int:
    """Run ``ipwarmup shadow``: the table on stdout, the read summary on stderr."""
    from ipwarmup.mta.shadow import format_shadow, shadow_rows
    from ipwarmup.serving import load_policy

    policy = load_policy(model)
    hours = model_period_hours(policy)
    periods, totals, summary, _ = periods_from_log(mta, log, sources, hours, year)
    rows = shadow_rows(periods, policy.decide)
    print(format_shadow(rows))
    print(summary, file=sys.stderr)
    print(ledger(totals), file=sys.stderr)
    if json_out is not None:
        data = {"model": str(model), "period_hours": hours, "periods": rows, "ledger": vars(totals)}
        write_atomic(json_out, json.dumps(data, indent=2) + "\n")
        print(f"shadow report: {json_out}", file=sys.stderr)
    return 0
