"""The ``ipwarmup telemetry``, ``shadow`` and ``control`` commands (argument parsing in cli)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any, TextIO

from ipwarmup.errors import MTAError
from ipwarmup.mta.files import write_atomic
from ipwarmup.mta.logs import MTA, read_events
from ipwarmup.mta.providers import ProviderMap
from ipwarmup.mta.setup import mta_block
from ipwarmup.mta.sources import Sources, load_sources
from ipwarmup.mta.telemetry import Period, Totals, build_periods
from ipwarmup.observation import LAST_PERIOD, Layout


def ledger(totals: Totals) -> str:
    """Return the recipient ledger as one line."""
    return (
        f"recipients: {totals.seen} seen = {totals.delivered} delivered + {totals.bounced} "
        f"bounced + {totals.rejected} rejected + {totals.expired} expired + {totals.queued} "
        "still queued"
    )


def periods_from_log(
    mta: MTA, log: Path, sources_path: Path, period_hours: int, year: int | None,
    layout: Layout = LAST_PERIOD,
) -> tuple[list[Period], Totals, str, Sources]:  # fmt: skip
    """Read a log into periods; return them, the ledger, the read summary and the sources.

    Records of schema version 2 where ``layout`` needs them: the MTA's set-up as the
    sources file and the MTA's defaults give it (no MTA configuration is read here), and
    the log's previous periods as history.
    """
    sources = load_sources(sources_path)
    if not log.is_file():
        raise MTAError(f"--log: no log file at '{log}'")
    events, report = read_events(mta, log, year=year)
    setup = mta_block(mta=mta, sources=sources, postfix_config=None) if layout.needs_v2 else None
    periods, totals = build_periods(
        events,
        sources=sources,
        period_hours=period_hours,
        provider_map=ProviderMap(sources.providers),
        mta=setup,
        history_periods=layout.history_periods,
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
    periods, totals, summary, _ = periods_from_log(mta, log, sources, hours, year, policy.layout)
    rows = shadow_rows(periods, policy.decide)
    print(format_shadow(rows))
    print(summary, file=sys.stderr)
    print(ledger(totals), file=sys.stderr)
    if json_out is not None:
        data = {"model": str(model), "period_hours": hours, "periods": rows, "ledger": vars(totals)}
        write_atomic(json_out, json.dumps(data, indent=2) + "\n")
        print(f"shadow report: {json_out}", file=sys.stderr)
    return 0


def control_command(
    *, options: Any, model: Path, once: bool, every_hours: float | None, runs: int | None
) -> int:
    """Run ``ipwarmup control``: one period (``--once``) or one every ``every_hours``."""
    import time

    from ipwarmup.mta.control import Controller, sleep_until
    from ipwarmup.serving import load_policy

    policy = load_policy(model)
    controller = Controller(options, policy, clock=time.time)
    if once:
        _print_period(controller.run_period())
        return 0
    assert every_hours is not None
    if controller.start():
        print("control: wrote the caps in force from the sources file", flush=True)
    seconds = every_hours * 3600
    deadline = time.time() + seconds
    done = 0
    while runs is None or done < runs:
        sleep_until(deadline, time.time)
        deadline += seconds
        _print_period(controller.run_period())
        done += 1
    return 0


def _print_period(summary: dict[str, Any]) -> None:
    caps = ", ".join(f"{p} {c:.1f}/h" for p, c in summary["caps_per_ip_per_hour"].items())
    day = summary["record"]["time"]["day"]
    fired = ", ".join(summary["guardrails"]) or "none"
    print(
        f"period {summary['period']} (day {day:g}): caps per IP {caps}; pool "
        f"{summary['pool']['action']}; guardrails {fired}",
        flush=True,
    )
