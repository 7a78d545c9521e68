"""Where the CPU time of a daily step of ``make_vec_env`` at 256 envs goes, part by part.

Run ``python benchmarks/vec_step_profile.py`` (``--actions random``, ``--n-envs N``). It
steps the batch through whole episodes, as ``vec_step_cpu.py`` does (resets and the
continuation after the horizon included), once plainly and once with a CPU-time clock
(``time.process_time``) around each part, and prints each part's exclusive CPU time per
vec step (its own time, without the timed parts it calls), its share, and the plain
run's CPU time per vec step beside the instrumented one (the clocks cost ~1 µs a call).

The parts: the compiled period (``advance_period``, the continuation's included), the
day's draws (``draw_days``) and its layout (``start_day``), or, where a batch's rows run
on several threads (``--threads N``; the default is ``ipwarmup.envs.threads``'), the
periods with the next day's draws and layout (``advance_rows``), whose CPU time counts
every thread's; the observation
(``Simulator.observe``), the VecEnv's ``info`` dicts (``WarmupVecEnv._infos``), the
continuation's own Python (a copy of the rows, its generators), resets, the day's start in
Python (before the compiled draws, the rows' numpy draws were made there), and what is left
of ``Simulator.step``, ``Simulator._advance`` and ``WarmupVecEnv.step_wait`` (action
checks, outcomes, auto-reset, SB3's ``VecEnv.step``). It prints, it does not assert.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core, as env_throughput.py

import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from _common import Clock, daily_batch, load  # noqa: E402  # the script's own folder

import ipwarmup.envs  # noqa: E402
from ipwarmup.envs import simulator, vector  # noqa: E402

PARTS: tuple[tuple[str, Any, str], ...] = (
    ("VecEnv.step_wait (auto-reset, SB3's step)", vector.WarmupVecEnv, "step_wait"),
    ("VecEnv._infos (info dicts)", vector.WarmupVecEnv, "_infos"),
    ("Simulator.step (action check, history)", simulator.Simulator, "step"),
    ("Simulator._advance (arguments, outcomes)", simulator.Simulator, "_advance"),
    ("Simulator.observe (observation)", simulator.Simulator, "observe"),
    ("Simulator._continuation (copy, generators)", simulator.Simulator, "_continuation"),
    ("Simulator.reset (episode draws)", simulator.Simulator, "reset"),
    ("Simulator._start_day (its own Python)", simulator.Simulator, "_start_day"),
    ("advance_period (compiled period)", simulator, "advance_period"),
    ("draw_days (the day's draws)", simulator, "draw_days"),
    ("start_day (the day's layout)", simulator, "start_day"),
    ("advance_rows (period and next day, threads)", simulator, "advance_rows"),
)


def _episodes(env: Any, actions: np.ndarray, repeats: int) -> float:
    """Return the best CPU seconds per vec step over ``repeats`` runs through ``actions``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for action in actions:
            env.step(action)
        best = min(best, (time.process_time() - start) / len(actions))
    return best


def main(argv: list[str] | None = None) -> int:
    """Time the batch's daily steps plainly, then part by part, and print the parts."""
    batch = daily_batch(__doc__.splitlines()[0], argv)
    args, threads, env, actions = batch.args, batch.threads, batch.env, batch.actions
    steps = len(actions)
    started_load = load()
    env.reset()
    _episodes(env, actions, 1)  # warm-up: kernels loaded or compiled, caches filled
    plain = _episodes(env, actions, args.repeats)
    clock = Clock(time.process_time)
    # A part the package does not have (an older commit, benchmarks/at_commit.sh) is skipped:
    # its time shows in the part that calls it.
    parts = [part for part in PARTS if hasattr(part[1], part[2])]
    originals = [(owner, attr, getattr(owner, attr)) for _, owner, attr in parts]
    for name, owner, attr in parts:
        setattr(owner, attr, clock.wrap(name, getattr(owner, attr)))
    try:
        start = time.process_time()
        for _ in range(args.repeats):
            for action in actions:
                env.step(action)
        timed = (time.process_time() - start) / (args.repeats * steps)
    finally:
        for owner, attr, original in originals:
            setattr(owner, attr, original)
    per_step = {name: own / (args.repeats * steps) for name, own in clock.own.items()}
    print(
        f"{ipwarmup.envs.__file__}  n_envs {args.n_envs}  actions {args.actions}  "
        f"threads {threads}: "
        f"{1e3 * plain:.3f} ms CPU per vec step plainly (best of {args.repeats} x {steps} "
        f"steps), {1e3 * timed:.3f} ms timed part by part; load {started_load} -> {load()}"
    )
    print(f"{'part (exclusive CPU time)':<46} {'ms/step':>8} {'share':>6}")
    for name, value in sorted(per_step.items(), key=lambda item: -item[1]):
        print(f"{name:<46} {1e3 * value:>8.3f} {value / timed:>6.1%}")
    outside = timed - sum(per_step.values())
    print(f"{'the loop and env.step outside the parts':<46} {1e3 * outside:>8.3f} "
          f"{outside / timed:>6.1%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
