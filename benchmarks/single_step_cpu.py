"""CPU time of one step of a single ``IPWarmupEnv``: a before/after check under load.

Run ``python benchmarks/single_step_cpu.py`` here, and
``benchmarks/at_commit.sh COMMIT benchmarks/single_step_cpu.py`` for another commit, in
alternation (``--interval`` 1 or 24 hours per decision, ``--actions zeros`` or ``random``).
It steps one env through pre-drawn actions, resetting at the horizon (the continuation
included), and prints this process's CPU microseconds per step, the best of the repeats,
and the simulated env-hours per CPU second: section 1 of ``env_throughput.py`` by CPU
time alone, which other processes on the shared cores move less than its wall-clock
ratios. It prints, it does not assert.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core, as env_throughput.py

import argparse  # noqa: E402
import time  # noqa: E402

from _common import load, single_env  # noqa: E402  # the script's own folder

import ipwarmup.envs  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Time the env's steps and print the best repeat's CPU time per step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=int, choices=(1, 24), default=1)
    parser.add_argument("--actions", choices=("zeros", "random"), default="random")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    started_load = load()
    run = single_env(args.interval, args.actions).run
    run(3_000)  # warm-up: kernels loaded or compiled, caches filled
    best = float("inf")
    for _ in range(args.repeats):
        start = time.process_time()
        run(args.steps)
        best = min(best, (time.process_time() - start) / args.steps)
    print(
        f"{ipwarmup.envs.__file__}  {args.interval}h  actions {args.actions}: "
        f"{1e6 * best:.2f} us CPU per step (best of {args.repeats} x {args.steps} steps), "
        f"{args.interval / best:,.0f} env-hours per CPU s; load {started_load} -> {load()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
