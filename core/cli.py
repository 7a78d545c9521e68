"""The ``ipwarmup`` command line.

Exit codes: 0 on success; 2 on a usage or configuration error, with one line on stderr
and no traceback; 1 on an unexpected failure, with the traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from ipwarmup.cli_mta import add_mta_commands, control, shadow, telemetry
from ipwarmup.errors import IPWarmupError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # argparse's own errors are usage errors: one line, exit 2, like config errors.
        raise IPWarmupError(message)


def _add_overrides(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=what
    )


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand."""
    from ipwarmup import __version__

    parser = _Parser(prog="ipwarmup", description="Learn how to warm up dedicated email IPs.")
    parser.add_argument("--version", action="version", version=f"ipwarmup {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    simulate = commands.add_parser(
        "simulate", help="run one policy through one seeded warmup and report it day by day"
    )
    simulate.add_argument(
        "--scenario", default="steady_b2c_transactional", help="scenario name or YAML path"
    )
    simulate.add_argument("--policy", default="fixed-sendgrid", help="baseline policy name")
    simulate.add_argument("--days", type=int, default=None, help="horizon in days")
    simulate.add_argument("--seed", type=int, default=0, help="episode seed")
    simulate.add_argument("--config", type=Path, default=None, help="env config YAML")
    _add_overrides(simulate, "override an env config value (dotted key), repeatable")
    simulate.add_argument(
        "--plot", type=Path, default=None, help="PNG of the warmup curves (default: beside)"
    )
    evaluate = commands.add_parser(
        "evaluate", help="evaluate policies on a suite with the same seeds, with intervals"
    )
    evaluate.add_argument(
        "--policy",
        dest="policies",
        action="append",
        required=True,
        metavar="NAME_OR_MODEL_PATH",
        help="a baseline name or a trained model path, repeatable",
    )
    evaluate.add_argument("--suite", default="validation", help="suite name or YAML path")
    evaluate.add_argument("--seeds", type=int, default=32, help="seeds per scenario")
    evaluate.add_argument("--seed", type=int, default=0, help="first seed")
    evaluate.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    evaluate.add_argument("--plots", type=Path, default=None, help="folder for PNG plots")
    _add_overrides(evaluate, "override an env config value for every scenario, repeatable")
    train = commands.add_parser("train", help="train a policy, evaluate it, log it to MLflow")
    train.add_argument(
        "--config", type=Path, default=Path("configs/experiments/ppo.yaml"), help="experiment YAML"
    )
    _add_overrides(train, "override an experiment value (dotted key), repeatable")
    train.add_argument("--resume", default=None, metavar="RUN_ID", help="continue a run")
    train.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    train.add_argument("--seed", type=int, default=None, help="training seed")
    compare = commands.add_parser(
        "compare", help="rank tracked runs, learned and baseline, by KPI with intervals"
    )
    compare.add_argument("--experiment", default="ipwarmup", help="MLflow experiment name")
    compare.add_argument("--suite", default="validation", help="evaluation suite of the runs")
    compare.add_argument("--kpi", default="inbox_share", help="KPI to rank by")
    compare.add_argument(
        "--seeds",
        type=int,
        default=None,
        help="rank runs evaluated on this many seeds per scenario (default: the most)",
    )
    compare.add_argument("--json", type=Path, default=None, help="write the ranking as JSON")
    compare.add_argument(
        "--plot", type=Path, default=None, help="chart PNG (default compare-<experiment>.png)"
    )
    compare.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    tune = commands.add_parser("tune", help="tune hyperparameters with Optuna")
    tune.add_argument(
        "--config", type=Path, default=Path("configs/experiments/ppo.yaml"), help="experiment YAML"
    )
    tune.add_argument("--trials", type=int, required=True, help="trials to run")
    tune.add_argument(
        "--storage",
        default=None,
        help="Optuna storage URL (default sqlite:///optuna.db; postgresql+psycopg://... for many"
        " machines)",
    )
    tune.add_argument(
        "--seed", type=int, default=None, help="this worker's sampler seed (default: drawn)"
    )
    tune.add_argument("--out", type=Path, default=None, help="where to write the best config")
    _add_overrides(tune, "override an experiment value (dotted key), repeatable")
    tune.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    export = commands.add_parser("export", help="export a trained policy as a serving bundle")
    source = export.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", default=None, metavar="RUN_ID", help="an MLflow training run")
    source.add_argument(
        "--model", type=Path, default=None, help="a folder with model.zip and vecnormalize.pkl"
    )
    export.add_argument("--out", type=Path, required=True, help="bundle folder (models/NAME)")
    export.add_argument(
        "--config", type=Path, default=None, help="experiment YAML the --model was trained with"
    )
    export.add_argument("--experiment", default="ipwarmup", help="MLflow experiment of --run")
    export.add_argument("--tracking-uri", default=None, help="MLflow tracking URI")
    export.add_argument(
        "--registered-model", default="ipwarmup-policy", help="MLflow registered model name"
    )
    export.add_argument(
        "--champion", action="store_true", help="point the registry's champion alias at it"
    )
    serve = commands.add_parser("serve", help="serve a bundle over HTTP")
    serve.add_argument("--model", type=Path, required=True, help="bundle folder")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--public-key",
        default=None,
        metavar="KEY",
        help="ed25519 public key (PEM or hex file, or 64 hex digits) the bundle must be signed by",
    )
    serve.add_argument(
        "--guardrails", type=Path, default=None, help="the operator's guardrails file (YAML)"
    )
    add_mta_commands(commands)
    return parser


