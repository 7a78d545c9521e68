"""Output helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

from __future__ import annotations

import argparse
import json
import os
import warnings
from collections.abc import Callable
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


class Clock:
    """Exclusive time per named part: a part's time less the timed parts it calls.

    Args:
        timer: the clock read before and after each call (``time.process_time`` for CPU
            seconds, ``time.perf_counter_ns`` for wall nanoseconds: ~0.05 µs a read where
            ``process_time`` costs ~0.3 µs, for parts of a single env's step).
    """

    def __init__(self, timer: Callable[[], float]) -> None:
        self.own: dict[str, float] = {}
        self._timer = timer
        self._stack: list[list[float]] = []  # [start, time of timed callees]

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """Return ``function`` with its exclusive time added to ``own[name]``."""
        timer, stack, own = self._timer, self._stack, self.own

        def timed(*args: Any, **kwargs: Any) -> Any:
            frame = [timer(), 0]
            stack.append(frame)
            try:
                return function(*args, **kwargs)
            finally:
                elapsed = timer() - frame[0]
                stack.pop()
                own[name] = own.get(name, 0) + elapsed - frame[1]
                if stack:
                    stack[-1][1] += elapsed

        return timed


SINGLE_SCENARIO = "steady_b2c_transactional"
"""The scenario a single env runs in the benchmarks (:func:`single_env`)."""
ACTION_POOL = 1024
"""How many pre-drawn actions a single env's loop cycles through."""


def single_actions(kind: str, shape: tuple[int, ...]) -> list[Any]:
    """Return ``ACTION_POOL`` float32 actions of ``shape``: zeros, or uniform in [-1, 1].

    ``kind`` "random" draws them with seed 0, so every script and commit steps alike.
    """
    import numpy as np

    if kind == "zeros":
        return list(np.zeros((ACTION_POOL, *shape), dtype=np.float32))
    rng = np.random.default_rng(0)
    return list(rng.uniform(-1.0, 1.0, (ACTION_POOL, *shape)).astype(np.float32))


def stepper(env: Any, actions: list[Any]) -> Callable[[int], None]:
    """Return a loop stepping a single Gymnasium env through ``actions``, resetting at ends."""
    n_actions = len(actions)

    def run(count: int) -> None:
        step, reset = env.step, env.reset
        for i in range(count):
            _, _, terminated, truncated, _ = step(actions[i % n_actions])
            if terminated or truncated:
                reset()

    return run


@dataclass
class SingleEnv:
    """A single env stepped through pre-drawn actions, and the loop that steps it."""

    env: Any  # ipwarmup.envs.IPWarmupEnv
    actions: list[Any]  # single_actions of the env's action shape
    run: Callable[[int], None]  # steps it ``count`` times, resetting at the horizon


def single_env(interval: int, kind: str) -> SingleEnv:
    """Return a reset ``IPWarmupEnv`` (``interval`` hours a decision) and a loop stepping it.

    The env is reset with seed 0; the loop cycles through :func:`single_actions`
    (``kind``), resetting at the horizon (the continuation included).
    """
    import ipwarmup.envs

    env = ipwarmup.envs.IPWarmupEnv(
        scenario=SINGLE_SCENARIO, overrides=[f"decision_interval_hours={interval}"]
    )
    assert env.config.decision_interval_hours == interval
    actions = single_actions(kind, env.action_space.shape)
    env.reset(seed=0)
    return SingleEnv(env, actions, stepper(env, actions))


def write_json(path: Path, report: dict[str, Any]) -> None:
    """Write the figures as JSON and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path}")
