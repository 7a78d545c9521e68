"""The ``ipwarmup`` commands that work on a real MTA: ``telemetry``, ``shadow``, ``control``.

Their arguments (:func:`add_mta_commands`) and handlers, which check the arguments and
hand over to :mod:`ipwarmup.mta.commands`; :mod:`ipwarmup.cli` runs them with the rest.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ipwarmup.errors import IPWarmupError


def _add_mta_input(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mta", required=True, choices=("postfix", "kumomta"), help="log format")
    parser.add_argument("--log", type=Path, required=True, help="the MTA's log file")
    parser.add_argument(
        "--sources", type=Path, required=True, help="YAML: the dedicated IPs and transports"
    )
    parser.add_argument(
        "--year", type=int, default=None, help="year of a syslog's first line (default: guessed)"
    )


def add_mta_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the three MTA commands to the ``ipwarmup`` parser's subcommands."""
    telemetry = commands.add_parser(
        "telemetry", help="turn a Postfix or KumoMTA log into telemetry records (JSON Lines)"
    )
    _add_mta_input(telemetry)
    telemetry.add_argument(
        "--period-hours", type=int, default=24, help="period length, a divisor of 24"
    )
    telemetry.add_argument("--out", type=Path, default=None, help="JSONL file (default stdout)")
    shadow = commands.add_parser(
        "shadow", help="replay a log: what a policy would have set beside fixed-sendgrid"
    )
    _add_mta_input(shadow)
    shadow.add_argument("--model", type=Path, required=True, help="bundle folder")
    shadow.add_argument("--json", type=Path, default=None, help="write the replay as JSON")
    control = commands.add_parser(
        "control", help="each period: read the new log lines, decide, configure the MTA"
    )
    _add_mta_input(control)
    control.add_argument("--model", type=Path, required=True, help="bundle folder")
    when = control.add_mutually_exclusive_group(required=True)
    when.add_argument("--once", action="store_true", help="run one period and exit (cron)")
    when.add_argument("--every", type=float, default=None, metavar="H", help="period in hours")
    control.add_argument("--runs", type=int, default=None, help="stop after N periods")
    control.add_argument(
        "--state", type=Path, default=Path("ipwarmup-control.json"), help="controller state"
    )
    control.add_argument("--postfix-config", type=Path, default=None, help="config_directory")
    control.add_argument("--postfix-command", default="postfix", help="the postfix command")
    control.add_argument("--kumomta-overlay", type=Path, default=None, help="overlay TOML path")
    control.add_argument("--history", type=Path, default=None, help="JSONL, a line a period")
    control.add_argument(
        "--period-seconds", type=float, default=None, help="drill: real seconds per period"
    )
    control.add_argument(
        "--volume-scale", type=float, default=1.0, help="drill: messages per logged message"
    )


def _check_period(hours: int) -> None:
    if hours < 1 or 24 % hours:
        raise IPWarmupError(f"--period-hours: expected a divisor of 24, got {hours}")


def telemetry(args: argparse.Namespace) -> int:
    """Run ``ipwarmup telemetry``: a log in, telemetry records (JSON Lines) out."""
    from ipwarmup.mta.commands import telemetry_command

    _check_period(args.period_hours)
    return telemetry_command(
        mta=args.mta,
        log=args.log,
        sources=args.sources,
        period_hours=args.period_hours,
        out=args.out,
        year=args.year,
    )


def control(args: argparse.Namespace) -> int:
    """Run ``ipwarmup control``: each period, read the log, decide, configure the MTA."""
    from ipwarmup.mta.commands import control_command
    from ipwarmup.mta.control import ControlOptions
    from ipwarmup.mta.sources import load_sources

    if args.every is not None and not args.every > 0:
        raise IPWarmupError(f"--every: expected hours > 0, got {args.every}")
    if args.runs is not None and args.runs < 1:
        raise IPWarmupError(f"--runs: expected at least 1, got {args.runs}")
    options = ControlOptions(
        mta=args.mta,
        log=args.log,
        sources=load_sources(args.sources),
        state=args.state,
        postfix_config=args.postfix_config,
        postfix_command=args.postfix_command,
        kumomta_overlay=args.kumomta_overlay,
        history=args.history,
        period_seconds=args.period_seconds,
        volume_scale=args.volume_scale,
        year=args.year,
    )
    return control_command(
        options=options, model=args.model, once=args.once, every_hours=args.every, runs=args.runs
    )


def shadow(args: argparse.Namespace) -> int:
    """Run ``ipwarmup shadow``: replay a log beside fixed-sendgrid."""
    from ipwarmup.mta.commands import shadow_command

    return shadow_command(
        mta=args.mta,
        log=args.log,
        sources=args.sources,
        model=args.model,
        json_out=args.json,
        year=args.year,
    )