def _check_store(uri: str | None) -> None:
    """Refuse an unusable tracking store in one line before the heavy imports (torch, MLflow).

    Only a store that cannot be used at all (unreachable, empty, damaged) is refused here;
    a missing one is left to the command, which says what it expected there.
    """
    from ipwarmup.training.store import check_tracking_store, tracking_uri

    check_tracking_store(tracking_uri(uri), create=True)


def _export(args: argparse.Namespace) -> int:
    if args.run:
        _check_store(args.tracking_uri)
    from ipwarmup.training.export_run import export_from_model, export_from_run

    if args.run:
        bundle = export_from_run(
            args.run,
            args.out,
            experiment=args.experiment,
            tracking_uri=args.tracking_uri,
            registered_model=args.registered_model,
            champion=args.champion,
        )
    else:
        bundle = export_from_model(args.model, args.out, config_path=args.config)
    print(f"bundle: {bundle}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from ipwarmup.serving.server import serve

    if not 0 < args.port < 65536:
        raise IPWarmupError(f"--port: expected 1-65535, got {args.port}")
    serve(
        str(args.model), args.host, args.port, public_key=args.public_key,
        guardrails=args.guardrails,
    )  # fmt: skip
    return 0


def _compare(args: argparse.Namespace) -> int:
    _check_store(args.tracking_uri)
    from ipwarmup.training.compare import run_compare

    plot = args.plot or Path(f"compare-{args.experiment}.png")
    return run_compare(
        args.experiment, args.suite, args.json, plot, args.tracking_uri, kpi=args.kpi,
        seeds=args.seeds,
    )  # fmt: skip


def _tune(args: argparse.Namespace) -> int:
    if args.tracking_uri:  # otherwise the experiment file may name the store
        _check_store(args.tracking_uri)
    from ipwarmup.training.config import load_experiment
    from ipwarmup.training.tune import tune

    if args.trials < 1:
        raise IPWarmupError(f"--trials: expected at least 1, got {args.trials}")
    if not args.config.is_file():
        raise IPWarmupError(f"--config: no experiment file at '{args.config}'")
    overrides = list(args.overrides)
    if args.tracking_uri:
        overrides.append(f"tracking.tracking_uri={args.tracking_uri}")
    config = load_experiment(args.config, overrides)
    tune(config, trials=args.trials, storage=args.storage, out=args.out, seed=args.seed)
    return 0


def _train(args: argparse.Namespace) -> int:
    if args.tracking_uri:  # otherwise the experiment file may name the store
        _check_store(args.tracking_uri)
    from ipwarmup.training.config import load_experiment
    from ipwarmup.training.train import train

    overrides = list(args.overrides)
    if args.tracking_uri:
        overrides.append(f"tracking.tracking_uri={args.tracking_uri}")
    if args.seed is not None:
        overrides.append(f"training.seed={args.seed}")
    if not args.config.is_file():
        raise IPWarmupError(f"--config: no experiment file at '{args.config}'")
    config = load_experiment(args.config, overrides)
    command = " ".join(["ipwarmup", *sys.argv[1:]])
    result = train(config, command=command, resume_run_id=args.resume)
    print(f"run {result.run_id}: model in {result.model_dir}")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json

    from ipwarmup.training.evaluate import evaluate, load_suite, report
    from ipwarmup.training.report import format_tables, plot_curves, plot_kpis

    suite = load_suite(args.suite)
    result = evaluate(
        args.policies, suite, seeds=args.seeds, seed=args.seed, overrides=args.overrides
    )
    data = report(result)
    print(format_tables(data))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        tmp = args.json.with_suffix(args.json.suffix + ".tmp")
        tmp.write_text(json.dumps(data, indent=2))
        tmp.replace(args.json)  # never leave a half-written report
        print(f"report: {args.json}")
    if args.plots:
        print(f"plots: {plot_kpis(data, args.plots / 'kpis.png')}")
        first = suite.entries[0].name
        print(f"plots: {plot_curves(result, first, args.plots / f'curves-{first}.png')}")
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from ipwarmup.agents.base import attach
    from ipwarmup.agents.registry import make_policy
    from ipwarmup.config import load_yaml
    from ipwarmup.envs.env import IPWarmupEnv
    from ipwarmup.training.simulate import format_table, plot_trace, run_episode

    if args.days is not None and args.days < 1:
        raise IPWarmupError(f"--days: expected a whole number of days >= 1, got {args.days}")
    overrides = list(args.overrides)
    if args.days is not None:
        overrides.append(f"horizon_days={args.days}")
    data = load_yaml(args.config) if args.config else None
    env = IPWarmupEnv(scenario=args.scenario, config=data, overrides=overrides)
    policy = make_policy(args.policy, env.config)
    attach(policy, env.simulator)
    trace = run_episode(env, policy, args.seed)
    print(
        f"scenario {env.config.scenario.name}, policy {policy.name}, seed {args.seed}, "
        f"{env.config.horizon_days} days"
    )
    print(format_table(trace))
    plot = args.plot or Path(f"warmup-{env.config.scenario.name}-{policy.name}-{args.seed}.png")
    title = f"{env.config.scenario.name} / {policy.name} / seed {args.seed}"
    print(f"warmup curves: {plot_trace(trace, plot, title)}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return its exit code."""
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    # Commands print their own run ids; MLflow would add two URL lines per run ended.
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    try:
        args = build_parser().parse_args(argv)
        handlers = {
            "simulate": _simulate,
            "evaluate": _evaluate,
            "train": _train,
            "compare": _compare,
            "tune": _tune,
            "export": _export,
            "serve": _serve,
            "telemetry": telemetry,
            "shadow": shadow,
            "control": control,
        }
        return handlers[args.command](args)
    except IPWarmupError as error:
        print(f"ipwarmup: error: {error}", file=sys.stderr)
        return 2


def console() -> None:
    """Entry point of the ``ipwarmup`` console script."""
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    console()
