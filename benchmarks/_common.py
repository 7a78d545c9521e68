"""Output helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import argparse
import json
import os
import warnings
from dataclasses import dataclass
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


DAILY_SCENARIO = "steady_b2c_transactional"
"""The scenario the daily-step scripts (``vec_step_cpu.py``, ``vec_step_profile.py``) run."""


@dataclass
class DailyBatch:
    """What a daily-step script times: its arguments, thread count, batch and actions."""

    args: argparse.Namespace
    threads: int
    env: Any  # ipwarmup.envs.WarmupVecEnv
    actions: Any  # (steps, n_envs, action size) float32: two whole episodes


def daily_batch(description: str, argv: list[str] | None) -> DailyBatch:
    """Parse a daily-step script's options and build its batch of daily decisions.

    ``--actions zeros|random``, ``--n-envs`` (256), ``--repeats`` (5), ``--threads`` (the
    package's default); the actions are two whole episodes, random ones drawn with seed 0.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--actions", choices=("zeros", "random"), default="zeros")
    parser.add_argument("--n-envs", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="simulator threads")
    args = parser.parse_args(argv)
    import numpy as np

    import ipwarmup.envs

    threads = set_threads(args.threads)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_mode.*", category=UserWarning)
        env = ipwarmup.envs.make_vec_env(
            scenario=DAILY_SCENARIO,
            overrides=["decision_interval_hours=24"],
            n_envs=args.n_envs,
            seed=0,
        )
    steps = 2 * env.config.steps_per_episode  # two whole episodes per repeat
    shape = (steps, args.n_envs, env.action_space.shape[0])
    actions = np.zeros(shape, dtype=np.float32)
    if args.actions == "random":
        actions = np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(np.float32)
    return DailyBatch(args, threads, env, actions)


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write the figures as JSON and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
