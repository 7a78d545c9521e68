"""CPU time of one daily step of ``make_vec_env`` at 256 envs: a before/after check under load.

Run ``python benchmarks/vec_step_cpu.py`` here, and
``benchmarks/at_commit.sh COMMIT benchmarks/vec_step_cpu.py`` for another commit, in
alternation (``--actions zeros`` or ``random``). It steps the batch through whole episodes
(resets and the continuation after the horizon included, as in section 2 of
``env_throughput.py``) and prints this process's CPU milliseconds per vec step, the best
of the repeats, and the simulated env-hours per CPU second, with the wall-clock time per
step beside it. CPU time is what the run itself cost, less moved than wall time by other
processes queueing for the shared cores, so two commits compare even when
``env_throughput.py``'s wall-clock ratios are swamped. A batch's rows run on several
threads (``ipwarmup.envs.threads``): ``--threads N`` sets their number (default: the
package's, ``NUMBA_NUM_THREADS`` or the machine's cores), and CPU time counts every thread.
It prints, it does not assert.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads: one core, as env_throughput.py

import argparse  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from _common import load, set_threads  # noqa: E402  # the script's own folder

import ipwarmup.envs  # noqa: E402

SCENARIO = "steady_b2c_transactional"


def main(argv: list[str] | None = None) -> int:
    """Time the batch's daily steps and print the best repeat's CPU time per step."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", choices=("zeros", "random"), default="zeros")
    parser.add_argument("--n-envs", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="simulator threads")
    args = parser.parse_args(argv)
    threads = set_threads(args.threads)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*render_mode.*", category=UserWarning)
        env = ipwarmup.envs.make_vec_env(
            scenario=SCENARIO,
            overrides=["decision_interval_hours=24"],
            n_envs=args.n_envs,
            seed=0,
        )
    steps = 2 * env.config.steps_per_episode  # two whole episodes per repeat
    shape = (steps, args.n_envs, env.action_space.shape[0])
    actions = np.zeros(shape, dtype=np.float32)
    if args.actions == "random":
        actions = np.random.default_rng(0).uniform(-1.0, 1.0, shape).astype(np.float32)
    started_load = load()
    env.reset()
    for action in actions:  # warm-up: kernels loaded or compiled, caches filled
        env.step(action)
    best = best_wall = float("inf")
    for _ in range(args.repeats):
        start, start_wall = time.process_time(), time.perf_counter()
        for action in actions:
            env.step(action)
        best = min(best, (time.process_time() - start) / steps)
        best_wall = min(best_wall, (time.perf_counter() - start_wall) / steps)
    hours = args.n_envs * env.config.decision_interval_hours / best
    print(
        f"{ipwarmup.envs.__file__}  n_envs {args.n_envs}  actions {args.actions}  "
        f"threads {threads}: {1e3 * best:.3f} ms CPU per vec step (best of {args.repeats} x "
        f"{steps} steps), {hours:,.0f} env-hours per CPU s; wall {1e3 * best_wall:.3f} ms "
        f"per step; load {started_load} -> {load()}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
